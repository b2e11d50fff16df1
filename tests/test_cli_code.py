"""The language layer through the real command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main as engine_main

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], input=stdin, capture_output=True, cwd=ROOT, timeout=120
    )


def test_identifiers_on_the_c_sample_through_the_real_cli():
    done = run_cli("identifiers", str(SAMPLES / "checksum.c"))
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["language"] == "c" and report["parse_errors"] == 0
    names = {item["name"]: item for item in report["identifiers"]}
    assert set(names) == {"pkt", "seed", "a", "b", "len", "i"}
    # `len` is a local and also the struct field `len` (declared and as `pkt->len`): only the local's 2 occurrences.
    source = (SAMPLES / "checksum.c").read_bytes()
    assert [source[o["start"]:o["end"]] for o in names["len"]["occurrences"]] == [b"len"] * 2
    assert names["i"]["kind"] == "loop_variable" and names["pkt"]["kind"] == "parameter"


def test_rename_prints_renamed_program_and_rejects_with_one_line_per_pair():
    done = run_cli("rename", str(SAMPLES / "checksum.c"), "--map", "len,=x")
    assert done.returncode == 2 and b"not of the form OLD=NEW" in done.stderr
    done = run_cli("rename", str(SAMPLES / "checksum.c"), "--map", "a=lo,b=hi")
    assert done.returncode == 0, done.stderr.decode()
    assert b"uint32_t lo = seed & 0xffff, hi = seed >> 16;" in done.stdout
    done = run_cli("rename", str(SAMPLES / "checksum.c"), "--map", "a=pkt,b=while,len=size_t")
    assert done.returncode == 1
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("rejected ") for line in lines)


def test_stdin_needs_a_language_and_bad_bytes_are_one_line_errors(capsys):
    assert engine_main(["identifiers", "-"]) == 2
    assert "pass --lang" in capsys.readouterr().err
    done = run_cli("identifiers", "--lang", "c", "-", stdin=b"int f(){ char *s = \"\xff\"; }")
    assert done.returncode == 2
    assert b"not valid UTF-8" in done.stderr and b"Traceback" not in done.stderr
    done = run_cli("identifiers", "--lang", "c", "--encoding", "latin-1", "-", stdin=b"int f(int x){ /*\xe9*/ return x; }")
    assert done.returncode == 0 and json.loads(done.stdout)["identifiers"][0]["name"] == "x"


def test_check_command_round_trip(tmp_path):
    original = SAMPLES / "median.py"
    renamed = tmp_path / "renamed.py"
    done = run_cli("rename", str(original), "--map", "chunk=window_values,middle=mid")
    assert done.returncode == 0, done.stderr.decode()
    renamed.write_bytes(done.stdout)
    ok = run_cli("check", str(original), str(renamed), "--map", "chunk=window_values,middle=mid")
    assert ok.returncode == 0 and json.loads(ok.stdout)["alpha_equivalent"] is True
    renamed.write_text(done.stdout.decode().replace("return result", "return None"))
    bad = run_cli("check", str(original), str(renamed), "--map", "chunk=window_values,middle=mid")
    assert bad.returncode == 1 and json.loads(bad.stdout)["ok"] is False


@pytest.mark.parametrize("sample", ["checksum.c", "WordCount.java", "median.py"])
def test_every_sample_has_identifiers_and_no_parse_errors(sample, capsys):
    assert engine_main(["identifiers", str(SAMPLES / sample)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parse_errors"] == 0 and len(report["identifiers"]) >= 3


def test_every_command_has_help():
    for program, commands in (
        ("engine", ["identifiers", "rename", "check", "data", "train", "pretrain-mlm", "eval", "substitutes", "attack", "study"]),
        ("analysis", ["schema", "report", "stats", "audit"]),
    ):
        module = f"{program}.cli"
        top = subprocess.run([sys.executable, "-m", program, "--help"], capture_output=True, cwd=ROOT, text=True)
        assert top.returncode == 0 and all(c in top.stdout for c in commands), module
        for command in commands:
            sub = subprocess.run([sys.executable, "-m", program, command, "--help"], capture_output=True, cwd=ROOT, text=True)
            assert sub.returncode == 0 and "usage:" in sub.stdout


def test_building_the_cli_imports_neither_torch_nor_numba():
    """`engine --help` and `engine identifiers` must not pay seconds of start-up for torch and numba."""
    probe = "import sys, engine.cli as c; c.build_parser(); print(sorted({'torch', 'numba', 'transformers'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, cwd=ROOT, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
