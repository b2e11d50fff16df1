"""Builtin datasets (stdlib-attribution, humaneval-defects), the sandbox, the cache and `engine data`."""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from engine.commands import data as data_command
from engine.datasets.builtins import humaneval_defects as hd
from engine.datasets.base import SPLITS
from engine.datasets.registry import build_builtin, cache_root, load_dataset
from engine.datasets.sandbox import FAILED, PASSED, TIMEOUT, Limits, run_many, run_python


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cache_root_respects_override_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.delenv("CRT_CACHE_DIR")
    assert cache_root() == tmp_path / "xdg" / "code-robustness-toolkit"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "code-robustness-toolkit"


# --------------------------------------------------------------------------- stdlib-attribution


def test_stdlib_attribution_is_balanced_deterministic_and_cached(private_cache):
    first = build_builtin("stdlib-attribution", size=5, progress=False)
    assert not first.from_cache and first.path.parent.parent == private_cache / "datasets"
    cached = build_builtin("stdlib-attribution", size=5, progress=False)
    assert cached.from_cache and [r.id for r in cached.records] == [r.id for r in first.records]
    (first.path / "pool.jsonl.gz").write_bytes(b"damaged")
    repaired = build_builtin("stdlib-attribution", size=5, progress=False)
    assert not repaired.from_cache and repaired.manifest["pool_fingerprint"] == first.manifest["pool_fingerprint"]
    assert build_builtin("stdlib-attribution", size=5, progress=False).from_cache

    ds = load_dataset("stdlib-attribution", size=5, seed=0)
    assert (ds.task, ds.language) == ("authorship", "python")
    assert 8 <= ds.num_labels <= 12 and ds.label_names == sorted(ds.label_names)
    assert not {"test", "idlelib"} & set(ds.label_names)
    examples = [ex for split in SPLITS for ex in ds.splits[split]]
    assert Counter(ex.label for ex in examples) == {k: 5 for k in range(ds.num_labels)}
    sizes = [len(ds.splits[s]) for s in SPLITS]
    assert sum(sizes) == 5 * ds.num_labels and sizes[0] == 4 * ds.num_labels and min(sizes) >= ds.num_labels // 2
    for ex in examples:
        ast.parse(ex.code)
        assert 3 <= len(ex.code.splitlines()) <= 60
        assert ex.code.startswith(("def ", "async def "))
    manifest = ds.manifest
    assert manifest["python"] == sys.version.split()[0]
    assert len(manifest["source_sha256"]) == 64 and manifest["functions_per_class"] == 5
    assert manifest["cache_path"] == str(first.path)

    same = load_dataset("stdlib-attribution", size=5, seed=0)
    other = load_dataset("stdlib-attribution", size=5, seed=1)
    assert same.fingerprint == ds.fingerprint
    assert other.fingerprint != ds.fingerprint
    assert {ex.id for ex in other.split("test")} != {ex.id for ex in ds.split("test")}


# --------------------------------------------------------------------------- mutation operators


PROMPT = 'def f(xs, n):\n    """Count xs below n; "a < b" in a docstring is text."""\n'
SOLUTION = (
    "    total = 0  # 1 < 2 in a comment\n"
    "    for x in xs:\n"
    "        if x < n and x != 0:\n"
    "            total += 1\n"
    "    while total > 10:\n"
    "        total = max(total - 1, 10)\n"
    "    print('<= 3', sep='')\n"
    "    return pow(total, 1)\n"
)


def mutants_of(source, start=0):
    return {(m.operator, m.describe(source)["before"], m.replacement) for m in hd.mutation_sites(source, start)}


def test_mutation_operators_on_the_syntax_tree():
    source = PROMPT + SOLUTION
    found = mutants_of(source, len(PROMPT))
    assert found == {
        ("comparison", "<", "<="), ("comparison", "!=", "=="), ("comparison", ">", ">="),
        ("off_by_one", "0", "1"), ("off_by_one", "1", "2"), ("off_by_one", "1", "0"),
        ("off_by_one", "10", "11"), ("off_by_one", "10", "9"),
        ("arithmetic", "+=", "-="), ("arithmetic", "-", "+"),
        ("negate_condition", "x < n and x != 0", "not (x < n and x != 0)"),
        ("negate_condition", "total > 10", "not (total > 10)"),
        ("swap_args", "total - 1, 10", "10, total - 1"), ("swap_args", "total, 1", "1, total"),
    }
    # the prompt (signature, docstring) is never mutated, strings and comments never are
    for mutation in hd.mutation_sites(source, len(PROMPT)):
        mutant = mutation.apply(source)
        assert mutant.startswith(PROMPT)
        assert "# 1 < 2 in a comment" in mutant and "'<= 3'" in mutant
        ast.parse(mutant)
    everything = mutants_of(source)
    assert ("swap_args", "xs, n", "n, xs") not in everything  # parameters are not a call
    assert not any(before == "sep=''" for _, before, _ in everything)  # print has a keyword argument


