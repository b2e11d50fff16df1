"""BigCloneBench (CodeXGLUE clone detection): pairs of Java functions, clone or not.
"""
from __future__ import annotations

from pathlib import Path

from engine.datasets.base import Dataset
from engine.datasets.loaders import (BINARY, BadLines, Record, assemble, code_field, existing_path, label_field, label_text,
                                     read_jsonl, read_lines, source_manifest, split_files)
from engine.datasets.spec import Format
from engine.errors import UserError

BCB_LABELS = ["not-clone", "clone"]


def load_bigclonebench(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """BigCloneBench (CodeXGLUE): `data.jsonl` of {idx, func} and pair files `id1 id2 label`.

    PATH is the directory (train.txt/valid.txt/test.txt next to data.jsonl) or one pair file.
    An example's code is the pair (func1, func2); meta keeps id1 and id2.
    """
    root = existing_path(path, "bigclonebench")
    directory = root if root.is_dir() else root.parent
    data_file = directory / "data.jsonl"
    if not data_file.is_file():
        raise UserError(f"{directory}: no data.jsonl (the functions, one {{idx, func}} object a line)")
    bad = BadLines(skip_bad)
    functions: dict[str, str] = {}
    for number, row in read_jsonl(data_file, bad):
        code = code_field(row.get("func"), data_file, number, "func", bad)
        idx = label_text(row.get("idx"))
        if code is None:
            continue
        if idx is None:
            bad.report(data_file, number, "missing idx")
            continue
        functions[idx] = code
    files = split_files(root, (".txt",), "bigclonebench") if root.is_dir() else {"all": root}
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, line in read_lines(file, bad):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                bad.report(file, number, "not a pair line", f"expected 'id1 id2 label', got {len(fields)} fields")
                continue
            id1, id2, raw = fields
            label = label_field(raw, file, number, "label", bad, BINARY)
            if label is None:
                continue
            missing = [i for i in (id1, id2) if i not in functions]
            if missing:
                bad.report(file, number, "unknown function id", f"{', '.join(missing)} not in data.jsonl")
                continue
            records.append(Record(f"{id1}-{id2}", (functions[id1], functions[id2]), label, {"id1": id1, "id2": id2}))
    files_manifest = source_manifest({"functions": data_file, **files})
    return assemble(
        name="bigclonebench", task="clone", language="java", sources=sources, seed=seed, bad=bad,
        label_names=BCB_LABELS, label_index=BINARY,
        manifest={"format": "bigclonebench", "files": files_manifest, "functions": len(functions)},
    )


FORMATS = (
    Format("bigclonebench", "BigCloneBench: a directory with data.jsonl ({idx, func}) and pair files "
           "train/valid/test.txt of 'id1 id2 label' (tab or spaces), or one pair file with data.jsonl beside it; "
           "labels not-clone, clone",
           load_bigclonebench, task="clone", language="java", labels=2, sizes=(901028, 415416)),
)
