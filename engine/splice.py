"""Incremental tokenization of renamed programs: never re-tokenize what did not change.

An attack's candidates are its original program with a few identifier occurrences replaced.
A byte-level BPE tokenizer (RoBERTa, CodeBERT, GraphCodeBERT, UniXcoder, CodeT5's encoder, our
`scratch:*` models) cuts text into pre-tokens with a left-to-right regular expression and
encodes every pre-token on its own, so a candidate's token ids are the original's everywhere
except in the pre-tokens an edit touches. `Splicer` keeps each base program's pre-tokens and
ids, re-encodes only the touched region (each edit's pre-tokens plus the ones adjacent to it)
with unchanged pre-tokens of context on either side (one on the left; on the right, the
whitespace pieces that follow and one more, since how a whitespace run splits depends on what
comes after it), and accepts the splice only when the context pre-tokens come back with their
original extents: the scan then re-joins the original's at the same places, so the ids are exactly those of a full tokenization (renames change no
whitespace, and class-run boundaries depend on adjacent characters only). Anything else —
another tokenizer family, a normalizer, pairs, text holding an added token such as `<unk>`, a
failed context check — is tokenized in full. `tests/test_splice.py` checks the equality on
thousands of random renames of real C, Java and Python programs.

`EditedCode` is how a candidate says where it came from: a `str` (so caches, hashing and every
other consumer see plain text) that also carries its base program and its edits.
"""
from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

Edit = tuple[int, int, str]  # (start, end, replacement) in character offsets of the base


class EditedCode(str):
    """Program text that remembers its base and the sorted, non-overlapping edits that made it."""

    base: str
    edits: tuple[Edit, ...]

    def __new__(cls, base: str, edits: Sequence[Edit]) -> EditedCode:
        pieces, position = [], 0
        for start, end, new in edits:
            if start < position or end < start:
                raise ValueError(f"edits must be sorted and must not overlap: {start}:{end} after {position}")
            pieces += [base[position:start], new]
            position = end
        pieces.append(base[position:])
        obj = super().__new__(cls, "".join(pieces))
        obj.base = base
        obj.edits = tuple(edits)
        return obj

    def __reduce__(self):
        return (EditedCode, (self.base, self.edits))


@dataclass
class _Base:
    """One base program: pre-token offsets, ids per pre-token (flattened) and special tokens."""

    text: str
    starts: list[int]
    ends: list[int]
    bounds: list[int]  # token index where pre-token k starts; bounds[-1] == len(ids)
    blank: list[bool]  # pre-token k is whitespace only
    ids: list[int]
    prefix: list[int]
    suffix: list[int]
    layouts: OrderedDict = field(default_factory=OrderedDict)  # edit spans -> _Region list


@dataclass
class _Region:
    """Pre-tokens lo..hi of a base re-encoded for a run of edits, and how to check the result.

    The window is pre-tokens `left..right`: `segments` are its unchanged texts around the edits
    `first..first+len(segments)-2`; the left context piece must come back as `(0, head)` (when
    `head` is not None) and the last `len(tail)` pieces with offsets `tail` measured from the
    window's end.
    """

    lo: int
    hi: int
    first: int
    segments: list[str]
    head: int | None
    tail: list[tuple[int, int]]


