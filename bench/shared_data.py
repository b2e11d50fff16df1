"""Readers for the real data in ../shared/data used by benchmarks and integration tests.

Deliberately minimal: the dataset layer (`engine data`) owns the full loaders; this module
only turns the two shared files into (id, language, code) triples so that the language layer
can be measured on code nobody on the team wrote.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from engine.datasets.gcj_text import decode_gcj_code

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEVIGN = SHARED_DATA / "devign" / "test_subs_0_400.jsonl"
GCJ = [SHARED_DATA / "gcjpy" / "train.txt", SHARED_DATA / "gcjpy" / "valid.txt"]


def available() -> bool:
    return DEVIGN.is_file() and all(path.is_file() for path in GCJ)


def devign_functions() -> Iterator[tuple[str, str, str]]:
    with DEVIGN.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            record = json.loads(line)
            yield f"devign:{record['idx']}", "c", record["func"]


def gcj_programs() -> Iterator[tuple[str, str, str]]:
    for path in GCJ:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                code, _, _label = line.rstrip("\n").rpartition(" <CODESPLIT> ")
                yield f"gcj:{path.stem}:{number}", "python", decode_gcj_code(code)
