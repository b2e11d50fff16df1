"""Device and dtype resolution: one place that decides where a model runs and in what precision.

`--device auto` picks CUDA when present, then Apple's MPS, else the CPU. Dtypes are named the
way the CLI spells them (`fp32`, `bf16`, `fp16`); a combination the hardware cannot run is a
user error with the reason, not a crash deep inside torch.
"""
from __future__ import annotations

# torch is imported inside the functions: the CLI imports this module to build its parser,
# and `engine --help` or `engine identifiers` should not pay torch's start-up time.

from typing import TYPE_CHECKING

from engine.errors import UserError

if TYPE_CHECKING:  # annotations only
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("fp32", "bf16", "fp16")
# Forward-pass backends of a victim (engine.backends implements them; named here, without torch,
# for the CLI). Every one agrees with `hf` within float noise.
BACKENDS = {
    "auto": "fast on the CPU where the architecture allows, else hf (default)",
    "fast": "BERT/RoBERTa classifiers: last layer for the first token only, fused QKV, oneDNN-packed weights on the CPU",
    "hf": "the model's own transformers forward (scaled-dot-product attention)",
    "hf-eager": "the model's own transformers forward with eager attention",
    "compile": "torch.compile of the model's own forward (dynamic shapes; compiles on the first call)",
}

_DTYPE_ALIASES = {
    "fp32": "fp32", "float32": "fp32", "float": "fp32", "32": "fp32",
    "bf16": "bf16", "bfloat16": "bf16",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "16": "fp16",
}
_TORCH_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def _mps_available() -> bool:
    import torch
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """`auto` → cuda, then mps, then cpu; an explicit device must exist on this machine."""
    import torch

    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use one of {', '.join(DEVICES)} (or cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__}); use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif device.type == "mps":
        if not _mps_available():
            raise UserError(f"--device {name}: MPS is not available on this machine; use --device cpu or auto")
    elif device.type != "cpu":
        raise UserError(f"--device {name!r} is not supported; use one of {', '.join(DEVICES)}")
    return device


def dtype_name(name: str | torch.dtype | None) -> str:
    """Canonical CLI spelling (`fp32`, `bf16`, `fp16`) of a dtype name or torch dtype."""
    import torch

    if isinstance(name, torch.dtype):
        for key, value in _TORCH_DTYPE_NAMES.items():
            if getattr(torch, value) == name:
                return key
        raise UserError(f"dtype {name} is not supported; use one of {', '.join(DTYPES)}")
    key = _DTYPE_ALIASES.get((name or "fp32").strip().lower())
    if key is None:
        raise UserError(f"--dtype {name!r} is not supported; use one of {', '.join(DTYPES)}")
    return key


def resolve_dtype(name: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """The torch dtype for `name` on `device`; refuses combinations the device cannot run well.

    fp16 needs CUDA or MPS (CPU kernels for half are missing or very slow); bf16 runs on CPUs
    (fast where AVX-512 BF16/AMX exist) and on CUDA GPUs that support it.
    """
    import torch
    key = dtype_name(name)
    if key == "fp16" and device.type == "cpu":
        raise UserError("--dtype fp16 needs a CUDA or MPS device; on the CPU use bf16 or fp32")
    if key == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError("--dtype bf16: this CUDA device does not support bfloat16; use fp16 or fp32")
    return getattr(torch, _TORCH_DTYPE_NAMES[key])


def describe_device(device: torch.device) -> str:
    """Human-readable name for manifests: `cpu`, `cuda:0 (NVIDIA H100 …)`, `mps`."""
    import torch
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels, so wall-clock timings of GPU work are honest."""
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.synchronize()


def set_threads(threads: int | None) -> None:
    """Limit torch's CPU threads (None: leave torch's default, one per core).

    On a machine shared with other jobs, fewer threads than cores is often much faster: busy
    cores make torch's worker threads wait on each other.
    """
    import torch
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
