"""Records are validated on read (issue 14): every way the audit broke the schema is an error
naming file and line, in `analysis` (vectorised) and in `validate_record` / `analysis schema`
(Python) alike; logs without a record, backslashes and bad bytes are clear errors or just work."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from analysis.cli import main as analysis_main
from analysis.loading import load_logs
from analysis.synthetic import Study, Variant, write_study
from analysis.validation import check_line, record_pattern
from engine.errors import UserError
from engine.common.logschema import FIELDS, SCHEMA_VERSION, SchemaError, validate_record


@pytest.fixture()
def logs(tmp_path) -> Path:
    """One small run: 24 records of a binary task, its manifest listing the two labels."""
    (run,) = write_study(tmp_path / "logs", Study(examples=24, attacks=("mhm",), variants=[Variant("tiny")]))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["dataset"]["label_names"] = ["clean", "vulnerable"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run / "records.jsonl"


def records_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def first(records: list[dict], status: str) -> int:
    return next(i for i, r in enumerate(records) if r["status"] == status)


def with_line(path: Path, index: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[index] = text
    path.write_text("\n".join(lines) + "\n")


def change(record: dict, **values) -> dict:
    return {**record, **values}


def drop(record: dict, key: str) -> dict:
    return {k: v for k, v in record.items() if k != key}


# (what the audit fed in, how to break a record of the given status, the error's words)
BROKEN = [
    ("negative queries", "failed", lambda r: change(r, queries=-3), "field 'queries' is -3, outside [0,"),
    ("probability 7.5", "failed", lambda r: change(r, original_probability=7.5), "'original_probability' is 7.5, outside [0, 1]"),
    ("label 99", "failed", lambda r: change(r, true_label=99, original_prediction=99), "'true_label' is 99, but the run has 2 labels"),
    ("success with the true label", "success", lambda r: change(r, adversarial_prediction=r["true_label"]),
     "status 'success' needs adversarial_prediction != true_label"),
    ("failed although misclassified", "failed", lambda r: change(r, original_prediction=1 - r["true_label"]),
     "status 'failed' needs original_prediction == true_label"),
    ("error without a reason", "failed", lambda r: change(r, status="error", reason=None), "status 'error' needs reason present"),
    ("missing field", "failed", lambda r: drop(r, "valid_tests_pass"), "missing fields ['valid_tests_pass']"),
    ("extra field", "failed", lambda r: change(r, note="hi"), "unknown fields ['note']"),
    ("schema version 0", "failed", lambda r: change(r, schema_version=0), "written with log schema version 0"),
    ("a newer schema version", "failed", lambda r: change(r, schema_version=SCHEMA_VERSION + 1),
     f"written with log schema version {SCHEMA_VERSION + 1}"),
    ("number for a string", "failed", lambda r: change(r, example_id=5), "field 'example_id' should be str, got int"),
    ("list of numbers as reasons", "failed", lambda r: change(r, validity_reasons=[1, 2]), "should be a list of strings"),
    ("a slash in the attack name", "failed", lambda r: change(r, attack="mhm/v2"), "field 'attack' is 'mhm/v2'"),
]


@pytest.mark.parametrize("what, status, breaks, message", BROKEN, ids=[case[0] for case in BROKEN])
def test_each_schema_violation_is_an_error_with_file_and_line(logs, what, status, breaks, message):
    records = records_of(logs)
    index = first(records, status)
    bad = breaks(records[index])
    with pytest.raises(SchemaError, match=re.escape(message)):
        validate_record(bad, num_labels=2)
    with_line(logs, index, json.dumps(bad))
    with pytest.raises(UserError, match=rf"{logs}:{index + 1}: .*{re.escape(message)}"):
        load_logs([logs.parent])


@pytest.mark.parametrize("text, message", [
    ('"queries": NaN', "field 'original_probability' is nan, not a finite number"),
    ('"queries": 1e999', "field 'original_probability' is inf, not a finite number"),
    ('"queries": 9223372036854775808', "field 'queries' is 9223372036854775808, outside"),
    ('"queries": 18446744073709551616', "field 'queries' is 18446744073709551616, outside"),
])
def test_nan_infinity_and_integers_beyond_64_bits_are_errors(logs, text, message):
    records = records_of(logs)
    index = first(records, "failed")
    line = json.dumps(records[index])
    if "NaN" in text or "1e999" in text:
        line = line.replace(f'"original_probability": {json.dumps(records[index]["original_probability"])}',
                            f'"original_probability": {text.split(": ")[1]}')
    else:
        line = line.replace(f'"queries": {records[index]["queries"]}', text)
    assert line != json.dumps(records[index])
    with_line(logs, index, line)
    with pytest.raises(UserError, match=rf"{logs}:{index + 1}: .*{re.escape(message)}"):
        load_logs([logs.parent])


def test_a_duplicated_key_is_an_error(logs):
    records = records_of(logs)
    line = json.dumps(records[3])
    with_line(logs, 3, line[:-1] + ', "queries": 1}')
    with pytest.raises(UserError, match=rf"{logs}:4: field 'queries' appears twice"):
        load_logs([logs.parent])


def test_valid_records_in_another_key_order_and_spacing_are_accepted(logs):
    records = records_of(logs)
    logs.write_text("".join(json.dumps(dict(reversed(list(r.items()))), indent=None, separators=(" ,", " : ")) + "\n"
                            for r in records))
    assert load_logs([logs.parent]).records.height == len(records)


def test_a_field_added_to_the_schema_is_checked_without_further_edits(monkeypatch, logs):
    """A field added in a new schema version is required of records of that version, checked for
    type and range, and absent from records of older versions, with no edit outside `FIELDS`."""
    from engine.common import logschema

    from analysis import validation

    version = logschema.SCHEMA_VERSION + 1
    added = (*FIELDS, logschema.Field("new_flag", "bool", False, "a flag added later", since=version),
             logschema.Field("new_count", "int", True, "a count added later", since=version))
    monkeypatch.setattr(logschema, "FIELDS", added)
    monkeypatch.setattr(logschema, "FIELD_NAMES", tuple(f.name for f in added))
    monkeypatch.setattr(logschema, "READABLE_VERSIONS", (*logschema.READABLE_VERSIONS, version))
    monkeypatch.setattr(validation, "FIELDS", added)
    monkeypatch.setattr(validation, "READABLE_VERSIONS", logschema.READABLE_VERSIONS)
    record = records_of(logs)[0]
    validate_record(record)  # the older version's record stays valid without the new fields
    newer = {**record, "schema_version": version}
    with pytest.raises(SchemaError, match=r"missing fields \['new_flag', 'new_count'\]"):
        validate_record(newer)
    with pytest.raises(SchemaError, match="field 'new_count' is -1, outside"):
        validate_record({**newer, "new_flag": False, "new_count": -1})
    with pytest.raises(SchemaError, match=r"unknown fields \['new_flag'\]"):
        validate_record({**record, "new_flag": False})
    pattern = re.compile(record_pattern())
    assert pattern.match(json.dumps(record))
    assert not pattern.match(json.dumps(newer))
    assert pattern.match(json.dumps({**newer, "new_flag": True, "new_count": 300}))
    assert not pattern.match(json.dumps({**newer, "new_flag": None, "new_count": 300}))
    assert not pattern.match(json.dumps({**record, "new_flag": True, "new_count": 300}))  # needs the new version
    assert not pattern.match(json.dumps({**record, "new_flag": True, "new_count": 300, "schema_version": 1}))


# --------------------------------------------------------------------------- audit corpus: no tracebacks


@pytest.mark.parametrize("content, words", [
    (b"", "records.jsonl: empty"),
    (b"\n\n  \n", "records.jsonl: blank lines only"),
    (b'{"schema_version": 1, "example_id": "ex', "records.jsonl: only a partly written line"),
])
@pytest.mark.parametrize("command", ["report", "stats", "audit"])
@pytest.mark.filterwarnings("ignore:.*truncated final line skipped")
def test_logs_without_a_complete_record_are_one_clear_error(tmp_path, capsys, content, words, command):
    run = tmp_path / "logs" / "run"
    run.mkdir(parents=True)
    (run / "records.jsonl").write_bytes(content)
    argv = [command, "--logs", str(tmp_path / "logs")] + (["--out", str(tmp_path / "out")] if command == "report" else [])
    assert analysis_main(argv) == 2
    err = capsys.readouterr().err
    assert f"analysis {command}: error: no complete attack record in the logs" in err and words in err
    assert "Traceback" not in err


def test_backslashes_in_validity_reasons_are_read_as_written(logs, tmp_path, capsys):
    records = records_of(logs)
    index = first(records, "success")
    reasons = ["compiles: gcc: stray '\\' in program", 'compiles: python: "\\x" is an invalid escape']
    with_line(logs, index, json.dumps(change(records[index], valid_compiles=False, validity_reasons=reasons)))
    assert analysis_main(["audit", "--logs", str(logs.parent), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    worst = next(w for w in audit["worst"] if w["example_id"] == records[index]["example_id"])
    assert worst["validity_reasons"] == reasons
    assert analysis_main(["stats", "--logs", str(logs.parent)]) == 0
    assert analysis_main(["report", "--logs", str(logs.parent), "--out", str(tmp_path / "out"), "--no-figures",
                          "--bootstrap", "0", "--format", "csv,md"]) == 0


def test_invalid_utf8_in_a_log_names_line_and_byte(logs):
    lines = logs.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"reason":null', b'"reason":"\xff"').replace(b'"reason": null', b'"reason": "\xff"')
    assert b"\xff" in lines[5]
    logs.write_bytes(b"\n".join(lines))
    column = lines[5].index(b"\xff")
    offset = sum(len(line) + 1 for line in lines[:5]) + column
    with pytest.raises(UserError, match=rf"{logs}:6: not valid UTF-8 \(invalid start byte at byte {column:,} of the "
                                        rf"line, byte {offset:,} of the file\)"):
        load_logs([logs.parent])


def test_analysis_schema_reports_non_object_lines_and_agrees_with_loading(logs, capsys):
    records = records_of(logs)
    with_line(logs, 1, "[1, 2]")
    with_line(logs, 2, json.dumps(change(records[2], queries=-1)))
    assert analysis_main(["schema", str(logs)]) == 1
    err = capsys.readouterr().err
    assert f"{logs}:2: not a record: an array, where a JSON object is expected" in err
    assert f"{logs}:3: record {records[2]['example_id']!r}: field 'queries' is -1" in err
    assert "Traceback" not in err


def test_check_line_accepts_every_record_the_generator_writes(logs):
    assert all(check_line(line, 2) is None for line in logs.read_bytes().split(b"\n"))
    assert math.isfinite(sum(r["wall_time_s"] for r in records_of(logs)))
