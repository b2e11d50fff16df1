"""The attack-record schema, the contract between engine and analysis."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.common.logschema import FIELD_NAMES, SCHEMA_VERSION, SchemaError, validate_record


def make_record(**changes):
    record = {name: None for name in FIELD_NAMES}
    record.update(
        schema_version=SCHEMA_VERSION, example_id="ex-1", dataset="stdlib-attribution", task="authorship", language="python", model="tiny",
        compression="none", attack="alert", seed=0, true_label=3, status="failed", original_prediction=3,
        original_probability=0.9, original_code="x = 1\n", queries=10, forward_passes=7, wall_time_s=0.5,
        victim_time_s=0.4,
    )
    record.update(changes)
    return record


def test_a_complete_record_validates():
    validate_record(make_record())
    validate_record(make_record(status="success", adversarial_code="y = 1\n", rename_map={"x": "y"}, valid_compiles=None,
                                adversarial_prediction=1, adversarial_probability=0.2))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"status": "won"}, "unknown status"),
        ({"queries": None}, "must not be null"),
        ({"queries": 1.5}, "should be int"),
        ({"queries": True}, "should be int"),
        ({"valid_parses": 1}, "should be bool"),
    ],
)
def test_bad_records_name_the_field(changes, message):
    with pytest.raises(SchemaError, match=message):
        validate_record(make_record(**changes))


def test_missing_and_unknown_fields():
    record = make_record()
    del record["seed"]
    record["extra"] = 1
    with pytest.raises(SchemaError, match=r"missing fields \['seed'\], unknown fields \['extra'\]"):
        validate_record(record)


def test_analysis_schema_validates_files_with_line_numbers(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(make_record()) + "\n" + "{not json\n" + json.dumps(make_record(status="x")) + "\n")
    done = subprocess.run([sys.executable, "-m", "analysis", "schema", str(log)], capture_output=True, text=True)
    assert done.returncode == 1
    assert f"{log}:2:" in done.stderr and f"{log}:3:" in done.stderr
    assert "1 valid records" in done.stdout


def test_the_documented_table_is_the_current_schema():
    from pathlib import Path

    from engine.common.logschema import markdown_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "log-schema.md").read_text()
    assert "\n".join(markdown_table().splitlines()[2:]) in doc


def test_records_of_an_older_schema_version_validate_without_the_fields_added_since():
    from engine.common.logschema import FIELDS, READABLE_VERSIONS

    added = {f.name for f in FIELDS if f.since > 1}
    assert added >= {"truncated", "input_tokens", "input_tokens_read", "compile_differential"}
    old = {k: v for k, v in make_record().items() if k not in added} | {"schema_version": 1}
    assert 1 in READABLE_VERSIONS
    validate_record(old)
    with pytest.raises(SchemaError, match="unknown fields"):
        validate_record(old | {"truncated": True})  # version 1 never wrote it
    with pytest.raises(SchemaError, match="missing fields"):
        validate_record({k: v for k, v in make_record().items() if k != "truncated"})
    with pytest.raises(SchemaError, match="schema version 99"):
        validate_record(make_record(schema_version=99))
    with pytest.raises(SchemaError, match="should be bool"):
        validate_record(make_record(truncated=1))
