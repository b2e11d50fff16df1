"""Find the renameable identifiers of a program: the attack surface every attack shares.

Each language module reports *bindings* (a declared variable in a scope with all the
occurrences that refer to it). This module adds the checks that are the same for every
language: a binding that also occurs inside text the parser could not read (an ERROR node, a
macro body) is excluded with its reason, every binding of a spelling that touches a misparse is
excluded unless proven (`taint`), and bindings are grouped by name, the unit an attack renames.
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from importlib import import_module

from engine.code.model import Binding, Exclusion, Extraction, Identifier
from engine.code.parsing import Parsed, parse
from engine.code.taint import exclude_unclear

Collector = Callable[[Parsed], list[Binding]]

_COLLECTOR_MODULES = {
    "c": "engine.code.lang_c",
    "java": "engine.code.lang_java",
    "python": "engine.code.lang_python",
}


def collector(language: str) -> Collector:
    return import_module(_COLLECTOR_MODULES[language]).collect_bindings


def extract(source: str | bytes, language: str) -> Extraction:
    """Parse once and list the renameable identifiers (see `docs/language-layer.md`)."""
    return extract_parsed(parse(source, language))


def extract_parsed(parsed: Parsed) -> Extraction:
    bindings = [_exclude_if_opaque(b, parsed) for b in collector(parsed.language)(parsed)]
    bindings, unclear = exclude_unclear(bindings, parsed)
    identifiers, exclusions = _group_by_name(bindings)
    return Extraction(
        language=parsed.language,
        source=parsed.source,
        identifiers=identifiers,
        exclusions=exclusions,
        names_in_program=parsed.words(),
        parse_errors=parsed.parse_errors,
        bindings=bindings,
        tokens=parsed.tokens,
        unclear_names=unclear,
    )


def _exclude_if_opaque(binding: Binding, parsed: Parsed) -> Binding:
    if binding.excluded or not parsed.opaque:
        return binding
    known = {start for start, _ in binding.spans}
    scope_start, scope_end = binding.scope_span
    for start, end in parsed.opaque:
        lo, hi = max(start, scope_start), min(end, scope_end)
        if lo >= hi:
            continue
        in_macro = _opaque_type(parsed, start) == "preproc_arg"
        words = parsed.words_in((lo, hi)) if in_macro else _code_words(parsed, lo, hi)
        for position, word in words:
            if word == binding.name and position not in known:
                line = parsed.source.count(b"\n", 0, position) + 1
                what = "a macro body" if in_macro else "code that does not parse"
                return _replace_excluded(binding, f"also occurs at line {line} inside {what}, where it cannot be renamed safely")
    return binding


# Leaves inside an ERROR region that cannot refer to a variable even though they spell one:
# the parser still recognises comments, string contents and member names after `.`/`->`.
_INERT_LEAF = re.compile(r"comment|string|char|escape_sequence|field_identifier|property_identifier")


def _code_words(parsed: Parsed, lo: int, hi: int) -> list[tuple[int, str]]:
    """Identifier-shaped words of the leaves in [lo, hi) that could be a use of a variable.

    A name mentioned in a comment or string inside unparseable code does not make a variable
    unsafe to rename; a name in a leaf the parser could not classify (or in uncovered text) does.
    """
    tokens = parsed.tokens
    first = bisect.bisect_left(tokens, (lo, -1, ""))
    if first > 0 and tokens[first - 1][1] > lo:
        first -= 1
    words: list[tuple[int, str]] = []
    for start, end, kind in tokens[first:]:
        if start >= hi:
            break
        if not _INERT_LEAF.search(kind):
            words.extend(parsed.words_in((max(start, lo), min(end, hi))))
    return words


def _opaque_type(parsed: Parsed, start: int) -> str:
    node = parsed.root.descendant_for_byte_range(start, start)
    while node is not None and node.type not in ("ERROR", "preproc_arg"):
        node = node.parent
    return node.type if node is not None else "ERROR"


def _replace_excluded(binding: Binding, reason: str) -> Binding:
    return Binding(binding.name, binding.kind, binding.scope, binding.scope_span, binding.spans, reason)


def _group_by_name(bindings: list[Binding]) -> tuple[dict[str, Identifier], list[Exclusion]]:
    grouped: dict[str, list[Binding]] = {}
    exclusions: list[Exclusion] = []
    for binding in sorted(bindings, key=lambda b: b.spans[0] if b.spans else b.scope_span):
        if binding.excluded:
            exclusions.append(Exclusion(binding.name, binding.kind, binding.scope, binding.excluded))
        elif binding.spans:
            grouped.setdefault(binding.name, []).append(binding)
    identifiers = {
        name: Identifier(
            name=name,
            kinds=tuple(dict.fromkeys(b.kind for b in group)),
            spans=tuple(sorted({span for b in group for span in b.spans})),
            scopes=tuple(dict.fromkeys(b.scope for b in group)),
        )
        for name, group in grouped.items()
    }
    return identifiers, exclusions
