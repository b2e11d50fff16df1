"""Pruning: global L1-magnitude weight pruning, or attention-head pruning by importance.

- **Unstructured** (`prune_unstructured`): the `ratio` share of smallest-magnitude weights among
  all the encoder's linear layers (`scope="linear"`: attention Q/K/V and output, intermediate
  and output dense) or only the attention Q/K/V projections (`scope="qkv"`, as in published
  CodeBERT compression studies) is set to zero, ranked globally (one threshold for all layers,
  `torch.nn.utils.prune.global_unstructured` with L1), and the masks are made permanent
  (`prune.remove`), so the model is an ordinary checkpoint whose weights contain zeros.
  Biases, embeddings, LayerNorms, the pooler and the classifier head are not pruned.
- **Heads** (`prune_heads`): each attention head gets the importance of Michel et al. (NeurIPS
  2019), the mean absolute gradient of the loss with respect to a gate multiplying the head's
  output, over training examples; importances are L2-normalised within each layer; the `ratio`
  share of all heads with the lowest importance is removed (at least one head per layer stays).
  transformers 5 has no `prune_heads`, so a head is removed by zeroing its Q/K/V rows and biases
  and its columns of the attention output projection: its output is exactly zero and the shapes
  (and so the checkpoint format) do not change.

Weights that were zero before (a pruned parent) count towards the ratio: pruning a 40 % sparse
model at 0.5 zeroes 50 % of the weights in total, not 50 % more.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from engine.errors import UserError

SCOPES = ("linear", "qkv")
_QKV = ("query", "key", "value")


def encoder_linears(model, scope: str = "linear") -> dict[str, torch.nn.Linear]:
    """The encoder's linear layers by name (`scope="qkv"`: only attention query/key/value)."""
    if scope not in SCOPES:
        raise UserError(f"--scope {scope!r}: use {' or '.join(SCOPES)}")
    found = {}
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or ".encoder." not in f".{name}.":
            continue
        if scope == "qkv" and name.rpartition(".")[2] not in _QKV:
            continue
        found[name] = module
    if not found:
        raise UserError(f"the model ({type(model).__name__}) has no encoder linear layers"
                        f"{' named query/key/value' if scope == 'qkv' else ''} to prune")
    return found


def sparsity_report(model, scope: str = "linear") -> dict[str, Any]:
    """Share of zero weights per encoder linear layer and over all of them (weights only, no biases)."""
    per_layer, zeros, total = {}, 0, 0
    for name, module in encoder_linears(model, scope).items():
        weight = module.weight.detach()
        layer_zeros = int((weight == 0).sum())
        per_layer[name] = round(layer_zeros / weight.numel(), 6)
        zeros += layer_zeros
        total += weight.numel()
    return {"scope": scope, "overall": zeros / total, "zero_weights": zeros, "weights": total, "per_layer": per_layer}


def prune_unstructured(model, ratio: float, scope: str = "linear") -> dict[str, Any]:
    """Zero the `ratio` smallest-magnitude weights of the encoder's linear layers, globally; returns the sparsity report."""
    from torch.nn.utils import prune

    check_ratio(ratio)
    layers = encoder_linears(model, scope)
    targets = [(module, "weight") for module in layers.values()]
    with torch.no_grad():
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=float(ratio))
        for module, name in targets:
            prune.remove(module, name)  # masks made permanent: plain weights with zeros
    return sparsity_report(model, scope)


def check_ratio(ratio: float) -> None:
    if not (isinstance(ratio, (int, float)) and 0 < ratio < 1 and math.isfinite(ratio)):
        raise UserError(f"--ratio {ratio}: must be strictly between 0 and 1 (the share of weights or heads to remove)")


# --------------------------------------------------------------------------- heads


def attention_blocks(model) -> list[tuple[str, Any, int]]:
    """(name, attention module, heads) for every BERT/RoBERTa-style attention block (`.self.query/key/value`, `.output.dense`)."""
    blocks = []
    heads = int(getattr(model.config, "num_attention_heads", 0) or 0)
    for name, module in model.named_modules():
        inner = getattr(module, "self", None)
        output = getattr(module, "output", None)
        if inner is None or output is None or not all(hasattr(inner, part) for part in _QKV):
            continue
        if not isinstance(getattr(output, "dense", None), torch.nn.Linear):
            continue
        blocks.append((name, module, heads))
    if not blocks or heads < 1:
        raise UserError(f"--structured heads: {type(model).__name__} has no BERT/RoBERTa-style attention blocks")
    return blocks


