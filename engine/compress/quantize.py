"""Quantization: dynamic int8 linear layers for the CPU, or fp16/bf16 weights for GPUs.

**int8** is PyTorch's dynamic quantization (`torch.ao.quantization.quantize_dynamic` over every
`nn.Linear`), the way published studies quantize CodeBERT: weights are stored as int8 with one
scale per tensor (symmetric, zero point 0), activations are quantized on the fly per batch, and
the int8 matrix products run on the CPU's fbgemm/x86 kernels. Embeddings and LayerNorms stay
float32.

**Serialization**: `save_quantized` writes config, tokenizer and `quantized.safetensors` in the
format of `engine.common.int8` (what is stored and why), which `engine.models.load_classifier`
reads back, bit-identical (tested in a subprocess).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from engine.common.int8 import dynamic_linear, save_weights
from engine.errors import UserError
from engine.models import quiet_transformers

CAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def quantization_report(model) -> dict[str, Any]:
    """Which modules run in int8 and which tensors stay float, with their parameter counts."""
    linear = dynamic_linear()
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


def save_quantized(model, tokenizer, directory: str | os.PathLike) -> None:
    """config.json, tokenizer files and quantized.safetensors (`engine.common.int8`) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.config.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    save_weights(model, directory)


def cast_weights(model, dtype: str):
    """fp16/bf16 copies of every floating weight (for GPU inference); the model is saved as usual."""
    if dtype not in CAST_DTYPES:
        raise UserError(f"--dtype {dtype!r}: use int8, fp16 or bf16")
    return model.to(CAST_DTYPES[dtype])
