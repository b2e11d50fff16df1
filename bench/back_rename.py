"""The back-rename check: rename every variable to a fresh name, then back to its original name.

The original program proves the original names compatible, so a validator that refuses the
way back refuses a valid rename. A program counts as accepted when `validate` accepts the way
back, the result is the original text, and `check_rename` passes. Used by
`bench/code_layer.py --back-rename` and by `tests/test_code_back_rename.py`.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.code import Renamer, check_rename, extract, validate


@dataclass
class BackRename:
    programs: int = 0  # programs with at least one renameable identifier
    accepted: int = 0
    reasons: Counter = field(default_factory=Counter)  # refusal reason (names blanked) -> programs
    examples: list = field(default_factory=list)  # (id, first rejection) of refused programs

    @property
    def share(self) -> float:
        return self.accepted / self.programs if self.programs else 1.0


def fresh_names(extraction, count: int, pattern: str = "v_{}") -> list[str]:
    """`count` names of the form `pattern` that occur nowhere in the program."""
    names, index = [], 0
    while len(names) < count:
        name = pattern.format(index)
        index += 1
        if name not in extraction.names_in_program:
            names.append(name)
    return names


def back_rename(code: str, language: str) -> str | None:
    """None when the way back is accepted and exact, else why not (one line)."""
    ext = extract(code, language)
    forward = dict(zip(ext.identifiers, fresh_names(ext, len(ext.identifiers))))
    rejections = validate(ext, forward)
    if rejections:
        return f"forward rename refused: {rejections[0]}"
    renamed = Renamer(ext).apply(forward)
    renamed_ext = extract(renamed, language)
    back = {new: old for old, new in forward.items()}
    rejections = validate(renamed_ext, back)
    if rejections:
        return str(rejections[0])
    restored = Renamer(renamed_ext).apply(back)
    if restored != ext.text:
        return "the way back does not restore the original text"
    result = check_rename(renamed_ext, restored, back)
    if not result.ok:
        return f"check_rename refused the way back: {result.reasons[:1]}"
    return None


def measure(programs: Iterable[tuple[str, str, str]]) -> BackRename:
    summary = BackRename()
    for example_id, language, code in programs:
        if not extract(code, language).identifiers:
            continue
        summary.programs += 1
        reason = back_rename(code, language)
        if reason is None:
            summary.accepted += 1
            continue
        summary.reasons[_reason_class(reason)] += 1
        summary.examples.append((example_id, reason))
    return summary


def _reason_class(reason: str) -> str:
    """The reason with the names in it blanked, so that reasons group by kind."""
    import re

    text = reason.split(": ", 1)[1] if ": " in reason and "=" in reason.split(": ", 1)[0] else reason
    return re.sub(r"'[^']*'", "'…'", text)[:90]
