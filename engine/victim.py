"""The victim: programs in, an N × C probability matrix out.

A `Victim` wraps any Hugging Face sequence classifier (ours, a third-party directory or a hub
id) and owns everything between the strings an attack proposes and the probabilities it
reads back:

- **input normalisation** (declared and recorded; default `none`);
- an **exact-input cache** keyed by the normalised input, LRU with a size limit;
- **tokenization** of each distinct input once, pairs as `tokenizer(a, b)` with the length
  budget split by longest-first truncation; a renamed candidate (`engine.splice.EditedCode`)
  is re-tokenized only around its edits, its other ids taken from its base program's;
- a second cache keyed by **what the model reads** (a digest of the truncated token ids): two
  programs that differ only beyond `max_length` (a rename whose occurrences all lie past the
  cut) are one forward pass, not two;
- **batching** with dynamic padding and length bucketing: the distinct uncached inputs of a call
  are sorted by token length and cut into mini-batches, each padded to its own longest;
- device, dtype, the forward-pass **backend** (`engine.backends`: by default on the CPU a
  BERT/RoBERTa classifier runs an exact inference layout, else the model's own forward),
  `torch.inference_mode`, and the output head: one logit → `[1-σ(z), σ(z)]`, several →
  softmax; an optional label mapping reorders the model's classes into the dataset's;
- **query accounting**: `queries` (candidate programs evaluated, cache hits included: the
  number papers report), `forward_passes` (unique model inputs actually run through the model),
  cache hits, and the seconds spent inside the model and inside the victim.

    >>> victim = Victim.load("runs/victim")
    >>> victim.predict_proba(["def f(x): return x", "def g(y): return y"]).shape
    (2, 10)
    >>> victim.counters().queries
    2

`embed` gives the encoder's mean-pooled last hidden states instead of probabilities, batched,
cached and counted the same way, for recipes that compare programs (CODA): recipes run the
model only through `predict_proba` and `embed` (tested for every recipe).
"""
from __future__ import annotations

import hashlib
import os
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.backends import make_forward
from engine.device import describe_device, dtype_name, resolve_device, resolve_dtype, synchronize
from engine.errors import UserError
from engine.manifest import read_manifest
from engine.models import check_max_length, load_classifier
from engine.splice import Splicer

Code = str | tuple[str, str]

NORMALIZATIONS = {
    "none": "the program exactly as given",
    "strip": "leading and trailing whitespace removed",
    "whitespace": "every run of whitespace (newlines included) collapsed to one space, ends stripped",
}
_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str, mode: str) -> str:
    if mode == "none":
        return text
    if mode == "strip":
        return text.strip()
    if mode == "whitespace":
        return _WHITESPACE.sub(" ", text).strip()
    raise UserError(f"--normalize {mode!r}: use one of {', '.join(NORMALIZATIONS)}")


def normalize_code(code: Code, mode: str) -> Code:
    if isinstance(code, tuple):
        if len(code) != 2:
            raise UserError(f"a pair input must hold exactly two programs, got {len(code)}")
        return (normalize_text(code[0], mode), normalize_text(code[1], mode))
    if not isinstance(code, str):
        raise UserError(f"victim inputs are strings or pairs of strings, got {type(code).__name__}")
    return normalize_text(code, mode)


