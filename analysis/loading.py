"""Reading attack logs: every `*.jsonl` under the given directories, plus their run manifests.

Records are read with polars (many files in one lazy scan, only the columns analysis needs; the
programs themselves are fetched later, for the few examples a report shows). A run killed
mid-write leaves a truncated final line: it is skipped with a warning naming file and line.
Every other line must be a record that follows the log schema in full (`analysis.validation`:
fields, types, ranges, status rules, labels); the first one that does not is a `UserError`
naming file and line. Logs without a single complete record are an error too.
"""
from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from analysis.validation import first_bad_line, rule_columns, shape_mismatches, value_violations
from engine.common.errors import UserError
from engine.common.logschema import FIELDS

MANIFEST_NAME = "manifest.json"
CODE_COLUMNS = ("original_code", "adversarial_code", "rename_map")
_DTYPES = {"str": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean, "json": pl.String}
# A list of strings is read as one; other JSON is kept as text, which polars re-serialises
# (and in doing so drops one backslash of each escaped pair, so text is no place for lists of
# reasons that quote `stray '\'`).
_ITEM_DTYPES = {"list[str]": pl.List(pl.String)}
SCHEMA = {f.name: _ITEM_DTYPES.get(f.items or "", _DTYPES[f.type]) for f in FIELDS}
# Everything but the programs: what metrics, statistics and the audit read.
COLUMNS = [name for name in SCHEMA if name not in CODE_COLUMNS]


class LogWarning(UserWarning):
    """Something in the logs was skipped; the message says what and where."""


@dataclass
class Logs:
    records: pl.DataFrame  # COLUMNS + "path" (the file) + "run" (its manifest path or "")
    manifests: dict[str, dict[str, Any]]  # manifest path -> parsed manifest
    sources: list[tuple[str, bytes | None]] = field(default_factory=list)  # (file, bytes if truncated)
    warnings: list[str] = field(default_factory=list)

    def fetch_code(self, keys: pl.DataFrame) -> pl.DataFrame:
        """Programs and rename maps for the records in `keys` (columns path, example_id, attack, seed)."""
        on = ["path", "example_id", "attack", "seed"]
        wanted = keys.select(on).unique()
        paths = set(wanted["path"].to_list())
        chosen = [source for source in self.sources if source[0] in paths]
        if not chosen:
            return wanted.with_columns(*(pl.lit(None, pl.String).alias(c) for c in CODE_COLUMNS))
        code = with_attack_names(_scan(chosen, ["example_id", "attack", "attack_name", "seed", *CODE_COLUMNS]))
        return wanted.lazy().join(code, on=on, how="left").collect()

def find_log_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise UserError(f"{directory}: not a directory (give the folder that `engine attack` wrote)")
    # `engine attack` also writes extras*.jsonl side files (per-recipe facts, not schema records).
    files = sorted(p for p in directory.rglob("*.jsonl") if p.is_file() and not p.name.startswith("extras"))
    if not files:
        raise UserError(f"{directory}: no *.jsonl log files found (searched recursively)")
    return files


def _complete_prefix(path: Path) -> tuple[bytes | None, str | None]:
    """(bytes without a truncated final line, warning) or (None, None) when the file is whole."""
    with open(path, "rb") as handle:
        handle.seek(0, io.SEEK_END)
        size = handle.tell()
        if size == 0:
            return None, None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return None, None
        data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    tail = data[cut:]
    try:
        json.loads(tail)
        return None, None  # a complete record that merely lacks its newline
    except ValueError:
        line = data.count(b"\n") + 1
        return data[:cut], f"{path}:{line}: truncated final line skipped (a run killed mid-write?)"


def _scan(sources: list[tuple[str, bytes | None]], columns: list[str], extra: list[pl.Expr] = ()) -> pl.LazyFrame:
    schema = {name: SCHEMA[name] for name in SCHEMA}
    whole = [name for name, data in sources if data is None]
    frames = []
    if whole:
        frames.append(pl.scan_ndjson(whole, schema=schema, include_file_paths="path").select(*columns, *extra, "path"))
    for name, data in sources:
        if data is not None:
            frame = pl.read_ndjson(io.BytesIO(data), schema=schema) if data.strip() else pl.DataFrame(schema=schema)
            frames.append(frame.lazy().select(*columns, *extra).with_columns(pl.lit(name).alias("path")))
    return pl.concat(frames, how="vertical")


def label_count(manifest: dict[str, Any] | None) -> int | None:
    """How many labels a run's dataset has, when its manifest says (`dataset.label_names`)."""
    names = ((manifest or {}).get("dataset") or {}).get("label_names")
    return len(names) if isinstance(names, list) and names else None


def _nearest_manifest(path: Path, root: Path) -> Path | None:
    for folder in [path.parent, *path.parent.parents]:
        candidate = folder / MANIFEST_NAME
        if candidate.is_file():
            return candidate
        if folder == root:
            break
    return None


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the run manifest: {err}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: the run manifest is not a JSON object")
    return value