def head_importance(model, tokenizer, codes: Sequence, labels: Sequence[int], *, max_length: int,
                    batch_size: int = 16, device: torch.device | str = "cpu") -> torch.Tensor:
    """Layers × heads importance: mean |∂loss/∂gate| over `codes` (Michel et al. 2019), L2-normalised per layer."""
    from engine.victim import encode_codes, pad_batch

    blocks = attention_blocks(model)
    heads = blocks[0][2]
    hidden = blocks[0][1].output.dense.in_features
    if hidden % heads:
        raise UserError(f"hidden size {hidden} is not a multiple of {heads} heads")
    width = hidden // heads
    gates = torch.ones(len(blocks), heads, device=device, requires_grad=True)
    hooks = []
    for layer, (_, block, _) in enumerate(blocks):
        def gate_input(module, args, layer=layer):
            (context,) = args
            shape = context.shape
            scaled = context.view(*shape[:-1], heads, width) * gates[layer].view(*([1] * (len(shape) - 1)), heads, 1)
            return (scaled.view(shape),)
        hooks.append(block.output.dense.register_forward_pre_hook(gate_input))
    model.to(device).eval()  # dropout off: the importance of the model as it predicts
    encoded = encode_codes(tokenizer, list(codes), max_length)
    targets = torch.tensor(list(labels), device=device)
    total = torch.zeros_like(gates)
    try:
        for start in range(0, len(encoded), batch_size):
            tensors = pad_batch(tokenizer, encoded[start:start + batch_size], None, device)
            logits = model(**tensors).logits.float()
            batch_targets = targets[start:start + batch_size]
            if logits.shape[1] == 1:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], batch_targets.float(), reduction="sum")
            else:
                loss = torch.nn.functional.cross_entropy(logits, batch_targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, gates)
            total += grad.abs()
    finally:
        for hook in hooks:
            hook.remove()
    importance = total.detach() / max(1, len(encoded))
    norms = importance.norm(dim=1, keepdim=True).clamp_min(1e-20)
    return (importance / norms).cpu()


def choose_heads(importance: torch.Tensor, ratio: float) -> dict[int, list[int]]:
    """Layer → heads to remove: the round(ratio × all heads) least important, keeping ≥ 1 head per layer."""
    check_ratio(ratio)
    layers, heads = importance.shape
    budget = min(round(ratio * layers * heads), layers * (heads - 1))
    order = sorted(((float(importance[l, h]), l, h) for l in range(layers) for h in range(heads)))
    chosen: dict[int, list[int]] = {}
    for _, layer, head in order:
        if budget == 0:
            break
        if len(chosen.get(layer, [])) >= heads - 1:
            continue
        chosen.setdefault(layer, []).append(head)
        budget -= 1
    return {layer: sorted(found) for layer, found in sorted(chosen.items())}


def zero_heads(model, removed: dict[int, list[int]]) -> None:
    """Remove heads by zeroing their Q/K/V rows and biases and their output-projection columns."""
    blocks = attention_blocks(model)
    heads = blocks[0][2]
    with torch.no_grad():
        for layer, head_list in removed.items():
            _, block, _ = blocks[layer]
            width = block.output.dense.in_features // heads
            for head in head_list:
                rows = slice(head * width, (head + 1) * width)
                for part in _QKV:
                    linear = getattr(block.self, part)
                    linear.weight[rows] = 0
                    if linear.bias is not None:
                        linear.bias[rows] = 0
                block.output.dense.weight[:, rows] = 0


def prune_heads(model, tokenizer, codes: Sequence, labels: Sequence[int], ratio: float, *, max_length: int,
                device: torch.device | str = "cpu") -> dict[str, Any]:
    """Importance-ranked head pruning (see the module docstring); returns heads removed and the sparsity report."""
    check_ratio(ratio)
    if not codes:
        raise UserError("--structured heads needs labelled training examples to measure head importance")
    importance = head_importance(model, tokenizer, codes, labels, max_length=max_length, device=device)
    removed = choose_heads(importance, ratio)
    model.to("cpu")
    zero_heads(model, removed)
    layers, heads = importance.shape
    count = sum(len(found) for found in removed.values())
    return {
        "heads_total": layers * heads,
        "heads_removed": count,
        "heads_removed_share": count / (layers * heads),
        "removed": {str(layer): found for layer, found in removed.items()},
        "importance": [[round(float(value), 6) for value in row] for row in importance],
        "importance_examples": len(codes),
        "sparsity": sparsity_report(model, "linear"),
    }