@dataclass(frozen=True)
class VictimCounters:
    """Query accounting since the last reset. Subtract two snapshots to get the cost of an interval.

    - `queries`: candidate programs evaluated, cache hits included (what the literature reports);
    - `forward_passes`: unique model inputs (truncated token sequences) actually run through the model;
    - `cache_hits`: queries answered without the model (either cache, or a duplicate within one call);
      always `queries - forward_passes`;
    - `batches`: model calls (mini-batches);
    - `model_seconds`: wall time inside the model's forward (device synchronised);
    - `victim_seconds`: wall time inside `predict_proba`, tokenization and cache look-ups included;
    - `embeddings`: how many of the queries were `embed` calls' inputs (encoder vectors, not
      probabilities); they count in every other counter too.
    """

    queries: int = 0
    forward_passes: int = 0
    cache_hits: int = 0
    batches: int = 0
    model_seconds: float = 0.0
    victim_seconds: float = 0.0
    embeddings: int = 0

    @property
    def hit_rate(self) -> float:
        """Share of queries answered without running the model (0.0 when nothing was queried)."""
        return self.cache_hits / self.queries if self.queries else 0.0

    def __sub__(self, other: VictimCounters) -> VictimCounters:
        return VictimCounters(**{name: getattr(self, name) - getattr(other, name) for name in asdict(self)})

    def __add__(self, other: VictimCounters) -> VictimCounters:
        return VictimCounters(**{name: getattr(self, name) + getattr(other, name) for name in asdict(self)})

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"hit_rate": self.hit_rate}


