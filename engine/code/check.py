"""Is a renamed program still the same program? The basis of every validity claim we make.

A rename preserves meaning when the renamed program is *alpha-equivalent* to the original:
its tokens are the original's with exactly the occurrences of the renamed variables changed,
each to its new name, and its binding structure (which occurrences refer to which declared
variable) is the original's. Token comparison alone would accept a partial rename
(``x = 1; y = x`` -> ``z = 1; y = x``) or a rename that also hit a field; comparing binding
structure and the exact set of changed positions rejects both. The structure includes which
bindings are excluded, so a rename after which an excluded variable becomes renameable (or the
reverse) is rejected too; and a renamed name that touched a misparse in the original
(`Extraction.unclear_names`) must have no code occurrence left under its old spelling.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.code.extract import extract, extract_parsed
from engine.code.languages import spec
from engine.code.model import Extraction
from engine.code.parsing import parse, to_text
from engine.code.taint import code_occurrences


@dataclass
class CheckResult:
    parse_errors_before: int
    parse_errors_after: int
    alpha_equivalent: bool
    # None when it cannot be checked (no compiler for the language, or the original itself
    # does not compile): unknown is not the same as false.
    compiles: bool | None
    reasons: list[str] = field(default_factory=list)

    @property
    def new_parse_errors(self) -> int:
        return max(0, self.parse_errors_after - self.parse_errors_before)

    @property
    def parses(self) -> bool:
        return self.parse_errors_after <= self.parse_errors_before

    @property
    def ok(self) -> bool:
        return self.parses and self.alpha_equivalent and self.compiles is not False

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "parses": self.parses,
            "parse_errors_before": self.parse_errors_before,
            "parse_errors_after": self.parse_errors_after,
            "alpha_equivalent": self.alpha_equivalent,
            "compiles": self.compiles,
            "reasons": self.reasons,
        }


def check_rename(
    original: Extraction | str | bytes,
    renamed: Extraction | str | bytes,
    mapping: Mapping[str, str],
    language: str | None = None,
) -> CheckResult:
    """Check `renamed` against `original` (each an extraction, or source plus `language`).

    Callers that already extracted the renamed program (to count its tokens, say) pass the
    extraction so that it is not parsed twice.
    """
    if not isinstance(original, Extraction):
        if language is None:
            raise ValueError("language is required when the original is given as source text")
        original = extract(original, language)
    after = renamed if isinstance(renamed, Extraction) else extract_parsed(parse(renamed, original.language))
    reasons: list[str] = []
    if after.parse_errors > original.parse_errors:
        reasons.append(
            f"the renamed program has {after.parse_errors} parse errors, the original {original.parse_errors}"
        )
    alpha = _alpha_equivalent(original, after, mapping, reasons)
    compiles = _compiles(original, after, reasons)
    return CheckResult(original.parse_errors, after.parse_errors, alpha, compiles, reasons)


def _alpha_equivalent(before: Extraction, after: Extraction, mapping: Mapping[str, str], reasons: list[str]) -> bool:
    names = spec(before.language).name_node_types
    a_tokens, b_tokens = before.tokens, after.tokens
    if len(a_tokens) != len(b_tokens):
        reasons.append(f"token count changed from {len(a_tokens)} to {len(b_tokens)}")
        return False
    expected = {}  # token index -> new name, for every occurrence the mapping must change
    index_of = {start: i for i, (start, _, _) in enumerate(a_tokens)}
    for old, new in mapping.items():
        ident = before.identifiers.get(old)
        if ident is None:
            reasons.append(f"{old!r} is not a renameable identifier of the original")
            return False
        for start, _ in ident.spans:
            expected[index_of[start]] = new
    for i, ((a0, a1, a_type), (b0, b1, b_type)) in enumerate(zip(a_tokens, b_tokens)):
        a_text, b_text = before.source[a0:a1], after.source[b0:b1]
        if a_type != b_type:
            reasons.append(f"line {_line(before, a0)}: token {_show(a_text)} ({a_type}) became {_show(b_text)} ({b_type})")
            return False
        if i in expected:
            if b_text != expected[i].encode():
                reasons.append(
                    f"line {_line(before, a0)}: {_show(a_text)} should have become {expected[i]!r}, found {_show(b_text)}"
                )
                return False
        elif a_text != b_text:
            what = "a name that is not an occurrence of a renamed variable" if a_type in names else "a non-identifier token"
            reasons.append(f"line {_line(before, a0)}: {_show(a_text)} -> {_show(b_text)} changes {what}")
            return False
    unclear = [old for old in mapping if old in before.unclear_names]
    if unclear:
        left = code_occurrences(parse(after.source, after.language))
        for old in unclear:
            if left.get(old):
                reasons.append(
                    f"line {_line(after, left[old][0])}: {old!r} is still used after renaming it, next to code "
                    "the parser did not understand (a partial rename)"
                )
                return False
    before_structure, after_structure = _structure(before, mapping), _structure(after, {})
    if before_structure != after_structure:
        flags_only = {s[:2] for s in before_structure} == {s[:2] for s in after_structure}
        reasons.append(
            "which variables are excluded from renaming changed" if flags_only
            else "the binding structure changed (an occurrence now refers to a different variable)"
        )
        return False
    return True


def _structure(extraction: Extraction, mapping: Mapping[str, str]) -> set[tuple[str, frozenset[int], bool]]:
    index_of = {start: i for i, (start, _, _) in enumerate(extraction.tokens)}
    structure = set()
    for binding in extraction.bindings:
        name = binding.name if binding.excluded else mapping.get(binding.name, binding.name)
        positions = frozenset(index_of.get(start, -start - 1) for start, _ in binding.spans)
        structure.add((name, positions, binding.excluded is not None))
    return structure


def _compiles(before: Extraction, after: Extraction, reasons: list[str]) -> bool | None:
    if before.language != "python":
        return None
    if not _python_compiles(before.source):
        return None
    if _python_compiles(after.source):
        return True
    reasons.append("the original compiles with Python's compile() but the renamed program does not")
    return False


def _python_compiles(source: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(source, "<program>", "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return False
    return True


def _line(extraction: Extraction, offset: int) -> int:
    return extraction.source.count(b"\n", 0, offset) + 1


def _show(text: bytes) -> str:
    return repr(to_text(text))

