"""Any JSONL or CSV file, with a column mapping (`--columns`), a language and a task.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from engine.datasets.base import TASKS, Dataset
from engine.datasets.loaders import (BadLines, Record, assemble, code_field, existing_path, id_field, label_field,
                                     read_jsonl, source_manifest, split_files)
from engine.datasets.spec import Format
from engine.errors import UserError

COLUMN_KEYS = ("code", "label", "id", "code2")


def parse_columns(columns: str | dict[str, str] | None) -> dict[str, str]:
    """`code=func,label=target,id=idx[,code2=func2]` -> {"code": "func", ...}."""
    if columns is None or columns == "":
        raise UserError("--columns is required for jsonl/csv, e.g. --columns code=func,label=target,id=idx")
    if isinstance(columns, str):
        mapping: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in columns.split(","))):
            key, sep, column = item.partition("=")
            key, column = key.strip(), column.strip()
            if not sep or not key or not column:
                raise UserError(f"--columns: {item!r} is not of the form KEY=COLUMN")
            if key in mapping:
                raise UserError(f"--columns: {key!r} is given twice")
            mapping[key] = column
    else:
        mapping = dict(columns)
    unknown = sorted(set(mapping) - set(COLUMN_KEYS))
    if unknown:
        raise UserError(f"--columns: unknown key {unknown[0]!r}; keys are {', '.join(COLUMN_KEYS)}")
    for key in ("code", "label"):
        if key not in mapping:
            raise UserError(f"--columns must map {key}=COLUMN (got {', '.join(mapping) or 'nothing'})")
    return mapping


def _generic_options(columns, language, task) -> tuple[dict[str, str], str, str]:
    from engine.code import LANGUAGES

    mapping = parse_columns(columns)
    if not language:
        raise UserError(f"--language is required for jsonl/csv ({'|'.join(LANGUAGES)})")
    if language not in LANGUAGES:
        raise UserError(f"unknown language {language!r}; choose one of {', '.join(LANGUAGES)}")
    task = task or ("clone" if "code2" in mapping else "classification")
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if (task == "clone") != ("code2" in mapping):
        raise UserError("a clone task needs a pair: map both code= and code2= in --columns (and only clone uses code2)")
    return mapping, language, task


def _generic_record(row: dict, mapping: dict[str, str], file: Path, number: int, bad: BadLines) -> Record | None:
    code = code_field(row.get(mapping["code"]), file, number, mapping["code"], bad)
    if code is None:
        return None
    if "code2" in mapping:
        second = code_field(row.get(mapping["code2"]), file, number, mapping["code2"], bad)
        if second is None:
            return None
        code = (code, second)
    label = label_field(row.get(mapping["label"]), file, number, mapping["label"], bad, None)
    if label is None:
        return None
    identifier = id_field(row.get(mapping["id"]), file, number) if "id" in mapping else f"{file.stem}:{number}"
    return Record(identifier, code, label, {})


def load_jsonl(path, *, columns=None, language=None, task=None, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """Any JSONL file (or a directory of train/valid/test .jsonl) with a column mapping."""
    mapping, language, task = _generic_options(columns, language, task)
    files = split_files(existing_path(path, "jsonl"), (".jsonl", ".json"), "jsonl")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in read_jsonl(file, bad):
            record = _generic_record(row, mapping, file, number, bad)
            if record is not None:
                records.append(record)
    return assemble(
        name=f"jsonl:{_stem(path)}", task=task, language=language, sources=sources, seed=seed, bad=bad,
        manifest={"format": "jsonl", "columns": mapping, "files": source_manifest(files)},
    )


def load_csv(path, *, columns=None, language=None, task=None, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """Any CSV file with a header row (or a directory of train/valid/test .csv), column mapping as for jsonl."""
    mapping, language, task = _generic_options(columns, language, task)
    files = split_files(existing_path(path, "csv"), (".csv",), "csv")
    csv.field_size_limit(1 << 30)  # programs are long fields
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in _csv_rows(file, mapping, bad):
            record = _generic_record(row, mapping, file, number, bad)
            if record is not None:
                records.append(record)
    return assemble(
        name=f"csv:{_stem(path)}", task=task, language=language, sources=sources, seed=seed, bad=bad,
        manifest={"format": "csv", "columns": mapping, "files": source_manifest(files)},
    )


def _csv_rows(file: Path, mapping: dict[str, str], bad: BadLines) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        handle = open(file, encoding="utf-8-sig", newline="")
    except OSError as err:
        raise UserError(f"cannot read {file}: {err.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as err:
            raise UserError(f"{file}:1: cannot read the header row ({err})") from None
        if not header:
            raise UserError(f"{file}: empty file (a CSV needs a header row)")
        header = [name.strip() for name in header]
        missing = [column for column in mapping.values() if column not in header]
        if missing:
            raise UserError(f"{file}: no column {missing[0]!r}; its columns are {', '.join(header)}")
        start = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                bad.report(file, start, "malformed CSV", str(err))
                start = reader.line_num + 1
                continue
            except UnicodeDecodeError as err:
                raise UserError(f"{file}: not valid UTF-8 ({err.reason}); re-encode the file") from None
            number, start = start, reader.line_num + 1
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                bad.report(file, number, "wrong number of fields", f"{len(row)} for {len(header)} columns")
                continue
            yield number, dict(zip(header, row))


def _stem(path: str | Path) -> str:
    return Path(path).expanduser().resolve().name


FORMATS = (
    Format("jsonl", "any JSONL, fields from --columns code=..,label=..[,id=..,code2=..], with --language and "
           "--task; labels: the values seen, numeric order when all are integers, else text order", load_jsonl,
           generic=True),
    Format("csv", "any CSV with a header row (quoted multi-line fields are fine); options and labels as for jsonl", load_csv, generic=True),
)
