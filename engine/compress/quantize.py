"""Quantization: dynamic int8 linear layers for the CPU, or fp16/bf16 weights for GPUs.

**int8** is PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic` over every
`nn.Linear`), the way published studies quantize CodeBERT: weights are stored as int8 with one
scale per tensor (symmetric, zero point 0), activations are quantized on the fly per batch, and
the int8 matrix products run on the CPU's fbgemm/x86 kernels. Embeddings and LayerNorms stay
float32.

**Serialization.** A dynamically quantized module holds its weights as an opaque packed object
that neither safetensors nor `from_pretrained` can store. Saving the float weights with a note
"quantize on load" would reproduce the same predictions (quantization is deterministic) but not
the size on disk the study compares. So the variant stores what actually runs:
`quantized.safetensors` holds every float tensor of the model (embeddings, LayerNorms) and, for
each quantized linear layer, its int8 weight (`<name>.weight_int8`), scale and zero point
(`<name>.weight_scale`, `<name>.weight_zero_point`) and float bias. `load_quantized` rebuilds
the architecture from `config.json`, quantizes it (which creates the quantized modules) and
then overwrites every tensor with the stored one, so a new process computes bit-identical
probabilities (tested in a subprocess). There is deliberately no `model.safetensors`:
a plain `from_pretrained` fails loudly instead of silently loading random linear weights.
`engine.models.load_classifier` (hence `Victim.load`, `engine eval`, attacks) recognises the
file and calls `load_quantized`, so no flag is needed.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from engine.errors import UserError

QUANTIZED_WEIGHTS = "quantized.safetensors"
CAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
_INT8_SUFFIXES = (".weight_int8", ".weight_scale", ".weight_zero_point")


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    """torch 2.13 warns that torch.ao.quantization is deprecated on every call; it still works (pinned torch)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _dynamic_linear():
    from torch.ao.nn.quantized.dynamic import Linear

    return Linear


def is_quantized(model) -> bool:
    """True when the model holds dynamically quantized linear layers (CPU-only)."""
    linear = _dynamic_linear()
    return any(isinstance(module, linear) for module in model.modules())


def quantize_int8(model):
    """A dynamically quantized copy-in-place of `model` (every nn.Linear → int8 weights), on the CPU."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm", "onednn", "qnnpack"):
        raise UserError(f"int8 quantization: torch's quantized engine is {torch.backends.quantized.engine!r}; "
                        f"this build supports {torch.backends.quantized.supported_engines}")
    model = model.to("cpu").float().eval()
    with _quiet_deprecations():
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def quantization_report(model) -> dict[str, Any]:
    """Which modules run in int8 and which tensors stay float, with their parameter counts."""
    linear = _dynamic_linear()
    int8_modules, int8_parameters = [], 0
    for name, module in model.named_modules():
        if isinstance(module, linear):
            weight = module.weight()
            int8_modules.append(name)
            int8_parameters += weight.numel()
    float_tensors: dict[str, int] = {}
    seen: set[int] = set()
    for name, parameter in model.named_parameters():
        if id(parameter) not in seen:
            seen.add(id(parameter))
            float_tensors[name] = parameter.numel()
    bias_parameters = sum(module.bias().numel() for module in model.modules()
                          if isinstance(module, linear) and module.bias() is not None)
    float_modules = sorted({name.rpartition(".")[0] for name in float_tensors})
    return {
        "dtype": "int8",
        "scheme": "dynamic, per-tensor symmetric int8 weights, activations quantized per batch at run time",
        "engine": torch.backends.quantized.engine,
        "int8_modules": int8_modules,
        "int8_weights": int8_parameters,
        "float_modules": float_modules,
        "float_parameters": sum(float_tensors.values()) + bias_parameters,
        "float_note": "embeddings and LayerNorms stay float32; the biases of int8 layers are float32 too",
    }


def quantized_state(model) -> dict[str, torch.Tensor]:
    """Plain tensors for safetensors: float parameters/buffers, and int8 weight + scale + zero point + bias per quantized layer."""
    linear = _dynamic_linear()
    state: dict[str, torch.Tensor] = {}
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


def save_quantized(model, tokenizer, directory: str | os.PathLike) -> None:
    """config.json, tokenizer files and quantized.safetensors into `directory` (see the module docstring)."""
    from safetensors.torch import save_file

    from engine.models import quiet_transformers

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.config.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    save_file(quantized_state(model), str(directory / QUANTIZED_WEIGHTS), metadata={"format": "engine-dynamic-int8"})


def load_quantized(directory: str | os.PathLike):
    """`(model, tokenizer)` of a directory written by `save_quantized`, in eval mode on the CPU."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from engine.models import load_tokenizer, quiet_transformers

    directory = Path(directory)
    tokenizer = load_tokenizer(directory)
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(directory)
            model = AutoModelForSequenceClassification.from_config(config)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot rebuild the quantized model in {directory}: {err}") from None
    model = quantize_int8(model)
    try:
        state = load_file(str(directory / QUANTIZED_WEIGHTS))
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise UserError(f"{directory / QUANTIZED_WEIGHTS}: cannot read the quantized weights ({err})") from None
    _load_state(model, state, directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def _load_state(model, state: dict[str, torch.Tensor], directory: Path) -> None:
    linear = _dynamic_linear()
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


def cast_weights(model, dtype: str):
    """fp16/bf16 copies of every floating weight (for GPU inference); the model is saved as usual."""
    if dtype not in CAST_DTYPES:
        raise UserError(f"--dtype {dtype!r}: use int8, fp16 or bf16")
    return model.to(CAST_DTYPES[dtype])
