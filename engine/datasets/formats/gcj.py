"""GCJ authorship (ALERT's gcjpy): Python programs labelled by author.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from engine.datasets.base import Dataset
from engine.datasets.gcj_text import decode_gcj_code
from engine.datasets.loaders import (BadLines, Record, assemble, existing_path, file_sha256, label_field, label_order,
                                     read_lines, source_manifest, split_files)
from engine.datasets.spec import Format
from engine.errors import UserError

CODESPLIT = "<CODESPLIT>"


def load_gcj(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """GCJ authorship (ALERT's gcjpy): lines `CODE <CODESPLIT> LABEL`, newlines escaped as `\\n`.

    PATH is the directory (train.txt, valid.txt, optional test.txt, optional classes.txt of
    `label<TAB>author`) or one file (classes.txt beside it is used when present). Without a
    test file, test is held out of train (see the module docstring).
    """
    root = existing_path(path, "gcj")
    files = split_files(root, (".txt",), "gcj", ignore=("classes.txt",))
    classes_file = (root if root.is_dir() else root.parent) / "classes.txt"
    label_names: list[str] | None = None
    label_index: dict[str, int] | None = None
    if classes_file.is_file():
        label_names, label_index = _read_classes(classes_file)
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        if file.resolve() == classes_file.resolve():
            continue
        records = sources.setdefault(split, [])
        for number, line in read_lines(file, bad):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            escaped, sep, raw = line.rpartition(CODESPLIT)
            if not sep:
                bad.report(file, number, "no <CODESPLIT>", "expected 'CODE <CODESPLIT> LABEL'")
                continue
            label = label_field(raw, file, number, "label", bad, label_index)
            if label is None:
                continue
            code = decode_gcj_code(escaped.removesuffix(" "))
            if not code.strip():
                bad.report(file, number, "empty code")
                continue
            records.append(Record(f"{file.stem}:{number}", code, label, {"file": file.name, "line": number}))
    files_manifest = source_manifest(files)
    if label_index is not None:
        files_manifest["classes"] = {"path": str(classes_file.resolve()), "sha256": file_sha256(classes_file)}
    return assemble(
        name="gcj", task="authorship", language="python", sources=sources, seed=seed, bad=bad,
        label_names=label_names, label_index=label_index,
        manifest={"format": "gcj", "files": files_manifest},
    )


def _read_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    entries: list[tuple[str, str]] = []
    for number, line in read_lines(path):
        if not line.strip():
            continue
        label, sep, author = line.rstrip("\r\n").partition("\t")
        if not sep or not label.strip() or not author.strip():
            raise UserError(f"{path}:{number}: expected 'label<TAB>author'")
        entries.append((label.strip(), author.strip()))
    labels = [label for label, _ in entries]
    duplicates = sorted(label for label, n in Counter(labels).items() if n > 1)
    if duplicates:
        raise UserError(f"{path}: label {duplicates[0]!r} is listed twice")
    order = label_order(set(labels))
    authors = dict(entries)
    return [authors[label] for label in order], {label: index for index, label in enumerate(order)}


FORMATS = (
    Format("gcj", "GCJ authorship: train/valid/(test).txt of lines 'CODE <CODESPLIT> LABEL', newlines escaped; "
           "optional classes.txt of 'label<TAB>author'; labels: the authors of classes.txt, else the labels", load_gcj,
           task="authorship", language="python", labels=66, sizes=(528, 132)),
)
