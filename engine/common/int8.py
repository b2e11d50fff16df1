"""The file format of a dynamically quantized (int8) model, and the quantization that makes one.

A dynamically quantized module holds its weights as an opaque packed object that neither
safetensors nor `from_pretrained` can store. Saving the float weights with a note "quantize on
load" would reproduce the same predictions (quantization is deterministic) but not the size on
disk the study compares. So an int8 variant stores what actually runs: `quantized.safetensors`
holds every float tensor of the model (embeddings, LayerNorms) and, for each quantized linear
layer, its int8 weight (`<name>.weight_int8`), scale and zero point (`<name>.weight_scale`,
`<name>.weight_zero_point`) and float bias. `load_weights` takes the architecture rebuilt from
`config.json`, quantizes it (which creates the quantized modules) and then overwrites every
tensor with the stored one, so a new process computes bit-identical probabilities. There is
deliberately no `model.safetensors`: a plain `from_pretrained` fails loudly instead of
silently loading random linear weights.

Writers: `engine.compress.quantize.save_quantized`; readers: `engine.models.load_classifier`
(hence `Victim.load`, `engine eval`, attacks), which recognises the file, so no flag is needed.
Both import this module; neither imports the other. torch is imported inside the functions, so
the constants can be read (e.g. by study planning) without it.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from engine.common.errors import UserError

QUANTIZED_WEIGHTS = "quantized.safetensors"
FORMAT = "engine-dynamic-int8"  # the safetensors metadata `format`
_INT8_SUFFIXES = (".weight_int8", ".weight_scale", ".weight_zero_point")


@contextlib.contextmanager
def quiet_deprecations() -> Iterator[None]:
    """torch 2.13 warns that torch.ao.quantization is deprecated on every call; it still works (pinned torch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def dynamic_linear():
    """The class of a dynamically quantized linear layer (imports torch's quantized modules)."""
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


def is_quantized(model) -> bool:
    """True when the model holds dynamically quantized linear layers (CPU-only)."""
    linear = dynamic_linear()
    return any(isinstance(module, linear) for module in model.modules())


def quantize_int8(model):
    """A dynamically quantized copy-in-place of `model` (every nn.Linear → int8 weights), on the CPU.

    PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic` over every
    `nn.Linear`): int8 weights with one scale per tensor, activations quantized per batch.
    """
    import torch

    if torch.backends.quantized.engine not in ("x86", "fbgemm", "onednn", "qnnpack"):
        raise UserError(f"int8 quantization: torch's quantized engine is {torch.backends.quantized.engine!r}; "
                        f"this build supports {torch.backends.quantized.supported_engines}")
    model = model.to("cpu").float().eval()
    with quiet_deprecations():
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def quantized_state(model) -> dict:
    """Plain tensors for safetensors: float parameters/buffers, and int8 weight + scale + zero point + bias per quantized layer."""
    import torch

    linear = dynamic_linear()
    state: dict = {}
    quantized_names = set()
    for name, module in model.named_modules():
        if not isinstance(module, linear):
            continue
        weight = module.weight()
        if weight.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            raise UserError(f"{name}: quantization scheme {weight.qscheme()} is not supported for saving")
        quantized_names.add(name)
        state[f"{name}.weight_int8"] = weight.int_repr().contiguous()
        state[f"{name}.weight_scale"] = torch.tensor(weight.q_scale(), dtype=torch.float64)
        state[f"{name}.weight_zero_point"] = torch.tensor(weight.q_zero_point(), dtype=torch.int64)
        if module.bias() is not None:
            state[f"{name}.bias"] = module.bias().detach().contiguous()
    seen: dict[int, str] = {}
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if id(tensor) in seen:  # tied weights: stored once
            continue
        seen[id(tensor)] = name
        state[name] = tensor.detach().contiguous()
    return state


def save_weights(model, directory: Path) -> None:
    """`directory/quantized.safetensors` for a dynamically quantized `model` (config and tokenizer are the writer's)."""
    from safetensors.torch import save_file

    save_file(quantized_state(model), str(Path(directory) / QUANTIZED_WEIGHTS), metadata={"format": FORMAT})


def load_weights(model, directory: Path):
    """`model` (the float architecture of `directory/config.json`) quantized and given the stored weights."""
    from safetensors.torch import load_file

    directory = Path(directory)
    model = quantize_int8(model)
    try:
        state = load_file(str(directory / QUANTIZED_WEIGHTS))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise UserError(f"{directory / QUANTIZED_WEIGHTS}: cannot read the quantized weights ({err})") from None
    _load_state(model, state, directory)
    return model.eval()


def _load_state(model, state: dict, directory: Path) -> None:
    import torch

    linear = dynamic_linear()
    used: set[str] = set()
    for name, module in model.named_modules():
        if not isinstance(module, linear):
            continue
        keys = [name + suffix for suffix in _INT8_SUFFIXES]
        missing = [key for key in keys if key not in state]
        if missing:
            raise UserError(f"{directory / QUANTIZED_WEIGHTS}: no {', '.join(missing)}; the file does not match config.json")
        weight = torch._make_per_tensor_quantized_tensor(
            state[keys[0]], float(state[keys[1]].item()), int(state[keys[2]].item()))
        bias = state.get(f"{name}.bias")
        module.set_weight_bias(weight, bias)
        used.update(keys)
        if bias is not None:
            used.add(f"{name}.bias")
    floats = {key: value for key, value in state.items() if key not in used}
    tensors = dict(model.named_parameters(remove_duplicate=False)) | dict(model.named_buffers(remove_duplicate=False))
    unexpected = sorted(set(floats) - set(tensors))
    if unexpected:
        raise UserError(f"{directory / QUANTIZED_WEIGHTS} does not match config.json: unexpected {unexpected[:5]}")
    with torch.no_grad():
        for key, value in floats.items():
            target = tensors[key]
            if target.shape != value.shape:
                raise UserError(f"{directory / QUANTIZED_WEIGHTS}: {key} has shape {tuple(value.shape)}, "
                                f"config.json says {tuple(target.shape)}")
            target.copy_(value)
    loaded = {id(tensors[key]) for key in floats}
    missing = sorted(key for key, tensor in tensors.items() if id(tensor) not in loaded)
    if missing:  # tied tensors share one object, so they count as loaded
        raise UserError(f"{directory / QUANTIZED_WEIGHTS} does not match config.json: missing {missing[:5]}")
