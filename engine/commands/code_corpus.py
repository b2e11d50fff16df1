"""Corpus mode of `engine identifiers | rename | check`: one program per JSONL line, one record out.

Starting a process per file costs more than the work (about 2 programs/s, where the language
layer itself does hundreds per second), so `--jsonl IN` runs a whole corpus in one process (or
`--workers N` processes), in input order, and writes one JSON record per input line. A line
that cannot be handled (not JSON, a missing field, bytes that are not UTF-8, a malformed or
rejected mapping) becomes a record with `status` and `error`, never a traceback, and the run goes on.

Fields are found by name: the dataset formats' own (`func` and `idx` of Devign/BigCloneBench,
`code` and `id` of the toolkit's pools, `original_code` / `adversarial_code` / `rename_map` of
attack records) or those named with `--columns ROLE=FIELD,...`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.code import LANGUAGES, CodeInputError, Renamer, check_rename, extract, validate
from engine.errors import UserError

# Each role's field names, tried in order; `--columns` puts the user's name first.
FIELDS: dict[str, tuple[str, ...]] = {
    "code": ("code", "func", "source", "program", "original_code"),
    "id": ("id", "idx", "example_id", "index"),
    "language": ("language", "lang"),
    "map": ("map", "rename_map"),
    "original": ("original", "original_code", "code", "func"),
    "renamed": ("renamed", "adversarial_code"),
}
ROLES = {"identifiers": ("code", "id", "language"), "rename": ("code", "id", "language", "map"),
         "check": ("original", "renamed", "map", "id", "language")}


class LineError(Exception):
    """What is wrong with one input line; it becomes that line's record."""


@dataclass
class Settings:
    """What every line of one run shares (sent once to each worker)."""

    command: str
    fields: dict[str, tuple[str, ...]]
    language: str | None = None
    encoding: str = "utf-8"
    mapping: dict[str, str] | None = None  # --map: the mapping of lines that have none


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def parse_mapping(text: str) -> dict[str, str]:
    """`--map old=new,old2=new2` (or a corpus row's `map` column in that form) as a dict."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise UserError(f"--map: {item!r} is not of the form OLD=NEW")
        old, new = old.strip(), new.strip()
        if old in mapping:
            raise UserError(f"--map: {old!r} is mapped twice")
        mapping[old] = new
    if not mapping:
        raise UserError("--map is empty")
    return mapping


def add_corpus_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("corpus mode (one program per JSONL line)")
    group.add_argument("--jsonl", metavar="IN", help="read programs from a JSONL file (one per line) instead of FILE and "
                       "write one JSON record per line")
    group.add_argument("--out", metavar="OUT", help="with --jsonl: write the records to OUT (default stdout)")
    group.add_argument("--columns", metavar="ROLE=FIELD,...",
                       help="with --jsonl: field names, e.g. code=func,id=idx (roles: code, id, language, map, "
                       "original, renamed; default: the dataset formats' names, see docs/language-layer.md)")
    group.add_argument("--workers", type=int, default=1, metavar="N", help="with --jsonl: worker processes (default 1)")
    group.add_argument("--no-progress", action="store_true", help="with --jsonl: no progress bar")


def parse_columns(text: str | None, command: str) -> dict[str, tuple[str, ...]]:
    fields = dict(FIELDS)
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        role, sep, name = (part.strip() for part in item.partition("="))
        if not sep or not role or not name:
            raise UserError(f"--columns: {item!r} is not of the form ROLE=FIELD")
        if role not in ROLES[command]:
            raise UserError(f"--columns: engine {command} has no role {role!r}; its roles are {', '.join(ROLES[command])}")
        fields[role] = (name,)
    return fields


def run_corpus(args: argparse.Namespace, command: str, mapping: dict[str, str] | None = None) -> int:
    """Process `args.jsonl`; exit status 0 when every line is ok, 1 otherwise (all records written)."""
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    path = Path(args.jsonl)
    if not path.is_file():
        raise UserError(f"--jsonl {path}: no such file")
    settings = Settings(command, parse_columns(args.columns, command), args.lang, args.encoding, mapping)
    total = _count_lines(path)
    started = time.perf_counter()
    tally = Tally()
    out_context = open(args.out, "w", encoding="utf-8") if args.out else nullcontext(sys.stdout)
    with out_context as out, _progress(total, command, not args.no_progress) as bar:
        for record in _records(path, settings, args.workers):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            tally.statuses[record["status"]] += 1
            if bar is not None:
                bar.update(1)
        out.flush()
    tally.seconds = time.perf_counter() - started
    done = sum(tally.statuses.values())
    rate = done / tally.seconds if tally.seconds > 0 else float("inf")
    counts = ", ".join(f"{count} {status}" for status, count in sorted(tally.statuses.items(), key=lambda item: (item[0] != "ok", item[0])))
    print(f"engine {command}: {done} programs ({counts or 'none'}) in {tally.seconds:.1f} s, {rate:.0f} programs/s",
          file=sys.stderr)
    return 0 if set(tally.statuses) <= {"ok"} else 1


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def _progress(total: int, command: str, wanted: bool):
    if not wanted:
        return nullcontext(None)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return nullcontext(None)
    return tqdm(total=total, desc=f"engine {command}", unit="program", file=sys.stderr, disable=None, dynamic_ncols=True)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line


_SETTINGS: Settings | None = None  # a worker's copy


def _init_worker(settings: Settings) -> None:
    global _SETTINGS
    _SETTINGS = settings


def _in_worker(item: tuple[int, bytes]) -> dict[str, Any]:
    assert _SETTINGS is not None
    return handle_line(item[0], item[1], _SETTINGS)


def _records(path: Path, settings: Settings, workers: int) -> Iterator[dict[str, Any]]:
    if workers == 1:
        for number, line in _lines(path):
            yield handle_line(number, line, settings)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn" if sys.platform == "darwin" else None).Pool(
            workers, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_in_worker, _lines(path), chunksize=8)


# --------------------------------------------------------------------------- one line


def handle_line(number: int, line: bytes, settings: Settings) -> dict[str, Any]:
    """The record of one input line: `line`, `id` when given, `status`, and the command's result."""
    record: dict[str, Any] = {"line": number}
    try:
        row = _row(line, settings.encoding)
        ident = _get(row, settings, "id", required=False)
        if ident is not None:
            record["id"] = ident
        language = settings.language or _get(row, settings, "language", required=False)
        if language is None:
            raise LineError("no language: pass --lang or give a `language` field")
        if language not in LANGUAGES:
            raise LineError(f"language {language!r}: use one of {', '.join(LANGUAGES)}")
        record.update(COMMANDS[settings.command](row, language, settings))
    except (LineError, CodeInputError, UserError) as err:
        record.update(status="error", error=str(err))
    except Exception as err:  # noqa: BLE001 - a bug on one line must not cost the corpus; it is recorded
        record.update(status="error", error=f"internal: {type(err).__name__}: {err}")
    return record


