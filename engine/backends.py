"""How a victim runs its model's forward pass: the backends behind `--backend`.

An attack's cost is the victim's forward pass (96–99 % of its wall time on a CPU), so this is
where speed is won, and only *exactly*: a backend may change probabilities by float noise,
never the model under attack (int8 quantisation of the search copy, say, is not a backend).

- `hf`: the model's own transformers forward (attention as the checkpoint configures it:
  transformers 5 uses PyTorch's `scaled_dot_product_attention` for BERT/RoBERTa).
- `hf-eager`: the same forward with transformers' eager attention (matmul, softmax, matmul).
- `fast` (`FastEncoder`): the same arithmetic for BERT/RoBERTa-family sequence classifiers, laid
  out for inference. It saves work three ways, each exact up to float rounding:
  1. the classifier reads only the first token of the last layer, so that layer computes keys
     and values for every token but its query, attention output and feed-forward block for the
     first token only (a 4-layer model skips 21 % of its matrix products, a 12-layer one 7 %);
  2. the query, key and value projections are one matrix product (one weight read, one call);
  3. on the CPU, weights are packed once for oneDNN (`torch.ops.mkldnn._linear_pointwise`, the
     kernel `torch.compile` itself uses for linear layers) with the GELU and the residual
     addition fused into the product; elsewhere plain `torch.nn.functional.linear`.
  It is hand-written because the exact library paths measured slower on this project's CPU
  (`bench/victim.py` prints the table: transformers' own forward, torch.compile, ONNX Runtime;
  bf16 is faster but not exact). It keeps its own packed copy of the linear weights (about the
  model's size again in memory). At construction it checks itself against the model's own forward on a probe batch
  (padded and unpadded rows) and refuses to run if they differ beyond float noise; it re-reads
  weights that changed in place (a model still being trained) and hands over to the model's
  own forward while forward hooks are registered or the model is in training mode.
- `compile`: `torch.compile(model, dynamic=True)` of the model's own forward (one graph for
  every batch size and length; the first call compiles, which takes minutes on a small CPU).
- `auto` (default): `fast` on the CPU when the architecture is one it covers, else `hf`.

`make_forward(model, backend, device)` returns a `Forward`: tensors in (`input_ids`,
`attention_mask`, `token_type_ids`), logits out, and the name of the backend actually used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.device import BACKENDS
from engine.errors import UserError

# Sequence classifiers whose forward `FastEncoder` reproduces: encoder -> first token -> head.
_POOLER_HEADS = {"BertForSequenceClassification"}  # pooler(dense, tanh) -> dropout -> linear
_FIRST_TOKEN_HEADS = {"RobertaForSequenceClassification", "XLMRobertaForSequenceClassification",
                      "CamembertForSequenceClassification"}  # head(features) reads features[:, 0]
# |Δ logit| / (1 + |logit|) allowed between `fast` and the model's own forward on the probe batch: float
# noise in fp32; half precision rounds to ~3 significant digits at every layer. A wrong layout is off by O(1).
PROBE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 5e-2}


def check_backend(name: str) -> str:
    """The canonical name of `--backend NAME`, or a user error listing the choices."""
    key = (name or "auto").strip().lower()
    if key not in BACKENDS:
        raise UserError(f"--backend {name!r}: use one of {', '.join(BACKENDS)}")
    return key


@dataclass
class Forward:
    """A callable `tensors -> logits` and what it is: `backend` (the one that runs), `note` (why
    `auto` chose it, when it did not choose `fast`)."""

    run: Callable[[dict[str, torch.Tensor]], torch.Tensor]
    backend: str
    note: str | None = None

    def __call__(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.run(tensors)


def make_forward(model, backend: str, device: torch.device) -> Forward:
    """The forward pass `backend` names, for `model` already placed on `device` in its dtype."""
    backend = check_backend(backend)
    if backend in ("auto", "fast"):
        reason = FastEncoder.unsupported(model)
        if reason is None and backend == "auto" and device.type != "cpu":
            reason = f"auto uses fast on the CPU only (device {device.type}); --backend fast to use it here"
        if reason is None:
            try:
                return Forward(FastEncoder(model), "fast")
            except FastPathMismatch as err:
                reason = str(err)
        if backend == "fast":
            raise UserError(f"--backend fast: {reason}; use --backend hf")
        return Forward(_hf_forward(model), "hf", note=reason)
    if backend == "hf":
        return Forward(_hf_forward(model), "hf")
    if backend == "hf-eager":
        return Forward(_eager_forward(model), "hf-eager")
    compiled = torch.compile(model, dynamic=True)
    return Forward(_hf_forward(compiled), "compile")


def _hf_forward(model) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    return lambda tensors: model(**tensors).logits


def _eager_forward(model) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """The model's own forward with transformers' eager attention, set for the call only (the
    model and its config may be shared with other victims)."""
    def run(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        config = model.config
        saved = config._attn_implementation
        config._attn_implementation = "eager"
        try:
            return model(**tensors).logits
        finally:
            config._attn_implementation = saved
    return run


class FastPathMismatch(Exception):
    """`FastEncoder` and the model's own forward disagree on the probe batch."""


