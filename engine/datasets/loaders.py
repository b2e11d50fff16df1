"""File formats: Devign, BigCloneBench, GCJ authorship, POJ-104 and any JSONL/CSV file.

Every loader reads its files into records, reports a bad line with its file and line number
(or, with `skip_bad`, counts it), maps labels onto `0..K-1`, fills in a missing split
deterministically from the ones that exist, and returns a `Dataset` whose manifest says
where each split came from. The split rules (shared with the builtin datasets):

- train, valid and test all present: used as they are;
- train and valid (no test): test is held out of train, stratified by label, as large as valid;
- train and test (no valid): valid is held out of train the same way, as large as test;
- anything else (one file, or no train): everything is pooled and split 80/10/10, stratified.

Hold-outs and splits are functions of the seed only (same seed, same split).
"""
from __future__ import annotations

import ast
import csv
import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datasets.base import SPLITS, TASKS, Dataset, Example
from engine.errors import UserError

DEFAULT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
_SPLIT_FILE_STEMS = {"train": ("train",), "valid": ("valid", "dev", "val"), "test": ("test",)}
_MAX_REPORTED = 10


# --------------------------------------------------------------------------- bad input


class BadLines:
    """Bad input: the first one is an error, unless `skip_bad`, which counts them instead."""

    def __init__(self, skip_bad: bool = False):
        self.skip_bad = skip_bad
        self.count = 0
        self.by_reason: Counter[str] = Counter()
        self.first: list[str] = []

    def report(self, path: Path | str, line: int, reason: str, detail: str = "") -> None:
        message = f"{path}:{line}: {reason}" + (f" ({detail})" if detail else "")
        if not self.skip_bad:
            raise UserError(f"{message}; fix the line or pass --skip-bad to skip bad lines and count them")
        self.count += 1
        self.by_reason[reason] += 1
        if len(self.first) < _MAX_REPORTED:
            self.first.append(message)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "by_reason": dict(sorted(self.by_reason.items())), "first": self.first}


# --------------------------------------------------------------------------- records


@dataclass
class Record:
    """One example before labels are mapped to integers and splits are completed."""

    id: str
    code: str | tuple[str, str]
    label: str  # as written in the file, normalised to text
    meta: dict[str, Any] = field(default_factory=dict)
    group: str | None = None  # records of one group always land in the same split


