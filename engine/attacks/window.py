"""What of a long input the model reads: a record's truncation facts, and what an attack may change.

A program longer than the model's window is attacked as the model reads it, cut to `max_length`
tokens (what every published attack does: they feed the truncated input). `engine attack
--too-long error` records such programs as errors instead, for strict runs.

Renaming a variable whose every occurrence lies past the cut changes nothing the model reads: it
would cost queries (answered from the victim's token cache, without a forward pass) and count
as an identifier change while changing nothing the model sees. So the search is given only the
variables with an occurrence the model reads (`ctx.variables`), and `ctx.hidden_from` marks where
the unread occurrences start (importance probes skip them).

Where the cut lies is measured with the victim's own tokenization (its normalisation, its pair
truncation): masking an occurrence the model reads changes the truncated token ids, masking one
past the cut does not, and that is monotone in the position, so a binary search over the
occurrences finds the first unread one in about log2(occurrences) tokenizations.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from engine.attacks.base import AttackContext, Code


@dataclass(frozen=True)
class Window:
    """Token counts of one victim input: the whole input, and what the model reads of it."""

    input_tokens: int
    read_tokens: int

    @property
    def truncated(self) -> bool:
        return self.input_tokens > self.read_tokens

    def fields(self) -> dict[str, Any]:
        return {"truncated": self.truncated, "input_tokens": self.input_tokens, "input_tokens_read": self.read_tokens}


def measure(victim: Any, code: Code) -> Window | None:
    """The input's window, or None for a victim that cannot count tokens (a test stand-in)."""
    lengths = getattr(victim, "untruncated_lengths", None)
    if lengths is None:
        return None
    full = int(lengths([code])[0])
    return Window(full, min(full, int(victim.max_length)))


def read_views(victim: Any, codes: Sequence[Code]) -> list[tuple[int, ...]] | None:
    """The token ids the model reads for each input (normalised and truncated as the victim does),
    or None for a victim without a tokenizer."""
    encode = getattr(victim, "encode", None)
    if encode is None:
        return None
    normalize = getattr(victim, "normalize", "none")
    if normalize != "none":
        from engine.victim import normalize_code  # only a real victim normalises, and it has torch loaded

        codes = [normalize_code(code, normalize) for code in codes]
    return [tuple(item["input_ids"]) for item in encode(list(codes))]


def _masked(text: str, start: int, end: int) -> str:
    """`text` with the first letter of the occurrence at [start, end) replaced by one that differs
    (also ignoring case): the token covering that position changes if the model reads it, and the
    length stays, so a pair's truncation budget is split as before."""
    first = "q" if text[start:start + 1].lower() != "q" else "z"
    return text[:start] + first + text[start + 1:]


def first_hidden_occurrence(victim: Any, ctx: AttackContext) -> int | None:
    """Character offset (in `ctx.renamer.text`) of the first renameable occurrence the model does not
    read; None when it reads them all or the victim cannot tell."""
    spans = ctx.renamer.spans
    text = ctx.renamer.text
    if not spans:
        return None
    base = read_views(victim, [ctx.full_input(text)])
    if base is None:
        return None

    def read(i: int) -> bool:
        start, end, _ = spans[i]
        return read_views(victim, [ctx.full_input(_masked(text, start, end))])[0] != base[0]

    if read(len(spans) - 1):
        return None
    low, high = 0, len(spans) - 1  # invariant: spans[high] is not read; every span before `low` is
    while low < high:
        middle = (low + high) // 2
        if read(middle):
            low = middle + 1
        else:
            high = middle
    return spans[high][0]


def restrict_to_window(victim: Any, ctx: AttackContext) -> list[str]:
    """Limit `ctx.variables` to those the model reads an occurrence of; returns the names left out."""
    hidden_from = first_hidden_occurrence(victim, ctx)
    if hidden_from is None:
        return []
    ctx.hidden_from = hidden_from
    read = {name for start, _, name in ctx.renamer.spans if start < hidden_from}
    left_out = [name for name in ctx.variables if name not in read]
    ctx.variables = [name for name in ctx.variables if name in read]
    return left_out