def test_elif_and_non_ascii_offsets():
    source = 'def g(s):\n    if s == "é":\n        return 1\n    elif len(s) >= 2:\n        return 2\n    return 3\n'
    found = mutants_of(source)
    assert ("negate_condition", "len(s) >= 2", "not (len(s) >= 2)") in found
    assert ("comparison", ">=", ">") in found
    mutation = next(m for m in hd.mutation_sites(source) if m.operator == "comparison" and m.replacement == ">")
    assert mutation.apply(source).count("len(s) > 2") == 1 and mutation.line == 4


def test_choose_mutants_is_deterministic_distinct_and_round_robin():
    source = PROMPT + SOLUTION
    chosen = hd.choose_mutants(source, len(PROMPT), 5, "demo/1")
    assert chosen == hd.choose_mutants(source, len(PROMPT), 5, "demo/1")
    assert len(chosen) == 5 and len({text for _, text in chosen}) == 5
    assert len({m.operator for m, _ in chosen}) == 5  # one per operator before any repeats
    distinct = {m.apply(source) for m in hd.mutation_sites(source, len(PROMPT))}
    assert {text for _, text in hd.choose_mutants(source, len(PROMPT), 100, "demo/1")} == distinct


# --------------------------------------------------------------------------- sandbox


FAST = Limits(timeout_s=2.0, memory_bytes=512 << 20)


def test_sandbox_passes_and_fails_by_exit_status():
    ok = run_python("assert sum([1, 2]) == 3\nprint('done')\n", FAST)
    assert ok.status == PASSED and ok.stdout == "done\n"
    bad = run_python("assert sum([1, 2]) == 4\n", FAST)
    assert bad.status == FAILED and "AssertionError" in bad.stderr


def test_sandbox_times_out_an_infinite_loop():
    result = run_python("while True:\n    pass\n", Limits(timeout_s=0.5))
    assert result.status == TIMEOUT and result.returncode is None and result.wall_s < 5


def test_sandbox_stops_a_runaway_allocation():
    limits = Limits(timeout_s=20.0, memory_bytes=256 << 20)
    result = run_python("chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))\n", limits)
    assert result.status == FAILED and "MemoryError" in result.stderr


def test_sandbox_hides_the_environment_and_isolates_the_directory(monkeypatch):
    monkeypatch.setenv("CRT_TEST_SECRET_TOKEN", "hunter2")
    program = "import os, json\nprint(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(), 'files': os.listdir('.')}))\n"
    result = run_python(program, FAST)
    seen = json.loads(result.stdout)
    assert "CRT_TEST_SECRET_TOKEN" not in seen["env"] and "hunter2" not in result.stdout
    assert set(seen["env"]) <= {"PATH", "LANG", "LC_CTYPE", "PWD"}  # bubblewrap sets PWD
    assert Path(seen["cwd"]).name.startswith("crt-sandbox-") and seen["cwd"] != os.getcwd()
    assert not Path(seen["cwd"]).exists()  # removed afterwards
    assert "main.py" in seen["files"]


def test_sandbox_limits_file_size_and_output_floods():
    big = run_python("open('big', 'wb').write(b'x' * (64 << 20))\n", Limits(timeout_s=5, file_bytes=1 << 20))
    assert big.status == FAILED
    flood = run_python("while True:\n    print('x' * 1000)\n", Limits(timeout_s=5, file_bytes=1 << 20))
    assert flood.status == FAILED and flood.wall_s < 5  # stopped by the file limit, not the clock


@pytest.mark.skipif(os.geteuid() == 0, reason="Linux does not enforce RLIMIT_NPROC for root (nor for a user "
                    "namespace made by root)")
def test_sandbox_forbids_new_processes():
    result = run_python("import os\nos.fork()\n", FAST)
    assert result.status == FAILED and ("BlockingIOError" in result.stderr or "Resource" in result.stderr)


def test_run_many_keeps_input_order():
    results = run_many([f"import sys\nsys.exit({i % 2})\n" for i in range(6)], FAST, workers=2)
    assert [r.status for r in results] == [PASSED, FAILED] * 3


# --------------------------------------------------------------------------- labelling by running tests