def label_text(value: Any) -> str | None:
    """A label as text: ints stay ints (1.0 -> "1", true -> "1"); None or blank is missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def label_order(labels: set[str]) -> list[str]:
    """Numeric order when every label is an integer, else text order."""
    if all(re.fullmatch(r"-?\d+", label) for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


# --------------------------------------------------------------------------- splits


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def _cut(items: list, fractions: Sequence[float]) -> list[list]:
    """Cut an (already shuffled) list into consecutive parts by cumulative rounding."""
    parts, start, cumulative = [], 0, 0.0
    for index, fraction in enumerate(fractions):
        cumulative += fraction
        end = len(items) if index == len(fractions) - 1 else min(len(items), _round(cumulative * len(items)))
        parts.append(items[start:end])
        start = end
    return parts


def split_records(
    records: Sequence[Record], fractions: dict[str, float], seed: int, salt: str = "",
) -> dict[str, list[Record]]:
    """Split records by the given fractions, stratified by label, keeping groups together.

    Without groups, each label's records are shuffled (by seed) and given their quantile within
    the label; all records are ordered by quantile and cut once by the fractions. The split
    sizes follow the fractions exactly and each label's share of a split differs from its
    share of the whole by less than one record, even for tiny labels. With groups (e.g. all
    variants of one problem), whole groups are shuffled and cut instead, so no group straddles
    two splits. Output order is the input order within each split.
    """
    names = list(fractions)
    rng = random.Random(f"split:{seed}:{salt}")
    total = sum(fractions.values())
    shares = [fractions[name] / total for name in names]
    assigned: dict[int, str] = {}
    if any(record.group is not None for record in records):
        groups: dict[str, list[int]] = defaultdict(list)
        for index, record in enumerate(records):
            groups[record.group if record.group is not None else f"\0{index}"].append(index)
        keys = sorted(groups)
        rng.shuffle(keys)
        for name, part in zip(names, _cut(keys, shares)):
            for key in part:
                for index in groups[key]:
                    assigned[index] = name
    else:
        by_label: dict[str, list[int]] = defaultdict(list)
        for index, record in enumerate(records):
            by_label[record.label].append(index)
        labels = sorted(by_label)
        order = labels[:]
        rng.shuffle(order)  # which labels get the odd record where a cut falls between them
        rank = {label: position for position, label in enumerate(order)}
        keyed = []
        for label in labels:
            indices = by_label[label]
            rng.shuffle(indices)
            keyed.extend(((i + 0.5) / len(indices), rank[label], index) for i, index in enumerate(indices))
        keyed.sort()
        for name, part in zip(names, _cut([index for _, _, index in keyed], shares)):
            for index in part:
                assigned[index] = name
    out: dict[str, list[Record]] = {name: [] for name in names}
    for index, record in enumerate(records):
        out[assigned[index]].append(record)
    return out


def complete_splits(
    sources: dict[str, list[Record]], seed: int,
) -> tuple[dict[str, list[Record]], dict[str, str]]:
    """Train/valid/test from the splits the files had (see the module docstring for the rules).

    `sources` maps train/valid/test (or "all" for a single file) to records; returns the three
    splits and, for each split that was made rather than read, how it was made.
    """
    present = {name: records for name, records in sources.items() if records}
    if not present:
        raise UserError("no examples were read (every line was empty or skipped)")
    made: dict[str, str] = {}
    if set(present) == set(SPLITS):
        return {name: list(present[name]) for name in SPLITS}, made
    if "train" in present and len(present) == 2 and "all" not in present:
        (other,) = set(present) - {"train"}
        missing = "test" if other == "valid" else "valid"
        train = present["train"]
        share = min(0.5, len(present[other]) / len(train))
        parts = split_records(train, {"train": 1 - share, missing: share}, seed, salt=missing)
        made[missing] = (
            f"held out of train ({len(parts[missing])} of {len(train)}), stratified by label, "
            f"as large as {other}; seed {seed}"
        )
        made["train"] = f"what remains of train after holding out {missing}"
        return {"train": parts["train"], other: list(present[other]), missing: parts[missing]}, made
    pooled = [record for name in ("all", *SPLITS) for record in present.get(name, [])]
    splits = split_records(pooled, DEFAULT_FRACTIONS, seed, salt="all")
    origin = " + ".join(name for name in ("all", *SPLITS) if name in present)
    for name in SPLITS:
        made[name] = f"{_percent(DEFAULT_FRACTIONS[name])} of the pooled examples ({origin}), stratified by label; seed {seed}"
    return splits, made


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def refuse_empty_splits(sources: dict[str, list[Record]], files: dict[str, Any]) -> None:
    """A split file without examples is an error: taken as missing, its split would silently be
    made from the others (an empty test.jsonl would have test held out of train)."""
    if not any(sources.values()):
        return  # nothing was read at all: complete_splits says so
    for split, records in sources.items():
        if not records:
            where = (files.get(split) or {}).get("path") or f"the {split} file"
            raise UserError(f"{where}: the {split} split holds no examples (the file is empty or blank, or every "
                            f"line was skipped as bad); fill it, or remove it to have {split} made from the other "
                            "splits")


# --------------------------------------------------------------------------- assembling


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(
    *,
    name: str,
    task: str,
    language: str,
    sources: dict[str, list[Record]],
    seed: int,
    label_names: list[str] | None = None,
    label_index: dict[str, int] | None = None,
    bad: BadLines | None = None,
    manifest: dict[str, Any] | None = None,
    splits: dict[str, list[Record]] | None = None,
    made: dict[str, str] | None = None,
) -> Dataset:
    """Records -> Dataset: labels to integers, splits completed, ids made unique, manifest."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if splits is None:
        refuse_empty_splits(sources, (manifest or {}).get("files") or {})
        splits, made = complete_splits(sources, seed)
    made = made or {}
    if label_index is None:
        seen = {record.label for records in splits.values() for record in records}
        label_names = label_order(seen)
        label_index = {label: index for index, label in enumerate(label_names)}
    assert label_names is not None
    used: Counter[str] = Counter()
    renamed = 0
    examples: dict[str, list[Example]] = {}
    for split in SPLITS:
        out = []
        for record in splits.get(split, []):
            used[record.id] += 1
            example_id = record.id
            if used[record.id] > 1:
                example_id = f"{record.id}#{used[record.id]}"
                renamed += 1
            out.append(Example(example_id, record.code, label_index[record.label], language, record.meta))
        examples[split] = out
    counts = {
        split: {label_names[k]: n for k, n in sorted(Counter(ex.label for ex in exs).items())}
        for split, exs in examples.items()
    }
    full = {
        "name": name,
        "task": task,
        "language": language,
        "label_names": label_names,
        "seed": seed,
        "sizes": {split: len(exs) for split, exs in examples.items()},
        "counts": counts,
        "source_splits": {split: len(records) for split, records in sources.items() if records} if sources else {},
        "splits_made": made,
        "duplicate_ids_renamed": renamed,
        "skipped": (bad or BadLines(True)).to_json(),
    }
    full.update(manifest or {})
    return Dataset(name=name, task=task, language=language, label_names=list(label_names), splits=examples, manifest=full)