class Victim:
    """Batched, cached, counted inference for a sequence classifier. See the module docstring.

    Parameters
    ----------
    model, tokenizer:
        a transformers sequence-classification model and its tokenizer.
    max_length:
        tokens per input (pairs share it); None → the manifest's training length, else the
        model's own limit (at most 512).
    batch_size:
        programs per model call (an engineering knob: it never changes results beyond float noise).
    device, dtype:
        `auto|cpu|cuda|mps`, `fp32|bf16|fp16`; the model is moved and cast accordingly.
    backend:
        how the forward pass runs (`engine.backends.BACKENDS`): `auto` (default: `fast` on the
        CPU for BERT/RoBERTa classifiers, else `hf`), `fast`, `hf`, `hf-eager`, `compile`. All
        agree within float noise; `describe()["backend"]` says which one runs.
    normalize:
        `none|strip|whitespace` (see `NORMALIZATIONS`), applied before caching and tokenizing.
    label_map:
        for checkpoints whose class order differs from the dataset's: `label_map[i]` is the
        model output (index or label name) that means dataset label `i`. Must be a permutation.
    cache_size:
        entries in each LRU cache (programs; token sequences); 0 disables caching across calls
        (duplicates inside one call still run once).
    bucketing, padding, dedupe, splice:
        `bucketing=False` keeps request order inside a call; `padding="max_length"` pads every
        input to `max_length`; `dedupe=False` (with `cache_size=0`) runs every query, duplicates
        included; `splice=False` tokenizes every edited candidate in full. They exist to measure
        what the defaults (True, "longest", True, True) save.
    """

    def __init__(self, model, tokenizer, *, max_length: int | None = None, batch_size: int = 32,
                 device: str | torch.device = "auto", dtype: str = "fp32", backend: str = "auto",
                 normalize: str = "none",
                 label_map: Sequence[int | str] | None = None, cache_size: int = 100_000,
                 name: str | None = None, manifest: dict[str, Any] | None = None,
                 bucketing: bool = True, padding: str = "longest", dedupe: bool = True, splice: bool = True) -> None:
        if normalize not in NORMALIZATIONS:
            raise UserError(f"--normalize {normalize!r}: use one of {', '.join(NORMALIZATIONS)}")
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {batch_size}")
        if cache_size < 0:
            raise UserError(f"--cache-size must be ≥ 0, got {cache_size}")
        if padding not in ("longest", "max_length"):
            raise UserError(f"padding {padding!r}: use longest or max_length")
        if not dedupe and cache_size:
            raise UserError("dedupe=False (every query runs) needs cache_size=0")
        self.device = resolve_device(device)
        if _dynamically_quantized(model):  # int8 variants (engine compress): CPU kernels, float32 activations
            if self.device.type != "cpu":
                if str(device).strip().lower() != "auto":
                    raise UserError(f"--device {device}: this model has dynamically quantized int8 layers, which "
                                    "run on the CPU only; use --device cpu or auto")
                self.device = torch.device("cpu")
            if dtype_name(dtype) != "fp32":
                raise UserError(f"--dtype {dtype}: this model is int8-quantized; its float parts run in fp32")
        self.dtype = resolve_dtype(dtype, self.device)
        self.manifest = manifest
        self.name = name or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.model = _place(model, self.device, self.dtype).eval()
        self.forward = make_forward(self.model, backend, self.device)
        self.backend_requested = backend
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            raise UserError(f"{self.name}: the tokenizer has no padding token")
        if max_length is None and manifest:
            max_length = (manifest.get("hyperparameters") or {}).get("max_length")
        self.max_length = check_max_length(model, tokenizer, max_length)
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.cache_size = int(cache_size)
        self.bucketing = bool(bucketing)
        self.padding = padding
        self.dedupe = bool(dedupe)
        self.model_outputs = int(model.config.num_labels)
        self.head = "sigmoid" if self.model_outputs == 1 else "softmax"
        self.num_labels = 2 if self.model_outputs == 1 else self.model_outputs
        self.label_order = self._label_order(label_map)
        self.label_names = self._label_names()
        self._input_names = model_input_names(tokenizer)
        self.splicer = Splicer(tokenizer, self.max_length, self._input_names) if splice and Splicer.supports(tokenizer) else None
        self._cache: OrderedDict[Code, tuple[np.ndarray, bytes]] = OrderedDict()  # row, token digest
        self._token_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._embed_cache: OrderedDict[bytes, np.ndarray] = OrderedDict()  # token digest -> pooled vector
        self._counters = VictimCounters()

    # ------------------------------------------------------------------ construction

    @classmethod
    def load(cls, source: str | os.PathLike, **options: Any) -> Victim:
        """A victim from a model directory (ours or any Hugging Face classifier) or a hub id."""
        source = os.path.expanduser(str(source))
        manifest = read_manifest(source) if Path(source).is_dir() else None
        model, tokenizer = load_classifier(source)
        options.setdefault("name", source)
        return cls(model, tokenizer, manifest=manifest, **options)

    def _label_order(self, label_map: Sequence[int | str] | None) -> list[int] | None:
        if label_map is None:
            return None
        label2id = {str(k): int(v) for k, v in (getattr(self.model.config, "label2id", None) or {}).items()}
        if self.head == "sigmoid":
            label2id = {"0": 0, "1": 1} | label2id
        order = []
        for item in label_map:
            if isinstance(item, str) and not item.strip().lstrip("-").isdigit():
                if item not in label2id:
                    raise UserError(f"--label-map: the model has no label named {item!r}; it has {', '.join(label2id)}")
                order.append(label2id[item])
            else:
                order.append(int(item))
        if sorted(order) != list(range(self.num_labels)):
            raise UserError(f"--label-map {','.join(map(str, label_map))}: must list each of the model's "
                            f"{self.num_labels} outputs (0..{self.num_labels - 1}) exactly once")
        return None if order == list(range(self.num_labels)) else order

    def _label_names(self) -> list[str]:
        if self.manifest and len(self.manifest.get("label_names") or []) == self.num_labels:
            names = [str(name) for name in self.manifest["label_names"]]
        elif self.head == "sigmoid":
            names = ["0", "1"]
        else:
            id2label = getattr(self.model.config, "id2label", None) or {}
            names = [str(id2label.get(i, id2label.get(str(i), i))) for i in range(self.model_outputs)]
        if self.label_order is not None:
            names = [names[j] for j in self.label_order]
        return names

    # ------------------------------------------------------------------ inference

    def __call__(self, codes: Sequence[Code]) -> np.ndarray:
        return self.predict_proba(codes)

    def predict(self, codes: Sequence[Code]) -> np.ndarray:
        """Predicted labels (argmax of `predict_proba`)."""
        return self.predict_proba(codes).argmax(axis=1)

    def predict_proba(self, codes: Sequence[Code]) -> np.ndarray:
        """An `len(codes) × num_labels` float64 matrix of class probabilities, rows in input order."""
        return self.predict_proba_groups([codes])[0][0]

    def predict_proba_groups(self, groups: Sequence[Sequence[Code]]) -> tuple[list[np.ndarray], list[VictimCounters]]:
        """Several callers' inputs in ONE pass: one cache look-up, one set of bucketed mini-batches
        (cross-example batching: `engine.attacks.interleave` merges the queries of several attacks).

        Returns each group's probability matrix (as `predict_proba` would give it, up to the float
        noise of another batch composition) and each group's share of the counters: its queries;
        the forward passes of the inputs it was the first to ask for (earlier groups first); the
        mini-batches that ran any of those; the model seconds split by forward passes and the rest
        of the victim's seconds by queries. The victim's own counters take the totals.
        """
        started = time.perf_counter()
        groups = [[code] if isinstance(code, str) else code for code in groups]  # a bare program is a group of one
        keyed = [[normalize_code(code, self.normalize) for code in group] for group in groups]
        keys = [key for group in keyed for key in group]
        if not self.dedupe:  # the naive path a benchmark compares against: every query runs
            fresh, _, model_seconds, batches, ran = self._run(keys, dedupe=False)
            rows = dict(enumerate(fresh))
            owners = [g for g, group in enumerate(keyed) for _ in group]  # input index -> its group
            keys = list(range(len(keys)))
        else:
            rows, model_seconds, batches, ran = self._lookup_or_run(keys)
            owners = {}  # key -> the first group that asked for it
            for g, group in enumerate(keyed):
                for key in group:
                    owners.setdefault(key, g)
        probs = np.stack([rows[key] for key in keys]) if keys else np.zeros((0, self.num_labels))
        if self.label_order is not None:
            probs = probs[:, self.label_order]
        elapsed = time.perf_counter() - started
        runs = len(ran)
        c = self._counters
        self._counters = replace(c, queries=c.queries + len(keys), forward_passes=c.forward_passes + runs,
                                 cache_hits=c.cache_hits + len(keys) - runs, batches=c.batches + batches,
                                 model_seconds=c.model_seconds + model_seconds, victim_seconds=c.victim_seconds + elapsed)
        out, shares, start = [], [], 0
        passes = [0] * len(groups)
        group_batches: list[set[int]] = [set() for _ in groups]
        for key, batch in ran.items():
            owner = owners[key]
            passes[owner] += 1
            group_batches[owner].add(batch)
        for g, group in enumerate(keyed):
            out.append(probs[start:start + len(group)])
            start += len(group)
            model_share = model_seconds * passes[g] / runs if runs else 0.0
            rest = (elapsed - model_seconds) * len(group) / len(keys) if keys else 0.0
            shares.append(VictimCounters(queries=len(group), forward_passes=passes[g], cache_hits=len(group) - passes[g],
                                         batches=len(group_batches[g]), model_seconds=model_share,
                                         victim_seconds=model_share + rest))
        return out, shares

    def _lookup_or_run(self, keys: list[Code]) -> tuple[dict[Code, np.ndarray], float, int, dict[Code, int]]:
        """Rows for the distinct `keys`: from the program cache, else from `_run` (which consults the
        token cache). Returns the rows, model seconds, mini-batches, and the keys that went through
        the model (one per forward pass) with the mini-batch that ran each."""
        rows: dict[Code, np.ndarray] = {}
        pending: dict[Code, None] = {}
        for key in keys:
            if key in rows or key in pending:
                continue
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                rows[key], digest = cached
                if digest in self._token_cache:  # keep both caches' recency in step
                    self._token_cache.move_to_end(digest)
            else:
                pending[key] = None
        if not pending:
            return rows, 0.0, 0, {}
        pending_keys = list(pending)
        fresh, digests, model_seconds, batches, ran = self._run(pending_keys)
        for key, row, digest in zip(pending_keys, fresh, digests):
            rows[key] = row
            if self.cache_size:
                self._cache[plain_code(key)] = (row, digest)
        _trim(self._cache, self.cache_size)
        return rows, model_seconds, batches, {pending_keys[i]: batch for i, batch in ran.items()}

    def encode(self, codes: Sequence[Code]) -> list[dict[str, list[int]]]:
        """Token ids (and masks) of each already-normalised input, truncated to `max_length`, unpadded."""
        return encode_codes(self.tokenizer, codes, self.max_length, self._input_names)

    def _encode_inputs(self, inputs: Sequence[Code]) -> list[dict[str, list[int]]]:
        """`encode`, splicing the ids of edited candidates where the tokenizer allows it."""
        if self.splicer is None:
            return self.encode(inputs)
        encoded = self.splicer.encode(inputs)
        missing = [i for i, item in enumerate(encoded) if item is None]
        if missing:
            for i, item in zip(missing, self.encode([inputs[i] for i in missing])):
                encoded[i] = item
        return encoded  # type: ignore[return-value]

    def token_lengths(self, codes: Sequence[Code]) -> list[int]:
        """Token count of each input as the model sees it (after normalisation and truncation)."""
        return [len(e["input_ids"]) for e in self.encode([normalize_code(c, self.normalize) for c in codes])]

    def untruncated_lengths(self, codes: Sequence[Code]) -> list[int]:
        """Token count of each input before truncation (special tokens included): longer than
        `max_length` means the model would not see the whole program."""
        keys = [normalize_code(c, self.normalize) for c in codes]
        lengths = []
        for key in keys:
            ids = self.tokenizer(*key, truncation=False, verbose=False) if isinstance(key, tuple) else self.tokenizer(key, truncation=False, verbose=False)
            lengths.append(len(ids["input_ids"]))
        return lengths

    def _run(self, inputs: list[Code], dedupe: bool = True) -> tuple[list[np.ndarray], list, float, int, dict[int, int]]:
        """Rows for `inputs`, running each distinct token sequence not in the token cache once
        (`dedupe=False`: every input, no cache). Returns the rows, their token digests, model
        seconds, mini-batches, and the inputs that went through the model (one per forward pass:
        their index → the mini-batch that ran it)."""
        encoded = self._encode_inputs(inputs)
        digests: list = [input_digest(e) for e in encoded] if dedupe else list(range(len(inputs)))
        known: dict = {}
        todo: dict = {}
        for i, digest in enumerate(digests):
            if digest in known or digest in todo:
                continue
            cached = self._token_cache.get(digest) if dedupe else None
            if cached is not None:
                self._token_cache.move_to_end(digest)
                known[digest] = cached
            else:
                todo[digest] = i
        order = list(todo.values())
        if self.bucketing:
            order.sort(key=lambda i: len(encoded[i]["input_ids"]), reverse=True)
        seconds, batches, ran = 0.0, 0, {}
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                width = self.max_length if self.padding == "max_length" else None
                tensors = pad_batch(self.tokenizer, [encoded[i] for i in chunk], width, self.device)
                synchronize(self.device)
                tick = time.perf_counter()
                logits = self.forward(tensors)
                probs = self._probabilities(logits).cpu().numpy()
                seconds += time.perf_counter() - tick
                batches += 1
                for row, i in enumerate(chunk):
                    ran[i] = batches - 1
                    known[digests[i]] = probs[row]
                    if self.cache_size and dedupe:
                        self._token_cache[digests[i]] = probs[row]
        _trim(self._token_cache, self.cache_size)
        return [known[digest] for digest in digests], digests, seconds, batches, ran

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.head == "sigmoid":
            positive = torch.sigmoid(logits[:, 0].double())
            return torch.stack([1.0 - positive, positive], dim=1)
        return torch.softmax(logits.double(), dim=-1)

    # ------------------------------------------------------------------ embeddings

    def embed(self, codes: Sequence[Code]) -> np.ndarray:
        """A `len(codes) × hidden` float32 matrix: the mean of the encoder's last hidden states over
        each input's tokens (padding excluded), as CODA compares programs.

        The one way a recipe may read anything but probabilities from the model, so it is
        accounted like `predict_proba`: every input is a query (`embeddings` counts them), each
        distinct token sequence not in the embedding cache one forward pass of the encoder (the
        classification head is not run), in length-sorted batches of `batch_size`, on the
        victim's device and dtype, normalised and truncated like any input.
        """
        started = time.perf_counter()
        if isinstance(codes, str):
            codes = [codes]
        keys = [normalize_code(code, self.normalize) for code in codes]
        encoded = self._encode_inputs(keys)
        digests = [input_digest(e) for e in encoded]
        vectors: dict[bytes, np.ndarray] = {}
        todo: dict[bytes, int] = {}
        for i, digest in enumerate(digests):
            if digest in vectors or digest in todo:
                continue
            cached = self._embed_cache.get(digest)
            if cached is not None:
                self._embed_cache.move_to_end(digest)
                vectors[digest] = cached
            else:
                todo[digest] = i
        order = sorted(todo.values(), key=lambda i: len(encoded[i]["input_ids"]), reverse=True)
        encoder = self.model.base_model
        seconds, batches = 0.0, 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                tensors = pad_batch(self.tokenizer, [encoded[i] for i in chunk], None, self.device)
                synchronize(self.device)
                tick = time.perf_counter()
                hidden = encoder(**tensors).last_hidden_state.float()
                mask = tensors["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).cpu().numpy()
                seconds += time.perf_counter() - tick
                batches += 1
                for row, i in enumerate(chunk):
                    vectors[digests[i]] = pooled[row]
                    if self.cache_size:
                        self._embed_cache[digests[i]] = pooled[row]
        _trim(self._embed_cache, self.cache_size)
        width = int(self.model.config.hidden_size)
        out = np.stack([vectors[d] for d in digests]).astype(np.float32) if digests else np.zeros((0, width), np.float32)
        c = self._counters
        self._counters = replace(c, queries=c.queries + len(keys), forward_passes=c.forward_passes + len(order),
                                 cache_hits=c.cache_hits + len(keys) - len(order), batches=c.batches + batches,
                                 model_seconds=c.model_seconds + seconds, embeddings=c.embeddings + len(keys),
                                 victim_seconds=c.victim_seconds + time.perf_counter() - started)
        return out

    # ------------------------------------------------------------------ accounting

    def counters(self) -> VictimCounters:
        """A snapshot of the counters (immutable; subtract two snapshots for an interval)."""
        return self._counters

    def reset_counters(self) -> VictimCounters:
        """Zero the counters (the cache is kept) and return their values before the reset."""
        before, self._counters = self._counters, VictimCounters()
        return before

    def clear_cache(self) -> None:
        self._cache.clear()
        self._token_cache.clear()
        self._embed_cache.clear()

    @property
    def cache_entries(self) -> int:
        return len(self._cache)

    def describe(self) -> dict[str, Any]:
        """The victim's recorded options: what a log or report needs to reproduce its outputs."""
        return {
            "model": self.name,
            "head": self.head,
            "num_labels": self.num_labels,
            "label_names": self.label_names,
            "label_map": self.label_order,
            "normalize": self.normalize,
            "normalize_description": NORMALIZATIONS[self.normalize],
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "bucketing": self.bucketing,
            "padding": self.padding,
            "dedupe": self.dedupe,
            "splice": self.splicer is not None,
            "device": describe_device(self.device),
            "dtype": dtype_name(self.dtype),
            "backend": self.forward.backend,
            "backend_requested": self.backend_requested,
            "backend_note": self.forward.note,
            "cache_size": self.cache_size,
            "manifest_created": (self.manifest or {}).get("created"),
        }


def model_input_names(tokenizer) -> list[str]:
    return [name for name in tokenizer.model_input_names if name in ("input_ids", "attention_mask", "token_type_ids")]


def encode_codes(tokenizer, codes: Sequence[Code], max_length: int,
                 input_names: Sequence[str] | None = None) -> list[dict[str, list[int]]]:
    """Unpadded encodings of programs and pairs, truncated to `max_length` tokens.

    Pairs go through `tokenizer(a, b)` with longest-first truncation, so the budget is split
    between the two programs the way the model's tokenizer defines (special tokens included).
    """
    input_names = list(input_names or model_input_names(tokenizer))
    singles = [i for i, code in enumerate(codes) if not isinstance(code, tuple)]
    pairs = [i for i, code in enumerate(codes) if isinstance(code, tuple)]
    encoded: list[dict[str, list[int]] | None] = [None] * len(codes)
    options = dict(truncation=True, max_length=max_length, padding=False, return_attention_mask=True,
                   return_token_type_ids="token_type_ids" in input_names)
    if singles:
        batch = tokenizer([codes[i] for i in singles], **options)
        for row, i in enumerate(singles):
            encoded[i] = {name: batch[name][row] for name in input_names if name in batch}
    if pairs:
        batch = tokenizer([codes[i][0] for i in pairs], [codes[i][1] for i in pairs],
                          **(options | {"truncation": "longest_first"}))
        for row, i in enumerate(pairs):
            encoded[i] = {name: batch[name][row] for name in input_names if name in batch}
    return encoded  # type: ignore[return-value]


def plain_code(code: Code) -> Code:
    """`code` as exact `str` objects: a cache key should hold text, not a candidate's edit history."""
    if isinstance(code, tuple):
        return tuple(plain_code(part) for part in code)  # type: ignore[return-value]
    return code if type(code) is str else str.__str__(code)


def input_digest(encoded: dict[str, list[int]]) -> bytes:
    """A 16-byte key for what the model reads: token ids (and token types where the model has them)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in ("input_ids", "token_type_ids"):
        if name in encoded:
            digest.update(np.asarray(encoded[name], dtype=np.int64).tobytes())
            digest.update(b"|")
    return digest.digest()


def _trim(cache: OrderedDict, size: int) -> None:
    """Drop least recently used entries beyond `size`."""
    while len(cache) > size:
        cache.popitem(last=False)


def pad_batch(tokenizer, encoded: Sequence[dict[str, list[int]]], width: int | None = None,
              device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Stack encodings into tensors padded to `width` (None: the longest in the batch), on the tokenizer's side.

    Hand-written rather than `tokenizer.pad`: the library pads Python lists item by item and took
    20 ms per batch of 64 programs of up to 400 tokens where this takes 1.7 ms (measured side by
    side), which is as long as a small victim's forward pass. tests/test_victim.py checks that both
    give the same tensors, right- and left-padded."""
    width = width or max(len(e["input_ids"]) for e in encoded)
    pad_values = {"input_ids": tokenizer.pad_token_id, "attention_mask": 0,
                  "token_type_ids": getattr(tokenizer, "pad_token_type_id", 0) or 0}
    left = getattr(tokenizer, "padding_side", "right") == "left"
    tensors = {}
    for name in encoded[0]:
        array = np.full((len(encoded), width), pad_values[name], dtype=np.int64)
        for row, item in enumerate(encoded):
            values = item[name]
            if left:
                array[row, width - len(values):] = values
            else:
                array[row, :len(values)] = values
        tensors[name] = torch.from_numpy(array).to(device)
    return tensors


def _dynamically_quantized(model) -> bool:
    return any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in model.modules())


def _place(model, device: torch.device, dtype: torch.dtype):
    """Move `model` to `device` and cast its floating weights to `dtype`, touching nothing already in place
    (a dynamically quantized model keeps its packed int8 weights)."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.device != device for t in tensors):
        model.to(device)
    if any(t.is_floating_point() and t.dtype != dtype for t in model.parameters()):
        model.to(dtype=dtype)
    return model


def parse_label_map(text: str | None) -> list[int | str] | None:
    """`--label-map 1,0` or `--label-map clean,buggy` → a list for `Victim(label_map=…)`."""
    if text is None or not text.strip():
        return None
    items = [item.strip() for item in text.split(",")]
    if any(not item for item in items):
        raise UserError(f"--label-map {text!r}: empty entry; give one model output per dataset label, comma-separated")
    return [int(item) if item.lstrip("-").isdigit() else item for item in items]