def _row(line: bytes, encoding: str) -> dict[str, Any]:
    try:
        text = line.decode(encoding)
    except (LookupError, UnicodeDecodeError) as err:
        raise LineError(f"cannot decode the line as {encoding}: {err}") from None
    try:
        row = json.loads(text)
    except ValueError as err:
        raise LineError(f"not JSON: {err}") from None
    if not isinstance(row, dict):
        raise LineError(f"not a JSON object but a {type(row).__name__}")
    return row


def _get(row: dict[str, Any], settings: Settings, role: str, required: bool = True) -> Any:
    for name in settings.fields[role]:
        if name in row and row[name] is not None:
            return row[name]
    if required:
        raise LineError(f"no {role} field (tried {', '.join(settings.fields[role])}; name it with --columns {role}=FIELD)")
    return None


def _text(row: dict[str, Any], settings: Settings, role: str) -> str:
    value = _get(row, settings, role)
    if not isinstance(value, str):
        raise LineError(f"field for {role} holds a {type(value).__name__}, not a program text")
    return value


def _mapping(row: dict[str, Any], settings: Settings) -> dict[str, str]:

    value = _get(row, settings, "map", required=settings.mapping is None)
    if value is None:
        return dict(settings.mapping or {})
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.lstrip().startswith("{") else parse_mapping(value)
        except ValueError as err:
            raise LineError(f"the map is not a JSON object: {err}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise LineError("the map must be an object of names to names or a string OLD=NEW,...")
    return value


def _identifiers(row: dict[str, Any], language: str, settings: Settings) -> dict[str, Any]:
    return {"status": "ok", **extract(_text(row, settings, "code"), language).to_json()}


def _rename(row: dict[str, Any], language: str, settings: Settings) -> dict[str, Any]:
    mapping = _mapping(row, settings)
    extraction = extract(_text(row, settings, "code"), language)
    rejections = validate(extraction, mapping)
    if rejections:
        return {"status": "rejected", "error": f"{len(rejections)} pair(s) rejected",
                "rejections": [str(r) for r in rejections]}
    renamed = Renamer(extraction).apply(mapping)
    result = check_rename(extraction, renamed, mapping)
    if not result.ok:  # a bug in the language layer, never the user's
        return {"status": "internal_error", "error": "; ".join(result.reasons)}
    return {"status": "ok", "renamed": renamed}


def _check(row: dict[str, Any], language: str, settings: Settings) -> dict[str, Any]:
    mapping = _mapping(row, settings)
    result = check_rename(extract(_text(row, settings, "original"), language), _text(row, settings, "renamed"), mapping)
    return {"status": "ok" if result.ok else "not_valid", **result.to_json()}


COMMANDS = {"identifiers": _identifiers, "rename": _rename, "check": _check}