def load_logs(directories: list[str | Path]) -> Logs:
    """Read and check every record under `directories`; programs are left on disk."""
    sources: list[tuple[str, bytes | None]] = []
    notes: list[str] = []
    file_runs: dict[str, str] = {}
    manifests: dict[str, dict[str, Any]] = {}
    for directory in directories:
        root = Path(directory).resolve()
        for path in find_log_files(root):
            data, note = _complete_prefix(path)
            sources.append((str(path), data))
            if note:
                notes.append(note)
                warnings.warn(note, LogWarning, stacklevel=2)
            manifest = _nearest_manifest(path, root)
            file_runs[str(path)] = str(manifest) if manifest else ""
            if manifest and str(manifest) not in manifests:
                manifests[str(manifest)] = read_manifest(manifest)
    labels = {path: label_count(manifests.get(run)) for path, run in file_runs.items()}
    _check_shape(sources, labels)
    extra = rule_columns(COLUMNS)
    try:
        records = _scan(sources, COLUMNS, extra).collect()
    except (pl.exceptions.PolarsError, OSError) as err:
        for name, data in sources:
            problem = first_bad_line(name, data, labels[name])
            if problem:
                raise UserError(problem) from None
        raise UserError(f"cannot read the logs: {err}") from None
    if records.height == 0:
        raise UserError(_no_records(sources, notes))
    runs = pl.DataFrame({"path": list(file_runs), "run": list(file_runs.values()), "_labels": list(labels.values())},
                        schema={"path": pl.String, "run": pl.String, "_labels": pl.Int64})
    records = records.join(runs, on="path", how="left")
    _check_values(records, sources, labels)
    records = records.drop("_labels", *(e.meta.output_name() for e in extra))
    records = with_attack_names(records)
    _check_unique(records)
    return Logs(records=records, manifests=manifests, sources=sources, warnings=notes)


def with_attack_names(records):
    """`attack` as reports group by it: the record's `attack_name` where the run gave one (a study entry
    such as alert-4x or alert-transfer: one recipe in several configurations), else the recipe; the
    recipe itself stays in `recipe`."""
    return records.with_columns(pl.col("attack").alias("recipe"),
                                pl.coalesce("attack_name", "attack").alias("attack")).drop("attack_name")


TRUNCATED = ("include", "exclude", "only")


def select_truncated(logs: Logs, mode: str = "include") -> Logs:
    """The logs with all records (`include`), without those of programs longer than the model's
    window (`exclude`), or with only those (`only`). A record that does not say (`truncated` null:
    an error before tokenizing, a log of schema version 1) counts as not truncated."""
    if mode not in TRUNCATED:
        raise UserError(f"--truncated {mode!r}: use one of {', '.join(TRUNCATED)}")
    if mode == "include":
        return logs
    truncated = pl.col("truncated").fill_null(False)
    return replace(logs, records=logs.records.filter(truncated if mode == "only" else ~truncated))


def _check_shape(sources: list[tuple[str, bytes | None]], labels: dict[str, int | None]) -> None:
    """Lines that are not plainly well-formed records get the full check in Python (first problem wins)."""
    mismatches, unreadable = shape_mismatches(sources)
    data = dict(sources)
    suspects: dict[str, set[int] | None] = {name: None for name in unreadable}
    for name, number in mismatches:
        if name not in unreadable:
            suspects.setdefault(name, set()).add(number)
    for name, _ in sources:
        if name in suspects:
            problem = first_bad_line(name, data.get(name), labels[name], only=suspects[name])
            if problem:
                raise UserError(problem)


def _check_values(records: pl.DataFrame, sources: list[tuple[str, bytes | None]], labels: dict[str, int | None]) -> None:
    """Value rules, vectorised; on a failure, find the exact file and line in Python."""
    flagged = records.filter(value_violations(COLUMNS, "_labels")).select("path").unique(maintain_order=True)
    if flagged.height:
        data = dict(sources)
        for name in flagged["path"].to_list():
            problem = first_bad_line(name, data.get(name), labels[name])
            if problem:
                raise UserError(problem)
        raise UserError(f"{flagged['path'][0]}: records violate the log schema (see `analysis schema FILE`)")


def _no_records(sources: list[tuple[str, bytes | None]], notes: list[str]) -> str:
    """Why logs without a single complete record have none, file by file."""
    truncated = {note.split(":", 1)[0] for note in notes}
    reasons = []
    for name, data in sources[:5]:
        raw = data if data is not None else Path(name).read_bytes()
        if name in truncated and not raw.strip():
            reasons.append(f"{name}: only a partly written line (a run killed before its first record)")
        else:
            reasons.append(f"{name}: {'empty' if not raw else 'blank lines only'}")
    more = f"; and {len(sources) - 5} more" if len(sources) > 5 else ""
    return ("no complete attack record in the logs (" + "; ".join(reasons) + more +
            "); give the folders of runs that recorded at least one example")


# One attack run records an example once; the same key twice means a run was copied or
# concatenated twice, and counting it twice would bias every rate and pair the wrong records.
RECORD_KEY = ["dataset", "model", "compression", "attack", "seed", "example_id"]


def _check_unique(records: pl.DataFrame) -> None:
    duplicated = (records.group_by(RECORD_KEY).agg(pl.len().alias("times"), pl.col("path").unique().sort().alias("files"))
                  .filter(pl.col("times") > 1))
    if duplicated.height:
        row = duplicated.sort(RECORD_KEY).row(0, named=True)
        raise UserError(
            f"example {row['example_id']!r} of model {row['model']!r}, attack {row['attack']!r}, seed {row['seed']} is "
            f"recorded {row['times']} times (in {', '.join(row['files'])}; {duplicated.height} duplicated example(s) in "
            f"all): pass each run's directory once and remove copies of a run")