CLAMP = {
    "task_id": "Demo/0",
    "entry_point": "clamp_add",
    "prompt": 'def clamp_add(a, b):\n    """a + b, at most 100."""\n',
    "canonical_solution": "    total = a + b\n    if total > 100:\n        return 100\n    return total\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(60, 50) == 100\n",
}
COUNT_UP = {
    "task_id": "Demo/1",
    "entry_point": "count_up",
    "prompt": "def count_up(n):\n",
    "canonical_solution": "    i = 0\n    while i < n:\n        i += 1\n    return i\n",
    "test": "def check(candidate):\n    assert candidate(3) == 3\n",
}
BROKEN = {
    "task_id": "Demo/2",
    "entry_point": "broken",
    "prompt": "def broken(x):\n",
    "canonical_solution": "    return x - 1\n",
    "test": "def check(candidate):\n    assert candidate(1) == 2\n",
}


def test_mutants_are_labelled_by_running_the_tests():
    records, labels, manifest = hd.build_pool(
        size=20, problems=[CLAMP, COUNT_UP, BROKEN], limits=Limits(timeout_s=1.0), workers=2)
    assert labels == ["correct", "buggy"]
    assert manifest["problems_dropped"] == ["Demo/2"]  # its canonical solution fails: never labelled correct
    assert {r.group for r in records} == {"Demo/0", "Demo/1"}
    by_change = {(r.group, r.meta["mutation"]["before"], r.meta["mutation"]["after"]): r
                 for r in records if r.meta["mutation"]}
    # `total >= 100` returns 100 for 100 too: an equivalent mutant, labelled correct
    equivalent = by_change[("Demo/0", ">", ">=")]
    assert equivalent.label == "correct" and equivalent.meta["outcome"] == PASSED
    assert by_change[("Demo/0", "+", "-")].label == "buggy"
    # `i -= 1` never ends: a timeout is buggy
    looping = by_change[("Demo/1", "+=", "-=")]
    assert looping.label == "buggy" and looping.meta["outcome"] == TIMEOUT
    canonical = [r for r in records if r.meta["mutation"] is None]
    assert [r.label for r in canonical] == ["correct", "correct"]
    prompts = {problem["task_id"]: problem["prompt"] for problem in (CLAMP, COUNT_UP)}
    for record in records:
        assert record.meta["test"] and record.meta["entry_point"]
        assert record.code.startswith(prompts[record.meta["task_id"]])
        assert record.meta["prompt_chars"] == len(prompts[record.meta["task_id"]])
    assert manifest["equivalent_mutants"] == sum(1 for r in records if r.meta["mutation"] and r.label == "correct")
    assert manifest["timeouts"] >= 1


def test_humaneval_defects_through_the_registry_splits_by_problem(monkeypatch):
    subset = hd.read_problems()[:12]
    monkeypatch.setattr(hd, "read_problems", lambda path=None: subset)
    ds = load_dataset("humaneval-defects", size=1, seed=0, progress=False)
    assert (ds.task, ds.language, ds.label_names) == ("defect", "python", ["correct", "buggy"])
    assert ds.manifest["problems_dropped"] == []
    owner = {}
    for split in SPLITS:
        for ex in ds.split(split):
            assert owner.setdefault(ex.meta["task_id"], split) == split
            assert ex.code.startswith(subset[int(ex.meta["task_id"].split("/")[1])]["prompt"])
    assert len(owner) == 12 and sum(ex.label == 0 for s in SPLITS for ex in ds.split(s)) >= 12
    again = load_dataset("humaneval-defects", size=1, seed=0, progress=False)
    assert again.fingerprint == ds.fingerprint


# --------------------------------------------------------------------------- engine data


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="engine")
    data_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_engine_data_list(capsys):
    assert run_cli(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("stdlib-attribution", "humaneval-defects", "devign", "bigclonebench", "gcj", "poj104", "jsonl", "csv"):
        assert f"  {name} " in out


def test_engine_data_build_and_show(capsys, private_cache, tmp_path):
    assert run_cli(["data", "build", "--dataset", "stdlib-attribution", "--dataset-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "built in" in out and str(private_cache) in out
    assert run_cli(["data", "build", "--dataset", "stdlib-attribution", "--dataset-size", "4"]) == 0
    assert "cached (reused)" in capsys.readouterr().out

    rows = [{"func": f"int f{i}(void) {{ return {i}; }}", "target": i % 2, "idx": i} for i in range(20)]
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "oops\n", encoding="utf-8")
    assert run_cli(["data", "show", "--data-format", "devign", "--data", str(path), "--skip-bad",
                    "--split", "test", "--n", "1"]) == 0
    out = capsys.readouterr().out
    assert "fingerprint" in out and "vulnerable" in out and "skipped 1 bad line(s)" in out
    assert out.count("--- ") == 1 and "label" in out
    assert run_cli(["data", "show", "--data-format", "devign", "--data", str(path), "--skip-bad", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["skipped"]["count"] == 1 and len(manifest["fingerprint"]) == 16