# --------------------------------------------------------------------------- files


def _existing(path: str | Path | None, what: str) -> Path:
    if path is None or str(path) == "":
        raise UserError(f"{what} needs --data PATH (a file or a directory)")
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise UserError(f"{resolved}: no such file or directory")
    return resolved


def split_files(path: Path, extensions: Sequence[str], what: str, ignore: Sequence[str] = ()) -> dict[str, Path]:
    """A file -> {"all": file}; a directory -> its train/valid/test files (valid may be dev/val),
    or its only data file when it has no split files."""
    if path.is_file():
        return {"all": path}
    found: dict[str, Path] = {}
    for split, stems in _SPLIT_FILE_STEMS.items():
        for stem in stems:
            for ext in extensions:
                candidate = path / f"{stem}{ext}"
                if candidate.is_file():
                    found.setdefault(split, candidate)
    if found:
        return found
    loose = sorted(file for ext in extensions for file in path.glob(f"*{ext}") if file.is_file() and file.name not in ignore)
    if len(loose) == 1:  # a directory holding one data file: that file
        return {"all": loose[0]}
    expected = ", ".join(f"{stems[0]}{extensions[0]}" for stems in _SPLIT_FILE_STEMS.values())
    others = f"; it has {', '.join(f.name for f in loose[:5])}: pass one of them" if loose else ""
    raise UserError(f"{path}: no {what} split files found; expected {expected} (or pass one file){others}")


def _source_manifest(files: dict[str, Path]) -> dict[str, Any]:
    return {split: {"path": str(path.resolve()), "sha256": file_sha256(path)} for split, path in files.items()}


def _lines(path: Path, bad: BadLines | None = None) -> Iterator[tuple[int, str]]:
    r"""(line number, text) of each line, ending at \n only (a stray \r stays inside its line).

    Each line is decoded on its own, so a byte that is not UTF-8 is reported with its line and
    its offset in the file, and with `bad` (--skip-bad) only that line is lost. A leading BOM is
    dropped. Without `bad` a bad byte is an error.
    """
    offset = 0
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                start, offset = offset, offset + len(raw)
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw, start = raw[3:], start + 3
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    detail = f"{err.reason} at byte {start + err.start:,} of the file, byte {err.start:,} of the line"
                    if bad is None:
                        raise UserError(f"{path}:{number}: not valid UTF-8 ({detail}); re-encode the file") from None
                    bad.report(path, number, "not valid UTF-8", detail)
                    continue
                yield number, text
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None


# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): one half of a pair decodes to a lone
# surrogate, which is not text (it cannot be encoded, tokenized or written back). Only lines
# holding such an escape are searched for one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")