class Splicer:
    """Token ids of `EditedCode` candidates from their base's ids (see the module docstring).

    `encode(codes)` returns one entry per input: the unpadded encoding (`input_ids`,
    `attention_mask`, and zeroed `token_type_ids` where the model takes them) truncated to
    `max_length` exactly as the tokenizer truncates, or None where the input must be tokenized in
    full. `spliced` and `fallbacks` count both outcomes.
    """

    def __init__(self, tokenizer, max_length: int, input_names: Sequence[str], bases: int = 64) -> None:
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.input_names = list(input_names)
        backend = tokenizer.backend_tokenizer
        self._pre = backend.pre_tokenizer
        self._model = backend.model
        added = sorted((str(t) for t in tokenizer.get_added_vocab()), key=len, reverse=True)
        self._added = re.compile("|".join(map(re.escape, added))) if added else None
        self._bases: OrderedDict[str, _Base | None] = OrderedDict()
        self._capacity = bases
        self._piece_ids: dict[str, tuple[int, ...]] = {}  # tuples of ints: untracked by the garbage collector
        self.spliced = 0
        self.fallbacks = 0

    @staticmethod
    def supports(tokenizer) -> bool:
        """Byte-level BPE with its regex and no prefix space, no normalizer: the family this covers."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None or backend.normalizer is not None:
            return False
        pre = backend.pre_tokenizer
        if type(pre).__name__ != "ByteLevel" or type(backend.model).__name__ != "BPE":
            return False
        return bool(getattr(pre, "use_regex", False)) and not getattr(pre, "add_prefix_space", True) \
            and getattr(backend.model, "dropout", None) in (None, 0.0)

    def encode(self, codes: Sequence[object]) -> list[dict[str, list[int]] | None]:
        out: list[dict[str, list[int]] | None] = []
        for code in codes:
            ids = self._splice(code) if isinstance(code, EditedCode) else None
            if ids is None:
                self.fallbacks += 1
                out.append(None)
                continue
            self.spliced += 1
            item = {"input_ids": ids, "attention_mask": [1] * len(ids)}
            if "token_type_ids" in self.input_names:
                item["token_type_ids"] = [0] * len(ids)
            out.append({name: item[name] for name in self.input_names if name in item})
        return out

    # ------------------------------------------------------------------ internals

    def _tokens(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        return self._pre.pre_tokenize_str(text)

    def _ids(self, pieces) -> list[int]:
        ids: list[int] = []
        cache = self._piece_ids
        for piece, _ in pieces:
            known = cache.get(piece)
            if known is None:
                if len(cache) >= 200_000:
                    cache.clear()
                known = cache[piece] = tuple(token.id for token in self._model.tokenize(piece))
            ids += known
        return ids

    def _base(self, text: str) -> _Base | None:
        if text in self._bases:
            self._bases.move_to_end(text)
            return self._bases[text]
        info = self._build(text)
        self._bases[text] = info
        while len(self._bases) > self._capacity:
            self._bases.popitem(last=False)
        return info

    def _build(self, text: str) -> _Base | None:
        """The base's pieces, or None when it cannot be spliced (added tokens in it, pieces with
        gaps, or ids that differ from the tokenizer's own)."""
        if self._added is not None and self._added.search(text):
            return None
        pieces = self._tokens(text)
        starts = [start for _, (start, _) in pieces]
        ends = [end for _, (_, end) in pieces]
        if (starts and starts[0] != 0) or any(a != b for a, b in zip(ends, starts[1:])) or (ends and ends[-1] != len(text)):
            return None
        bounds, ids = [0], []
        for piece in pieces:
            ids += self._ids([piece])
            bounds.append(len(ids))
        full = self.tokenizer(text, truncation=False, verbose=False)
        reference = list(full["input_ids"])
        if "token_type_ids" in self.input_names and any(full.get("token_type_ids") or []):
            return None
        head = next((k for k in range(len(reference) - len(ids) + 1) if reference[k:k + len(ids)] == ids), None)
        if head is None:
            return None
        blank = [not text[start:end].strip() for start, end in zip(starts, ends)]
        return _Base(text, starts, ends, bounds, blank, ids, reference[:head], reference[head + len(ids):])

    def _splice(self, code: EditedCode) -> list[int] | None:
        base = self._base(code.base)
        if base is None:
            return None
        if not code.edits:
            return self._truncate(base, base.ids)
        if self._added is not None and any(self._added.search(new) for _, _, new in code.edits):
            return None
        spans = tuple((start, end) for start, end, _ in code.edits)
        regions = base.layouts.get(spans)
        if regions is None:
            regions = base.layouts[spans] = self._layout(base, spans)
            while len(base.layouts) > 256:
                base.layouts.popitem(last=False)
        ids = base.ids
        out: list[int] = []
        taken = 0
        for region in regions:
            segments = region.segments
            parts = [segments[0]]
            for k, segment in enumerate(segments[1:]):
                parts += [code.edits[region.first + k][2], segment]
            window = "".join(parts)
            pieces = self._tokens(window)
            if region.head is not None:  # the left context piece must come back whole
                if not pieces or pieces[0][1] != (0, region.head):
                    return None
                pieces = pieces[1:]
            tail = region.tail
            if tail:  # and the right context pieces exactly as they were
                if len(pieces) < len(tail):
                    return None
                size = len(window)
                for (_, (start, end)), (want_start, want_end) in zip(pieces[len(pieces) - len(tail):], tail):
                    if start - size != want_start or end - size != want_end:
                        return None
                pieces = pieces[:len(pieces) - len(tail)]
            out += ids[taken:base.bounds[region.lo]]
            out += self._ids(pieces)
            taken = base.bounds[region.hi]
        out += ids[taken:]
        return self._truncate(base, out)

    def _layout(self, base: _Base, spans: tuple[tuple[int, int], ...]) -> list[_Region]:
        """The regions for edits at `spans` (sorted): what depends on where the edits are, not on
        what they write, computed once per base and span set."""
        count = len(base.starts)
        groups: list[list] = []  # [lo, hi, right, first edit, last edit]
        for index, (start, end) in enumerate(spans):
            lo = bisect.bisect_right(base.ends, start - 1)  # the piece holding start - 1, or the first
            hi = min(max(bisect.bisect_left(base.starts, end + 1), lo + 1), count)  # through the piece holding end
            if groups and lo <= groups[-1][2]:  # the windows would overlap: one region
                groups[-1][1] = max(groups[-1][1], hi)
                groups[-1][2] = self._right_context_end(base, groups[-1][1])
                groups[-1][4] = index
            else:
                groups.append([lo, hi, self._right_context_end(base, hi), index, index])
        regions = []
        for lo, hi, right, first, last in groups:
            left = max(lo - 1, 0)
            window_start, window_end = base.starts[left], base.ends[right - 1]
            cuts = [window_start, *(x for start, end in spans[first:last + 1] for x in (start, end)), window_end]
            segments = [base.text[cuts[k]:cuts[k + 1]] for k in range(0, len(cuts), 2)]
            tail = [(start - window_end, end - window_end) for start, end in zip(base.starts[hi:right], base.ends[hi:right])]
            head = base.ends[left] - window_start if left < lo else None
            regions.append(_Region(lo, hi, first, segments, head, tail))
        return regions

    @staticmethod
    def _right_context_end(base: _Base, hi: int) -> int:
        """One past the right context of pieces ..hi: the whitespace-only pieces that follow (how a
        whitespace run splits depends on what comes after it) and one more piece."""
        k = hi
        while k < len(base.blank) and base.blank[k]:
            k += 1
        return min(k + 1, len(base.blank))

    def _truncate(self, base: _Base, ids: list[int]) -> list[int]:
        room = self.max_length - len(base.prefix) - len(base.suffix)
        return base.prefix + ids[:max(room, 0)] + base.suffix
