"""Validate a rename mapping and apply it by spans, never by text search.

Renaming by spans is what keeps fields, called functions, comments and strings that share a
variable's spelling untouched. `Renamer` precomputes the spans of one program once so that an
attack can produce thousands of candidate programs without parsing any of them.
"""
from __future__ import annotations

import unicodedata

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from engine.code.collisions import collision_index
from engine.code.extract import extract
from engine.code.languages import spec
from engine.code.model import Extraction
from engine.code.parsing import to_text
from engine.code.reserved import SCOPE_BLIND, is_python_dunder


@dataclass(frozen=True)
class Rejection:
    old: str
    new: str
    reason: str

    def __str__(self) -> str:
        return f"{self.old}={self.new}: {self.reason}"


class RenameError(ValueError):
    """A mapping with at least one rejected pair; `rejections` says which and why."""

    def __init__(self, rejections: list[Rejection]):
        self.rejections = rejections
        super().__init__("; ".join(str(r) for r in rejections))


def validate(extraction: Extraction, mapping: Mapping[str, str]) -> list[Rejection]:
    """Every reason a pair of `mapping` would make an invalid or meaning-changing rename."""
    targets: dict[str, list[str]] = {}
    for old, new in mapping.items():
        targets.setdefault(new, []).append(old)
    rejections = []
    for old, new in mapping.items():
        reason = pair_rejection(extraction, old, new)
        if reason is None and len(targets[new]) > 1:
            others = ", ".join(o for o in targets[new] if o != old)
            reason = f"{new!r} is also given to {others}"
        if reason:
            rejections.append(Rejection(old, new, reason))
    return rejections


def pair_rejection(extraction: Extraction, old: str, new: str) -> str | None:
    """Why `old -> new` alone is not allowed (None when it is): every rule of `validate` but
    the one that needs the whole mapping (one new name per variable).

    Attacks call this for each of thousands of proposed names, so it does set lookups only
    (the collision index is built on the first call for an extraction and kept on it).
    """
    lang = spec(extraction.language)
    if old not in extraction.identifiers:
        excluded = next((x.reason for x in extraction.exclusions if x.name == old), None)
        if excluded is not None:
            return f"{old!r} is not renameable: {excluded}"
        if old in extraction.names_in_program:
            return f"{old!r} is not a renameable identifier: it is not a variable or parameter declared in this program"
        return f"{old!r} is not a renameable identifier: it does not occur in the program"
    if new == old:
        return "the new name equals the old one"
    if not lang.identifier_pattern.match(new):
        return f"{new!r} is not a valid {lang.name} identifier"
    if new in lang.keywords:
        return f"{new!r} is a {lang.name} keyword"
    if lang.name == "python" and unicodedata.normalize("NFKC", new) != new:
        # Python reads identifiers NFKC-normalised: `ﬁle` is the same variable as `file`.
        return f"{new!r} is not NFKC-normalised; Python would read it as {unicodedata.normalize('NFKC', new)!r}"
    if lang.name == "python" and is_python_dunder(new):
        return f"{new!r} is a special (dunder) name, which Python gives a meaning of its own"
    if lang.name == "python" and new.startswith("__") and new.strip("_"):
        # Inside a class body Python rewrites `__x` to `_Class__x`, so the new name would
        # not mean what the old one did in every scope.
        return f"{new!r} starts with two underscores, which Python name-mangles inside classes"
    if new in SCOPE_BLIND[lang.name]:
        return f"{new!r} is a standard {lang.name} macro or type name, which keeps its meaning whatever the scope"
    return collision_index(extraction).collision(old, new)


class Renamer:
    """Span substitution over one extracted program (one parse, any number of renames)."""

    def __init__(self, extraction: Extraction):
        self.extraction = extraction
        self.text = to_text(extraction.source)
        to_char = _byte_to_char_offsets(extraction.source, self.text)
        self._spans = sorted(
            (to_char(start), to_char(end), name)
            for name, ident in extraction.identifiers.items()
            for start, end in ident.spans
        )

    @property
    def spans(self) -> list[tuple[int, int, str]]:
        """(start, end, name) of every renameable occurrence, in *character* offsets of `text`, sorted."""
        return list(self._spans)

    def apply(self, mapping: Mapping[str, str]) -> str:
        """The program with every occurrence of each mapped identifier replaced (no validation)."""
        pieces: list[str] = []
        position = 0
        for start, end, new in self.edits(mapping):
            pieces.append(self.text[position:start])
            pieces.append(new)
            position = end
        pieces.append(self.text[position:])
        return "".join(pieces)

    def edits(self, mapping: Mapping[str, str]) -> list[tuple[int, int, str]]:
        """(start, end, new name) of every occurrence `mapping` renames, in character offsets of
        `text`, sorted: what `apply` substitutes, and what lets a victim re-tokenize only there."""
        return [(start, end, mapping[name]) for start, end, name in self._spans if name in mapping]

    def candidates(self, name: str, new_names: Iterable[str], base: Mapping[str, str] | None = None) -> list[str]:
        """One program per new name for `name` (on top of `base`), joined from shared segments."""
        segments = self.segments(name, base)
        return [new.join(segments) for new in new_names]

    def segments(self, name: str, base: Mapping[str, str] | None = None) -> list[str]:
        """The program cut at every occurrence of `name`, with `base` applied to the rest.

        ``new.join(segments)`` is the program with `name` renamed to `new`: building a
        candidate is one string join, with no parsing and no span walk.
        """
        base = base or {}
        segments: list[str] = []
        current: list[str] = []
        position = 0
        for start, end, span_name in self._spans:
            if span_name == name:
                current.append(self.text[position:start])
                segments.append("".join(current))
                current = []
                position = end
                continue
            new = base.get(span_name)
            if new is None:
                continue
            current.append(self.text[position:start])
            current.append(new)
            position = end
        current.append(self.text[position:])
        segments.append("".join(current))
        return segments


def _byte_to_char_offsets(source: bytes, text: str):
    if len(source) == len(text):
        return lambda offset: offset
    table: list[int] = []
    for index, char in enumerate(text):
        table.extend([index] * len(char.encode("utf-8", errors="surrogateescape")))
    table.append(len(text))
    return table.__getitem__


def rename(source: str | bytes, language: str, mapping: Mapping[str, str]) -> str:
    """Validate then apply; raises `RenameError` listing every rejected pair."""
    extraction = extract(source, language)
    rejections = validate(extraction, mapping)
    if rejections:
        raise RenameError(rejections)
    return Renamer(extraction).apply(mapping)