class _Linear:
    """`x @ W.T + b` (optionally `+ add`, or followed by the exact erf GELU), with W packed for
    oneDNN once on the CPU; `torch.nn.functional` elsewhere. Inputs are 2-D."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, packed: bool) -> None:
        self.packed = packed
        self.weight = torch.ops.mkldnn._reorder_linear_weight(weight, None) if packed else weight
        self.bias = bias

    def __call__(self, x: torch.Tensor, *, add: torch.Tensor | None = None, gelu: bool = False) -> torch.Tensor:
        if self.packed:  # overloads named: resolving them by trial formats every tensor into an error message
            if add is not None:
                return torch.ops.mkldnn._linear_pointwise.binary(x, add, self.weight, self.bias, "add")
            if gelu:
                return torch.ops.mkldnn._linear_pointwise.default(x, self.weight, self.bias, "gelu", [], "none")
            return torch.ops.mkldnn._linear_pointwise.default(x, self.weight, self.bias, "none", [None], "")
        y = F.linear(x, self.weight, self.bias)
        if add is not None:
            y = y + add
        return F.gelu(y) if gelu else y


def _joined(*linears) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weights (and biases) of linear layers stacked into one layer's: their outputs side by side."""
    weight = torch.cat([linear.weight.detach() for linear in linears])
    if any(linear.bias is None for linear in linears):
        bias = None if all(linear.bias is None for linear in linears) else torch.cat(
            [linear.bias.detach() if linear.bias is not None else torch.zeros(linear.out_features, dtype=weight.dtype,
                                                                               device=weight.device) for linear in linears])
    else:
        bias = torch.cat([linear.bias.detach() for linear in linears])
    return weight, bias


class _Layer:
    """One post-LayerNorm transformer layer (BERT/RoBERTa) in flattened (tokens × hidden) form."""

    def __init__(self, layer, packed: bool, first_token_only: bool) -> None:
        attention = layer.attention.self
        self.heads = attention.num_attention_heads
        self.head_size = attention.attention_head_size
        self.scale = float(getattr(attention, "scaling", self.head_size ** -0.5))
        self.first_token_only = first_token_only
        if first_token_only:
            self.query = _Linear(*_joined(attention.query), packed)
            self.key_value = _Linear(*_joined(attention.key, attention.value), packed)
        else:
            self.qkv = _Linear(*_joined(attention.query, attention.key, attention.value), packed)
        self.attention_out = _Linear(*_joined(layer.attention.output.dense), packed)
        self.norm1 = layer.attention.output.LayerNorm
        self.up = _Linear(*_joined(layer.intermediate.dense), packed)
        act = layer.intermediate.intermediate_act_fn
        self.fused_gelu = getattr(act, "act", act) is F.gelu  # transformers' "gelu": the exact (erf) GELU
        self.activation = act
        self.down = _Linear(*_joined(layer.output.dense), packed)
        self.norm2 = layer.output.LayerNorm

    def __call__(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = hidden.shape
        heads, size = self.heads, self.head_size
        flat = hidden.reshape(batch * length, width)
        if self.first_token_only:
            key_value = self.key_value(flat).view(batch, length, 2, heads, size).permute(2, 0, 3, 1, 4)
            key, value = key_value[0], key_value[1]
            residual = hidden[:, 0].contiguous()
            query = self.query(residual).view(batch, 1, heads, size).transpose(1, 2)
            rows = 1
        else:
            qkv = self.qkv(flat).view(batch, length, 3, heads, size).permute(2, 0, 3, 1, 4)
            query, key, value = qkv[0], qkv[1], qkv[2]
            residual, rows = flat, length
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=self.scale)
        context = context.transpose(1, 2).reshape(batch * rows, heads * size)
        attended = self.norm1(self.attention_out(context, add=residual))
        if self.fused_gelu:
            inner = self.up(attended, gelu=True)
        else:
            inner = self.activation(self.up(attended))
        return self.norm2(self.down(inner, add=attended)).view(batch, rows, width)


