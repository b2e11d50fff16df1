"""POJ-104 (CodeXGLUE): C programs labelled by the problem they solve.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.datasets.base import SPLITS, Dataset
from engine.datasets.loaders import (BadLines, Record, assemble, code_field, existing_path, id_field, label_field,
                                     read_jsonl, source_manifest, split_files)
from engine.datasets.spec import Format

def load_poj104(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """POJ-104 (CodeXGLUE): JSONL of `code`, `label` (the problem, "1".."104"), `index`.

    CodeXGLUE splits POJ-104 by problem (for retrieval), so its test problems never occur in
    train. For classification every split needs the same classes: when valid or test holds a
    label absent from train, all files are pooled and re-split 80/10/10, stratified by label,
    and the manifest says so.
    """
    files = split_files(existing_path(path, "poj104"), (".jsonl",), "poj104")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in read_jsonl(file, bad):
            code = code_field(row.get("code"), file, number, "code", bad)
            if code is None:
                continue
            label = label_field(row.get("label"), file, number, "label", bad, None)
            if label is None:
                continue
            records.append(Record(id_field(row.get("index"), file, number), code, label, {}))
    manifest: dict[str, Any] = {"format": "poj104", "files": source_manifest(files)}
    train_labels = {record.label for record in sources.get("train", [])}
    unseen = {
        split: sorted({r.label for r in sources.get(split, [])} - train_labels, key=_int_or_text)
        for split in ("valid", "test")
    }
    if train_labels and any(unseen.values()):
        manifest["resplit"] = (
            "valid/test hold labels absent from train ("
            + "; ".join(f"{split}: {len(labels)}" for split, labels in unseen.items() if labels)
            + "): all files pooled and split 80/10/10 by label"
        )
        sources = {"all": [record for split in SPLITS for record in sources.get(split, [])]}
    return assemble(name="poj104", task="classification", language="c", sources=sources, seed=seed, bad=bad, manifest=manifest)


def _int_or_text(label: str) -> tuple[int, int | str]:
    return (0, int(label)) if re.fullmatch(r"-?\d+", label) else (1, label)


FORMATS = (
    Format("poj104", "POJ-104: JSONL with code, label, index; labels in numeric order", load_poj104,
           task="classification", language="c", labels=104),
)