def lone_surrogate(value: Any, where: str = "") -> str | None:
    """Where the first lone surrogate in a decoded JSON value is (e.g. "'func', character 12"), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            return f"{where or 'the value'}, character {err.start:,}: \\u{ord(value[err.start]):04x}"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = lone_surrogate(key, "a key") if isinstance(key, str) else None
        found = found or lone_surrogate(item, f"{key!r}" if not where else f"{where}[{key!r}]")
        if found:
            return found
    return None


def _jsonl(path: Path, bad: BadLines) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in _lines(path, bad):
        if not line.strip():
            continue
        try:
            record = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as err:
            bad.report(path, number, "not valid JSON", err.msg)
            continue
        if not isinstance(record, dict):
            bad.report(path, number, "not a JSON object", type(record).__name__)
            continue
        if _SURROGATE_ESCAPE.search(line):
            found = lone_surrogate(record)
            if found:
                bad.report(path, number, "not valid Unicode", f"a lone UTF-16 surrogate escape in {found}")
                continue
        yield number, record


def _code(value: Any, path: Path, number: int, column: str, bad: BadLines) -> str | None:
    if value is None:
        bad.report(path, number, "missing code", f"no {column!r}")
        return None
    if not isinstance(value, str):
        bad.report(path, number, "code is not text", f"{column!r} is {type(value).__name__}")
        return None
    if not value.strip():
        bad.report(path, number, "empty code", f"{column!r} is blank")
        return None
    return value


def _label(value: Any, path: Path, number: int, column: str, bad: BadLines, allowed: dict[str, Any] | None) -> str | None:
    text = label_text(value)
    if text is None:
        bad.report(path, number, "missing label", f"no {column!r}")
        return None
    if allowed is not None and text not in allowed:
        shown = ", ".join(list(allowed)[:12]) + (", ..." if len(allowed) > 12 else "")
        bad.report(path, number, "unknown label", f"{column!r} is {text!r}; expected one of {shown}")
        return None
    return text


def _id(value: Any, path: Path, number: int) -> str:
    text = label_text(value)
    return text if text is not None else f"{path.stem}:{number}"


# --------------------------------------------------------------------------- devign


DEVIGN_LABELS = ["clean", "vulnerable"]
_BINARY = {"0": 0, "1": 1}


def load_devign(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """CodeXGLUE defect detection: JSONL of `func`, `target` (1 = vulnerable), `idx`.

    A `substitutes` field (ALERT's candidates, a Python dict literal as a string) is parsed
    with `ast.literal_eval` into meta["substitutes"]; `project` and `commit_id` are kept too.
    """
    files = split_files(_existing(path, "devign"), (".jsonl",), "devign")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    with_substitutes = 0
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in _jsonl(file, bad):
            code = _code(row.get("func"), file, number, "func", bad)
            if code is None:
                continue
            label = _label(row.get("target"), file, number, "target", bad, _BINARY)
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
            records.append(Record(_id(row.get("idx"), file, number), code, label, meta))
    return assemble(
        name="devign", task="defect", language="c", sources=sources, seed=seed, bad=bad,
        label_names=DEVIGN_LABELS, label_index=_BINARY,
        manifest={"format": "devign", "files": _source_manifest(files), "with_substitutes": with_substitutes},
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


# --------------------------------------------------------------------------- bigclonebench


BCB_LABELS = ["not-clone", "clone"]


def load_bigclonebench(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """BigCloneBench (CodeXGLUE): `data.jsonl` of {idx, func} and pair files `id1 id2 label`.

    PATH is the directory (train.txt/valid.txt/test.txt next to data.jsonl) or one pair file.
    An example's code is the pair (func1, func2); meta keeps id1 and id2.
    """
    root = _existing(path, "bigclonebench")
    directory = root if root.is_dir() else root.parent
    data_file = directory / "data.jsonl"
    if not data_file.is_file():
        raise UserError(f"{directory}: no data.jsonl (the functions, one {{idx, func}} object a line)")
    bad = BadLines(skip_bad)
    functions: dict[str, str] = {}
    for number, row in _jsonl(data_file, bad):
        code = _code(row.get("func"), data_file, number, "func", bad)
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
        for number, line in _lines(file, bad):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3:
                bad.report(file, number, "not a pair line", f"expected 'id1 id2 label', got {len(fields)} fields")
                continue
            id1, id2, raw = fields
            label = _label(raw, file, number, "label", bad, _BINARY)
            if label is None:
                continue
            missing = [i for i in (id1, id2) if i not in functions]
            if missing:
                bad.report(file, number, "unknown function id", f"{', '.join(missing)} not in data.jsonl")
                continue
            records.append(Record(f"{id1}-{id2}", (functions[id1], functions[id2]), label, {"id1": id1, "id2": id2}))
    files_manifest = _source_manifest({"functions": data_file, **files})
    return assemble(
        name="bigclonebench", task="clone", language="java", sources=sources, seed=seed, bad=bad,
        label_names=BCB_LABELS, label_index=_BINARY,
        manifest={"format": "bigclonebench", "files": files_manifest, "functions": len(functions)},
    )


# --------------------------------------------------------------------------- gcj


CODESPLIT = "<CODESPLIT>"


def load_gcj(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """GCJ authorship (ALERT's gcjpy): lines `CODE <CODESPLIT> LABEL`, newlines escaped as `\\n`.

    PATH is the directory (train.txt, valid.txt, optional test.txt, optional classes.txt of
    `label<TAB>author`) or one file (classes.txt beside it is used when present). Without a
    test file, test is held out of train (see the module docstring).
    """
    from engine.datasets.gcj_text import decode_gcj_code

    root = _existing(path, "gcj")
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
        for number, line in _lines(file, bad):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            escaped, sep, raw = line.rpartition(CODESPLIT)
            if not sep:
                bad.report(file, number, "no <CODESPLIT>", "expected 'CODE <CODESPLIT> LABEL'")
                continue
            label = _label(raw, file, number, "label", bad, label_index)
            if label is None:
                continue
            code = decode_gcj_code(escaped.removesuffix(" "))
            if not code.strip():
                bad.report(file, number, "empty code")
                continue
            records.append(Record(f"{file.stem}:{number}", code, label, {"file": file.name, "line": number}))
    files_manifest = _source_manifest(files)
    if label_index is not None:
        files_manifest["classes"] = {"path": str(classes_file.resolve()), "sha256": file_sha256(classes_file)}
    return assemble(
        name="gcj", task="authorship", language="python", sources=sources, seed=seed, bad=bad,
        label_names=label_names, label_index=label_index,
        manifest={"format": "gcj", "files": files_manifest},
    )


def _read_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    entries: list[tuple[str, str]] = []
    for number, line in _lines(path):
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


# --------------------------------------------------------------------------- poj104


def load_poj104(path: str | Path | None, *, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """POJ-104 (CodeXGLUE): JSONL of `code`, `label` (the problem, "1".."104"), `index`.

    CodeXGLUE splits POJ-104 by problem (for retrieval), so its test problems never occur in
    train. For classification every split needs the same classes: when valid or test holds a
    label absent from train, all files are pooled and re-split 80/10/10, stratified by label,
    and the manifest says so.
    """
    files = split_files(_existing(path, "poj104"), (".jsonl",), "poj104")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in _jsonl(file, bad):
            code = _code(row.get("code"), file, number, "code", bad)
            if code is None:
                continue
            label = _label(row.get("label"), file, number, "label", bad, None)
            if label is None:
                continue
            records.append(Record(_id(row.get("index"), file, number), code, label, {}))
    manifest: dict[str, Any] = {"format": "poj104", "files": _source_manifest(files)}
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


# --------------------------------------------------------------------------- jsonl / csv


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
    code = _code(row.get(mapping["code"]), file, number, mapping["code"], bad)
    if code is None:
        return None
    if "code2" in mapping:
        second = _code(row.get(mapping["code2"]), file, number, mapping["code2"], bad)
        if second is None:
            return None
        code = (code, second)
    label = _label(row.get(mapping["label"]), file, number, mapping["label"], bad, None)
    if label is None:
        return None
    identifier = _id(row.get(mapping["id"]), file, number) if "id" in mapping else f"{file.stem}:{number}"
    return Record(identifier, code, label, {})


def load_jsonl(path, *, columns=None, language=None, task=None, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """Any JSONL file (or a directory of train/valid/test .jsonl) with a column mapping."""
    mapping, language, task = _generic_options(columns, language, task)
    files = split_files(_existing(path, "jsonl"), (".jsonl", ".json"), "jsonl")
    bad = BadLines(skip_bad)
    sources: dict[str, list[Record]] = {}
    for split, file in files.items():
        records = sources.setdefault(split, [])
        for number, row in _jsonl(file, bad):
            record = _generic_record(row, mapping, file, number, bad)
            if record is not None:
                records.append(record)
    return assemble(
        name=f"jsonl:{_stem(path)}", task=task, language=language, sources=sources, seed=seed, bad=bad,
        manifest={"format": "jsonl", "columns": mapping, "files": _source_manifest(files)},
    )


def load_csv(path, *, columns=None, language=None, task=None, seed: int = 0, skip_bad: bool = False) -> Dataset:
    """Any CSV file with a header row (or a directory of train/valid/test .csv), column mapping as for jsonl."""
    mapping, language, task = _generic_options(columns, language, task)
    files = split_files(_existing(path, "csv"), (".csv",), "csv")
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
        manifest={"format": "csv", "columns": mapping, "files": _source_manifest(files)},
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


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    load: Callable[..., Dataset]
    generic: bool = False  # takes --columns/--language/--task


FORMATS: dict[str, Format] = {
    "devign": Format("devign", "CodeXGLUE defect detection JSONL (func, target, idx[, substitutes]); C, defect", load_devign),
    "bigclonebench": Format("bigclonebench", "data.jsonl {idx, func} + train/valid/test.txt pairs 'id1 id2 label'; Java, clone", load_bigclonebench),
    "gcj": Format("gcj", "authorship lines 'CODE <CODESPLIT> LABEL' + classes.txt; Python, authorship", load_gcj),
    "poj104": Format("poj104", "POJ-104 JSONL (code, label, index); C, classification", load_poj104),
    "jsonl": Format("jsonl", "any JSONL with --columns code=..,label=..[,id=..,code2=..] --language --task", load_jsonl, True),
    "csv": Format("csv", "any CSV with a header, options as for jsonl", load_csv, True),
}