class FastEncoder:
    """The `fast` backend (see the module docstring): logits of a BERT/RoBERTa sequence classifier."""

    def __init__(self, model, check: bool = True) -> None:
        reason = self.unsupported(model)
        if reason is not None:
            raise UserError(f"--backend fast: {reason}")
        self.model = model
        self.base = model.base_model
        self.pooler_head = type(model).__name__ in _POOLER_HEADS
        parameter = next(model.parameters())
        self.packed = parameter.device.type == "cpu" and parameter.dtype in (torch.float32, torch.bfloat16) \
            and torch.backends.mkldnn.is_available()
        self._signature: tuple | None = None
        self._build()
        if check:
            self._check()

    @staticmethod
    def unsupported(model) -> str | None:
        """Why `FastEncoder` cannot run `model` (None: it can)."""
        name = type(model).__name__
        if name not in _POOLER_HEADS | _FIRST_TOKEN_HEADS:
            return f"{name} is not a BERT/RoBERTa sequence classifier the fast path covers"
        config = model.config
        if getattr(config, "is_decoder", False) or getattr(config, "add_cross_attention", False):
            return "a decoder configuration"
        if getattr(config, "position_embedding_type", "absolute") not in (None, "absolute"):
            return f"position embeddings {config.position_embedding_type!r}"
        base = model.base_model
        layers = getattr(getattr(base, "encoder", None), "layer", None)
        if layers is None or not len(layers):
            return "no encoder layers"
        for layer in layers:
            parts = (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value,
                     layer.attention.output.dense, layer.intermediate.dense, layer.output.dense)
            if any(type(part) is not torch.nn.Linear for part in parts):
                return "layers that are not plain torch.nn.Linear (a quantized model?)"
            if any(type(norm) is not torch.nn.LayerNorm for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm)):
                return "layer norms that are not torch.nn.LayerNorm"
        if type(model).__name__ in _POOLER_HEADS and getattr(base, "pooler", None) is None:
            return "a BERT classifier without its pooler"
        return None

    def _build(self) -> None:
        layers = self.base.encoder.layer
        self.layers = [_Layer(layer, self.packed, index == len(layers) - 1) for index, layer in enumerate(layers)]
        self._signature = self._current_signature()

    def _current_signature(self) -> tuple:
        """Identity and in-place version of every weight: changes when a weight is updated or replaced."""
        return tuple((p.data_ptr(), p._version) for p in self.model.parameters())

    def _own_forward_needed(self) -> bool:
        model = self.model
        return model.training or any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())

    def __call__(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._own_forward_needed():
            return self.model(**tensors).logits
        if self._current_signature() != self._signature:
            self._build()
        return self.logits(tensors["input_ids"], tensors.get("attention_mask"), tensors.get("token_type_ids"))

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :]
        for layer in self.layers:
            hidden = layer(hidden, mask)
        if self.pooler_head:
            return self.model.classifier(self.model.dropout(self.base.pooler(hidden)))
        return self.model.classifier(hidden)

    def _check(self) -> None:
        """Compare with the model's own forward on a probe batch: one full row, one padded row."""
        config = self.model.config
        embeddings = self.base.embeddings
        positions = embeddings.position_embeddings.num_embeddings - (
            (config.pad_token_id or 0) + 1 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0)
        length = max(2, min(12, positions))
        vocab = embeddings.word_embeddings.num_embeddings
        pad = config.pad_token_id if config.pad_token_id is not None else 0
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (2, length), generator=generator)
        ids[ids == pad] = (pad + 1) % vocab
        mask = torch.ones_like(ids)
        mask[1, length // 2:] = 0
        ids[1, length // 2:] = pad
        device = next(self.model.parameters()).device
        tensors = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
        if getattr(config, "type_vocab_size", 0) and type(self.model).__name__ in _POOLER_HEADS:
            tensors["token_type_ids"] = torch.zeros_like(tensors["input_ids"])
        with torch.inference_mode():
            mine = self.logits(**tensors).float()
            theirs = self.model(**tensors).logits.float()
        error = float(((mine - theirs).abs() / (1 + theirs.abs())).max())
        if not error <= PROBE_TOLERANCE.get(next(self.model.parameters()).dtype, 1e-4):
            raise FastPathMismatch(f"the fast path differs from the model's own forward by {error:.1e} "
                                   f"(relative logit) on a probe batch")
