"""What every file-format loader shares (the loaders themselves: `engine/datasets/formats/`).

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

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.datasets.base import SPLITS, TASKS, Dataset, Example
from engine.errors import UserError

DEFAULT_FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
_SPLIT_FILE_STEMS = {"train": ("train",), "valid": ("valid", "dev", "val"), "test": ("test",)}
_MAX_REPORTED = 10
BINARY = {"0": 0, "1": 1}  # label index of the 0/1 labels of Devign and BigCloneBench


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


def existing_path(path: str | Path | None, what: str) -> Path:
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


def source_manifest(files: dict[str, Path]) -> dict[str, Any]:
    return {split: {"path": str(path.resolve()), "sha256": file_sha256(path)} for split, path in files.items()}


def read_lines(path: Path, bad: BadLines | None = None) -> Iterator[tuple[int, str]]:
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


def read_jsonl(path: Path, bad: BadLines) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in read_lines(path, bad):
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


def code_field(value: Any, path: Path, number: int, column: str, bad: BadLines) -> str | None:
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


def label_field(value: Any, path: Path, number: int, column: str, bad: BadLines, allowed: dict[str, Any] | None) -> str | None:
    text = label_text(value)
    if text is None:
        bad.report(path, number, "missing label", f"no {column!r}")
        return None
    if allowed is not None and text not in allowed:
        shown = ", ".join(list(allowed)[:12]) + (", ..." if len(allowed) > 12 else "")
        bad.report(path, number, "unknown label", f"{column!r} is {text!r}; expected one of {shown}")
        return None
    return text


def id_field(value: Any, path: Path, number: int) -> str:
    text = label_text(value)
    return text if text is not None else f"{path.stem}:{number}"
