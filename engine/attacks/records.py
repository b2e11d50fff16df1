"""Writing and reading attack records: append-only JSONL, crash-safe resume, the end-of-run summary.

One record per example, one line each, written with a single `write` and flushed: a crash,
SIGKILL or full disk can leave at most one partial last line, which `read_records(repair=True)`
truncates (and says so), so a resumed run never duplicates an example and loses at most the one
in flight. A write the file system refuses is an `OSError` naming the file.
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.common.logschema import STATUSES


def records_name(shard: tuple[int, int] | None) -> str:
    return "records.jsonl" if shard is None else f"records-{shard[0]}-of-{shard[1]}.jsonl"


def read_records(path: str | os.PathLike, repair: bool = False) -> list[dict[str, Any]]:
    """The complete records of a JSONL file.

    Our writer ends every record with a newline in the same `write` call, so text after the
    last newline is a record whose write was interrupted: it is ignored, and with
    `repair=True` cut off the file (the example is attacked again, exactly once). A bad line
    before that is an error naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    records: list[dict[str, Any]] = []
    for number, line in enumerate(data[:cut].split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{number}: not a JSON record; fix or remove the line") from None
        if not isinstance(record, dict) or "example_id" not in record:
            raise UserError(f"{path}:{number}: not a record (a JSON object with an example_id); fix or remove the line")
        records.append(record)
    if repair and cut < len(data):
        tail = data[cut:]
        with open(path, "r+b") as handle:
            handle.truncate(cut)
        found = _PARTIAL_ID.search(tail.decode("utf-8", errors="replace"))
        which = f"example {found.group(1)!r}, attacked again" if found else "no example id readable in it"
        line = data.count(b"\n") + 1
        print(f"note: {path}: cut a partly written last line (line {line}, {len(tail):,} bytes; {which})",
              file=sys.stderr)
    return records


# The example id at the start of a partly written record (the writer puts it second, after the
# schema version; side files put it first).
_PARTIAL_ID = re.compile(r'"example_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


class RecordWriter:
    """Append one JSON line per record and flush it before returning.

    A refused write (full disk, read-only file system) raises `OSError` with this file's name,
    which a plain `write` does not carry; what was flushed before stays as it was.
    """

    def __init__(self, path: str | os.PathLike, default=None) -> None:
        self.path = Path(path)
        self.default = default
        self.failed = False
        self.handle = open(self.path, "a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=False, default=self.default) + "\n"
        try:
            self.handle.write(line)
            self.handle.flush()
        except OSError as err:
            self.failed = True
            raise OSError(err.errno, err.strerror, str(self.path)) from None

    def close(self) -> None:
        try:
            self.handle.close()
        except OSError as err:
            if not self.failed:  # the failed write was already reported; its bytes are not retried
                raise OSError(err.errno, err.strerror, str(self.path)) from None

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_text(path: str | os.PathLike, text: str) -> None:
    """`Path.write_text` whose `OSError` names the file (a failed `write` alone does not)."""
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None


# --------------------------------------------------------------------------- summary


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """TextAttack-style totals. ASR = successes / (successes + failures): skipped and errored
    examples are outside the denominator (and counted separately)."""
    records = list(records)
    status = Counter(r["status"] for r in records)
    attacked = [r for r in records if r["status"] in ("success", "failed")]
    successes = [r for r in attacked if r["status"] == "success"]
    predicted = [r for r in records if r.get("original_prediction") is not None]
    correct = [r for r in predicted if r["original_prediction"] == r["true_label"]]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    def share(key: str) -> dict[str, int]:
        values = [r[key] for r in successes]
        return {"true": sum(v is True for v in values), "false": sum(v is False for v in values),
                "unknown": sum(v is None for v in values)}

    return {
        "examples": len(records),
        "by_status": {s: status.get(s, 0) for s in STATUSES},
        "errors_by_reason": dict(Counter((r.get("reason") or "").split(":")[0] for r in records if r["status"] == "error")),
        "attacked": len(attacked),
        "succeeded": len(successes),
        "failed": len(attacked) - len(successes),
        "asr": len(successes) / len(attacked) if attacked else None,
        "original_accuracy": len(correct) / len(predicted) if predicted else None,
        "accuracy_under_attack": (len(correct) - len(successes)) / len(predicted) if predicted else None,
        "mean_queries": mean([r["queries"] for r in attacked]),
        "mean_queries_success": mean([r["queries"] for r in successes]),
        "mean_forward_passes": mean([r["forward_passes"] for r in attacked]),
        "mean_wall_time_s": mean([r["wall_time_s"] for r in attacked]),
        "mean_wall_time_success_s": mean([r["wall_time_s"] for r in successes]),
        "victim_time_share": (sum(r["victim_time_s"] for r in attacked) / sum(r["wall_time_s"] for r in attacked)
                              if attacked and sum(r["wall_time_s"] for r in attacked) > 0 else None),
        "mean_identifiers_changed_success": mean([r["identifiers_changed"] for r in successes
                                                 if r.get("identifiers_changed") is not None]),
        "validity_of_successes": {key: share(f"valid_{key}") for key in ("parses", "alpha_equivalent", "compiles", "tests_pass")},
        "compile_verdicts_differential": sum(r.get("compile_differential") is True for r in successes),
        "truncated": sum(r.get("truncated") is True for r in records),
        "truncated_attacked": sum(r.get("truncated") is True for r in attacked),
    }


def summary_table(summary: dict[str, Any], title: str = "") -> str:
    def fmt(value: Any, pct: bool = False, digits: int = 1) -> str:
        if value is None:
            return "n/a"
        return f"{100 * value:.1f}%" if pct else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))

    by = summary["by_status"]
    validity = summary["validity_of_successes"]
    rows = [
        ("Examples", fmt(summary["examples"])),
        ("Attacked (success + failed)", fmt(summary["attacked"])),
        ("Succeeded", fmt(summary["succeeded"])),
        ("Failed", fmt(summary["failed"])),
        ("Skipped: misclassified", fmt(by["skipped_misclassified"])),
        ("Skipped: no identifiers", fmt(by["skipped_no_identifiers"])),
        ("Truncated: longer than the model reads (attacked)", f"{summary['truncated']} ({summary['truncated_attacked']})"),
        ("Errors", fmt(by["error"]) + (f" ({', '.join(f'{k}: {v}' for k, v in summary['errors_by_reason'].items())})"
                                       if by["error"] else "")),
        ("Original accuracy", fmt(summary["original_accuracy"], pct=True)),
        ("Accuracy under attack", fmt(summary["accuracy_under_attack"], pct=True)),
        ("Attack success rate (succ / attacked)", fmt(summary["asr"], pct=True)),
        ("Mean queries (attacked)", fmt(summary["mean_queries"])),
        ("Mean queries (successes)", fmt(summary["mean_queries_success"])),
        ("Mean forward passes (attacked)", fmt(summary["mean_forward_passes"])),
        ("Mean time per attacked example (s)", fmt(summary["mean_wall_time_s"], digits=2)),
        ("Share of time inside the victim", fmt(summary["victim_time_share"], pct=True)),
    ]
    for key, counts in validity.items():
        rows.append((f"Successes valid: {key.replace('_', ' ')}",
                     f"{counts['true']} yes / {counts['false']} no / {counts['unknown']} unknown"))
    rows.append(("Compile verdicts differential", fmt(summary["compile_verdicts_differential"])))
    width = max(len(k) for k, _ in rows)
    value_width = max(len(v) for _, v in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * (value_width + 2) + "+"
    out = [line]
    if title:
        out += [f"| {title:<{width + value_width + 3}} |", line]
    out += [f"| {k:<{width}} | {v:>{value_width}} |" for k, v in rows]
    out.append(line)
    return "\n".join(out)
