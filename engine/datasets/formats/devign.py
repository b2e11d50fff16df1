"""Devign (CodeXGLUE defect detection): C functions labelled vulnerable or clean.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from engine.datasets.base import Dataset
from engine.datasets.loaders import (BINARY, BadLines, Record, assemble, code_field, existing_path, id_field, label_field,
                                     read_jsonl, source_manifest, split_files)
from engine.datasets.spec import Format

DEVIGN_LABELS = ["clean", "vulnerable"]


def load_devign(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """CodeXGLUE defect detection: JSONL of `func`, `target` (1 = vulnerable), `idx`.

    A `substitutes` field (ALERT's candidates, a Python dict literal as a string) is parsed
    with `ast.literal_eval` into meta["substitutes"]; `project` and `commit_id` are kept too.
    """
    files = split_files(existing_path(path, "devign"), (".jsonl",), "devign")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    with_substitutes = 0
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in read_jsonl(file, bad):
            code = code_field(row.get("func"), file, number, "func", bad)
            if code is None:
                continue
            label = label_field(row.get("target"), file, number, "target", bad, BINARY)
            if label is None:
                continue
            meta = {key: row[key] for key in ("project", "commit_id") if key in row}
            if "substitutes" in row:
                substitutes = parse_substitutes(row["substitutes"])
                if substitutes is None:
                    bad.report(file, number, "bad substitutes", "not a dict literal of name -> list of names")
                    continue
                meta["substitutes"] = substitutes
                with_substitutes += 1
            records.append(Record(id_field(row.get("idx"), file, number), code, label, meta))
    return assemble(
        name="devign", task="defect", language="c", sources=sources, seed=seed, bad=bad,
        label_names=DEVIGN_LABELS, label_index=BINARY,
        manifest={"format": "devign", "files": source_manifest(files), "with_substitutes": with_substitutes},
    )


def parse_substitutes(value: Any) -> dict[str, list[str]] | None:
    """ALERT's substitutes: a dict (or its Python-literal text) of name -> candidate names."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)  # a literal only: never eval
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if not isinstance(value, dict):
        return None
    out: dict[str, list[str]] = {}
    for name, candidates in value.items():
        if not isinstance(name, str) or not isinstance(candidates, (list, tuple)):
            return None
        out[name] = [str(candidate) for candidate in candidates]
    return out


FORMATS = (
    Format("devign", "CodeXGLUE defect detection: JSONL with func, target (0/1), idx; optional substitutes, project, "
           "commit_id; labels clean, vulnerable", load_devign,
           task="defect", language="c", labels=2, sizes=(21854, 2732)),
)
