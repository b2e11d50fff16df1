"""`engine study` end to end through the real CLI, on a reduced quickstart (tiny victim, few examples).

Everything real: training, the three compression methods, the masked LM and substitutes, the
four attacks and `analysis report`; only the sizes are small. Checks that every attack cell
wrote a record per example, the report files exist, and (with pdflatex) the LaTeX compiles;
then that a second run does nothing.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.study.config import load_config
from engine.study.plan import expand, is_done

ROOT = Path(__file__).resolve().parents[1]

REDUCED = """
[study]
name = "reduced-quickstart"
seeds = [0]
device = "cpu"
threads = 1
report = ["latex", "html"]

[[datasets]]
name = "stdlib"
builtin = "stdlib-attribution"
size = 12

[[models]]
name = "tiny"
base = "scratch:tiny"
epochs = 2
max_length = 64
vocab_size = 500

[[compressions]]
method = "prune"
ratio = 0.5
timing_examples = 4
repeats = 1
batch_sizes = "4"

[[compressions]]
name = "int8"
method = "quantize"
timing_examples = 4
repeats = 1
batch_sizes = "4"

[[compressions]]
method = "distill"
target_mb = 0.3
epochs = 1
timing_examples = 4
repeats = 1
batch_sizes = "4"

[mlm]
base = "scratch:tiny"
epochs = 1
max_length = 64
vocab_size = 500

[substitutes]
top_k = 8
keep = 4

[attack_defaults]
n = 4
budget = 12
batch_size = 32

[[attacks]]
recipe = "mhm"
mhm_iterations = 2
mhm_candidates = 5

[[attacks]]
recipe = "alert"

[[attacks]]
recipe = "wir-random"
wir_candidates = 5

[[attacks]]
recipe = "coda"
"""


def _analysis_report_exists() -> bool:
    done = subprocess.run([sys.executable, "-m", "analysis", "report", "--help"], cwd=ROOT, capture_output=True)
    return done.returncode == 0


def _reduced_study(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The reduced quickstart's config, its study folder and the `engine study` command for it."""
    if not _analysis_report_exists():
        pytest.skip("`analysis report` is not available yet")
    config = tmp_path / "reduced.toml"
    config.write_text(REDUCED, encoding="utf-8")
    out = tmp_path / "study"
    return config, out, [sys.executable, "-m", "engine", "study", "--config", str(config), "--out", str(out),
                         "--no-progress"]


@pytest.mark.slow
def test_reduced_quickstart_end_to_end(tmp_path):
    config, out, command = _reduced_study(tmp_path)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    plan = expand(load_config(config))
    attacks = [cell for cell in plan.cells.values() if cell.kind == "attack"]
    assert len(attacks) == 16
    for cell in plan.cells.values():
        assert is_done(out, cell), cell.name
    for cell in attacks:
        lines = (out / cell.output / "records.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        assert len(records) == 4 and len({r["example_id"] for r in records}) == 4, cell.name
        assert {r["attack"] for r in records} == {cell.config["recipe"]}
    report = out / "report"
    main, html = report / "latex" / "report.tex", report / "report.html"
    assert main.is_file() and html.is_file(), sorted(str(p.relative_to(report)) for p in report.rglob("*"))
    assert len(list((report / "latex").glob("table-*.tex"))) >= 3
    assert f"report: {report}\n  {main}\n  {html}\n" in done.stdout
    if shutil.which("pdflatex"):
        compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", main.name],
                                  cwd=main.parent, capture_output=True, text=True, timeout=120)
        assert compiled.returncode == 0, compiled.stdout[-2000:]

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert all(line.split()[1] == "done" for line in again.stdout.splitlines()[2:] if line.startswith(("train", "attack")))


@pytest.mark.slow
def test_pilot_then_a_sample_of_the_design_end_to_end(tmp_path):
    """`--pilot N` measures every attack cell on the study's own victims; `--examples-per-cell N` then runs the
    whole grid on a stratified sample (same examples in every cell), and the report says it is a sample."""
    config, out, base = _reduced_study(tmp_path)
    env = {**os.environ, "CRT_CACHE_DIR": str(tmp_path / "cache")}
    pilot = subprocess.run(base + ["--pilot", "2"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert pilot.returncode == 0, pilot.stdout[-3000:] + pilot.stderr[-3000:]
    summary = json.loads((out / "pilot.json").read_text(encoding="utf-8"))
    assert len(summary["attacks"]) == 16 and {a["examples"] for a in summary["attacks"]} == {2}
    assert "16 of 16 attack cells from pilots" in pilot.stdout
    plan = expand(load_config(config))
    assert all(is_done(out, c) for c in plan.cells.values() if c.kind in ("train", "compress", "mlm"))
    assert not any(is_done(out, c) for c in plan.cells.values() if c.kind == "attack")

    sampled = subprocess.run(base + ["--examples-per-cell", "3"], cwd=ROOT, capture_output=True, text=True,
                             timeout=600, env=env)
    assert sampled.returncode == 0, sampled.stdout[-3000:] + sampled.stderr[-3000:]
    rows = {line.split()[0]: line.split()[1] for line in sampled.stdout.splitlines() if line.startswith(("train", "attack"))}
    assert rows["train:stdlib:tiny"] == "done"  # trained once, by the pilot
    import dataclasses

    sample_plan = expand(dataclasses.replace(load_config(config), examples_per_cell=3))
    chosen = set()
    for cell in (c for c in sample_plan.cells.values() if c.kind == "attack"):
        assert is_done(out, cell), cell.name
        records = [json.loads(line) for line in (out / cell.output / "records.jsonl").read_text().splitlines()]
        chosen.add(tuple(sorted(r["example_id"] for r in records)))
        manifest = json.loads((out / cell.output / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["dataset"]["sample"] == {"size": 3, "of": 4, "stratified_by": "label"}
    assert len(chosen) == 1 and len(next(iter(chosen))) == 3  # the same three examples in every cell
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "A sample, not the full design" in html and "sample of 3 of the 4 test examples" in html
    main = out / "report" / "latex" / "report.tex"
    assert "A sample, not the full design" in main.read_text(encoding="utf-8")
    if shutil.which("pdflatex"):  # the note must not break the LaTeX
        compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", main.name],
                                  cwd=main.parent, capture_output=True, text=True, timeout=120)
        assert compiled.returncode == 0, compiled.stdout[-2000:]
