"""Corpus mode of `engine identifiers | rename | check`: one program per JSONL line, one record out,
in order; bad lines become records, never tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main as engine_main

ROOT = Path(__file__).resolve().parents[1]
C_PROGRAM = "int add(int a, int b)\n{\n    int s = a + b;\n    return s;\n}\n"
PY_PROGRAM = "def f(x):\n    y = x + 1\n    return y\n"


def write_lines(path: Path, lines: list) -> Path:
    """Objects are written as JSON, bytes as they are (to make bad lines)."""
    with open(path, "wb") as handle:
        for line in lines:
            handle.write(line if isinstance(line, bytes) else json.dumps(line).encode())
            handle.write(b"\n")
    return path


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_identifiers_over_a_corpus_with_bad_lines_through_the_real_cli(tmp_path):
    corpus = write_lines(tmp_path / "in.jsonl", [
        {"idx": 7, "func": C_PROGRAM, "target": 0},  # the Devign format's fields
        b"{not json",
        {"idx": 8, "target": 1},  # no program
        [1, 2],
        b'{"idx": 9, "func": "int f(int x) { return x; } \xff"}',  # not UTF-8
        {"idx": 10, "func": PY_PROGRAM, "language": "python"},  # --lang wins over the line's field
        b"",
        {"idx": 11, "func": C_PROGRAM},
    ])
    done = subprocess.run([sys.executable, "-m", "engine", "identifiers", "--jsonl", str(corpus), "--lang", "c"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    out = records(done.stdout)
    assert [r["line"] for r in out] == [1, 2, 3, 4, 5, 6, 8]  # blank line 7 skipped, order kept
    assert [r["status"] for r in out] == ["ok", "error", "error", "error", "error", "ok", "ok"]
    assert out[0]["id"] == 7 and {i["name"] for i in out[0]["identifiers"]} == {"a", "b", "s"}
    assert "not JSON" in out[1]["error"] and "no code field" in out[2]["error"] and "not a JSON object" in out[3]["error"]
    assert "UTF-8" in out[4]["error"] or "decode" in out[4]["error"]
    assert out[5]["language"] == "c"
    assert "7 programs (3 ok, 4 error)" in done.stderr and "programs/s" in done.stderr


def test_rename_takes_each_lines_map_and_columns_name_the_fields(tmp_path, capsys):
    corpus = write_lines(tmp_path / "in.jsonl", [
        {"src": PY_PROGRAM, "lang": "python", "renames": {"y": "total"}},
        {"src": PY_PROGRAM, "lang": "python", "renames": "x=value,y=total"},
        {"src": PY_PROGRAM, "lang": "python", "renames": {"y": "return"}},  # a keyword: rejected
        {"src": PY_PROGRAM, "lang": "python", "renames": "y"},  # malformed
        {"src": PY_PROGRAM, "lang": "klingon", "renames": {}},
    ])
    out_file = tmp_path / "out.jsonl"
    status = engine_main(["rename", "--jsonl", str(corpus), "--columns", "code=src,map=renames", "--out", str(out_file),
                          "--no-progress"])
    assert status == 1
    out = records(out_file.read_text())
    assert [r["status"] for r in out] == ["ok", "ok", "rejected", "error", "error"]
    assert out[0]["renamed"] == PY_PROGRAM.replace("y", "total")
    assert out[1]["renamed"] == "def f(value):\n    total = value + 1\n    return total\n"
    assert out[2]["rejections"] and out[2]["rejections"][0].startswith("y=return")
    assert "OLD=NEW" in out[3]["error"] and "klingon" in out[4]["error"]
    assert engine_main(["rename", "--jsonl", str(corpus), "--columns", "bogus=x"]) == 2
    assert "no role 'bogus'" in capsys.readouterr().err


def test_check_reads_attack_records_and_a_global_map(tmp_path, capsys):
    good = PY_PROGRAM.replace("y", "total")
    corpus = write_lines(tmp_path / "records.jsonl", [
        {"example_id": "a", "language": "python", "original_code": PY_PROGRAM, "adversarial_code": good,
         "rename_map": {"y": "total"}},
        {"example_id": "b", "language": "python", "original_code": PY_PROGRAM,
         "adversarial_code": good.replace("return total", "return x"), "rename_map": {"y": "total"}},
        {"example_id": "c", "language": "python", "original_code": PY_PROGRAM, "adversarial_code": good},  # --map
        {"example_id": "d", "language": "python", "original_code": PY_PROGRAM, "adversarial_code": None},
    ])
    assert engine_main(["check", "--jsonl", str(corpus), "--map", "y=total", "--no-progress"]) == 1
    out = records(capsys.readouterr().out)
    assert [(r["id"], r["status"]) for r in out] == [("a", "ok"), ("b", "not_valid"), ("c", "ok"), ("d", "error")]
    assert out[0]["alpha_equivalent"] is True and out[1]["alpha_equivalent"] is False
    assert "no renamed field" in out[3]["error"]


def test_workers_give_the_same_records_in_the_same_order(tmp_path, capsys):
    lines = [{"id": i, "code": PY_PROGRAM.replace("f(", f"f{i}("), "language": "python"} for i in range(30)]
    lines[13] = b"garbage"
    corpus = write_lines(tmp_path / "in.jsonl", lines)
    assert engine_main(["identifiers", "--jsonl", str(corpus), "--no-progress"]) == 1
    one = capsys.readouterr().out
    assert engine_main(["identifiers", "--jsonl", str(corpus), "--workers", "2", "--no-progress"]) == 1
    assert capsys.readouterr().out == one and len(records(one)) == 30


@pytest.mark.parametrize("argv, message", [
    (["identifiers"], "give FILE, or --jsonl IN"),
    (["identifiers", "x.c", "--jsonl", "in.jsonl"], "drop FILE"),
    (["identifiers", "x.c", "--out", "o.jsonl"], "belong to --jsonl"),
    (["check", "a.py", "b.py"], "give MAP"),
    (["identifiers", "--jsonl", "missing.jsonl"], "no such file"),
    (["identifiers", "--jsonl", "missing.jsonl", "--workers", "0"], "at least 1"),
])
def test_mode_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert engine_main(argv) == 2
    assert message in capsys.readouterr().err
