"""`engine study` with fake stages: config validation, grid expansion, cell keys, skipping, failures,
resuming after SIGKILL, and the process and Ray executors."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.cli import build_parser
from engine.commands.study import run_study
from engine.attacks.registry import RECIPES
from engine.study.config import StudyConfigError, load_config, parse_config
from engine.study.executor import make_executor
from engine.study.plan import KINDS, cell_state, expand, is_done, select
from engine.study.run import run_plan
from tests.study_fakes import FakeRunner, fake_options

ROOT = Path(__file__).resolve().parents[1]

BASE = """
[study]
name = "mini"
seeds = [0, 1]
device = "cpu"

[[datasets]]
name = "stdlib"
builtin = "stdlib-attribution"
size = 20

[[models]]
name = "tiny"
base = "scratch:tiny"
epochs = 2

[[models]]
name = "tiny2"
base = "scratch:tiny"
epochs = 3

[[compressions]]
method = "prune"
ratio = 0.4

[[compressions]]
name = "int8"
method = "quantize"

[attack_defaults]
n = 6
budget = 50

[[attacks]]
recipe = "mhm"
mhm_iterations = 5

[[attacks]]
recipe = "alert"
"""


def write(tmp_path: Path, text: str, name: str = "study.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str = BASE):
    return load_config(write(tmp_path, text), fake_options)


def study(tmp_path: Path, config: Path, *extra: str, runner=None) -> int:
    args = build_parser().parse_args(["study", "--config", str(config), "--out", str(tmp_path / "out"),
                                      "--no-progress", *extra])
    return run_study(args, runner=runner or FakeRunner(), options=fake_options)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("change, message", [
    (("[study]", "[study]\ncolour = 1"), "[study]: unknown key 'colour'; allowed keys: name"),
    (("mhm_iterations = 5", "mhm_iteratons = 5"), "[[attacks]] #1 (mhm): unknown key 'mhm_iteratons'"),
    (("mhm_iterations = 5", "mhm_iterations = \"five\""), "mhm_iterations = 'five' should be an integer"),
    (("recipe = \"alert\"", "recipe = \"bogus\""), "recipe = 'bogus' is not allowed; use one of " + ", ".join(RECIPES)),
    (("mhm_iterations = 5", "split = \"dev\""), "split = 'dev' is not allowed; use one of train, valid, test"),
    (("seeds = [0, 1]", "seeds = 0"), "[study]: seeds = 0 should be a list of integers"),
    (("builtin = \"stdlib-attribution\"", "builtin = \"stdlib\""), "builtin = 'stdlib' is unknown"),
    (("builtin = \"stdlib-attribution\"\nsize = 20", "loader = \"devign\""), "needs path = FILE_OR_DIRECTORY"),
    (("name = \"tiny2\"", "name = \"tiny\""), "the name 'tiny' is used twice"),
    (("base = \"scratch:tiny\"\nepochs = 2", "epochs = 2"), "[[models]] #1 (tiny): the key 'base' is required"),
    (("epochs = 2", "epochs = true"), "epochs = True should be an integer"),
    (("ratio = 0.4", "ratio = 0.4\nmodel = \"x\""), "'model' is set by the study itself"),
    (("[attack_defaults]\nn = 6", "[attack_defaults]"), "no 'n'; set it here or in [attack_defaults]"),
    (("[study]", "[stuff]\n[study]"), "unknown section [stuff]"),
    (("seeds = [0, 1]", "seeds = [0, 0]"), "repeats a seed"),
    (("name = \"tiny2\"", "name = \"tiny two\""), "name 'tiny two' must start with a letter or digit"),
])
def test_config_errors_name_the_file_and_the_key(tmp_path, change, message):
    old, new = change
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new, 1), "bad.toml")
    with pytest.raises(StudyConfigError) as caught:
        load_config(path, fake_options)
    text = str(caught.value)
    assert str(path) in text and message in text, text
    assert "\n" not in text


def test_invalid_toml_and_missing_commands(tmp_path):
    with pytest.raises(StudyConfigError, match=r"bad\.toml: not valid TOML: .*line 2"):
        load_config(write(tmp_path, "[study]\nname = \n", "bad.toml"), fake_options)
    # A key that would be an option of a command that is not installed says so.
    with pytest.raises(StudyConfigError, match="`engine compress`, which is not installed"):
        load_config(write(tmp_path, BASE), lambda command: None if command == "compress" else fake_options(command))


def test_defaults_and_pass_through_options(tmp_path):
    config = load(tmp_path)
    assert config.seeds == [0, 1] and config.report == ["latex", "html"] and config.include_original
    mhm, alert = config.attacks
    assert mhm.values["n"] == 6 and mhm.values["budget"] == 50 and mhm.options == {"mhm_iterations": 5}
    assert config.attack_needs_substitutes(alert) and not config.attack_needs_substitutes(mhm)
    assert [c.name for c in config.compressions] == ["prune", "int8"]


# --------------------------------------------------------------------------- the plan


def test_grid_expansion_and_dependency_order(tmp_path):
    plan = expand(load(tmp_path))
    kinds = [cell.kind for cell in plan.cells.values()]
    # 1 dataset × 2 models: 2 train, 4 compress; (1 original + 2 variants) × 2 attacks × 2 seeds × 2 models = 24 attacks
    assert kinds.count("train") == 2 and kinds.count("compress") == 4 and kinds.count("attack") == 24
    assert kinds.count("mlm") == 1 and kinds.count("substitutes") == 1 and kinds.count("report") == 1
    order = list(plan.cells)
    for position, cell in enumerate(plan.cells.values()):
        assert all(order.index(dep) < position for dep in cell.deps), cell.name
    alert = plan.cells["attack:stdlib:tiny:prune:alert:s1"]
    assert alert.deps == ("compress:stdlib:tiny:prune", "substitutes:stdlib")
    assert plan.cells["attack:stdlib:tiny2:original:mhm:s0"].deps == ("train:stdlib:tiny2",)
    assert len({cell.directory for cell in plan.cells.values()}) == len(plan.cells)
    assert set(plan.cells["report"].deps) == {c.name for c in plan.cells.values() if c.kind == "attack"}


def test_changing_one_attack_parameter_changes_only_its_cells(tmp_path):
    before = {name: cell.key for name, cell in expand(load(tmp_path)).cells.items()}
    after = {name: cell.key for name, cell in
             expand(load(tmp_path, BASE.replace("mhm_iterations = 5", "mhm_iterations = 7"))).cells.items()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {name for name in before if ":mhm:" in name} | {"report"}
    assert len(changed) == 13
    # A training hyper-parameter changes its model's whole branch and nothing of the other model.
    after = {name: cell.key for name, cell in
             expand(load(tmp_path, BASE.replace("epochs = 2", "epochs = 4"))).cells.items()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {name for name in before if name.split(":")[2:3] == ["tiny"]} | {"report"}
    # Engineering knobs are not part of any key; moving a value from the defaults into the entry is not a change.
    same = BASE.replace("budget = 50", "budget = 50\nbatch_size = 8").replace("[study]", "[study]\nthreads = 1")
    same = same.replace("recipe = \"alert\"", "recipe = \"alert\"\nn = 6")
    assert {n: c.key for n, c in expand(load(tmp_path, same)).cells.items()} == before


def test_select_kinds_and_parts(tmp_path):
    plan = expand(load(tmp_path))
    assert {plan.cells[n].kind for n in select(plan, ["train", "compress"])} == {"train", "compress"}
    parts = [set(select(plan, ["attack"], (k, 3))) for k in (1, 2, 3)]
    assert sum(map(len, parts)) == 24 and set().union(*parts) == {n for n in plan.cells if n.startswith("attack:")}
    with pytest.raises(Exception, match="--only 'atack'"):
        select(plan, ["atack"])
    assert set(KINDS) >= {c.kind for c in plan.cells.values()}


# --------------------------------------------------------------------------- running


def records(folder: Path) -> list[str]:
    return [json.loads(line)["example_id"] for line in (folder / "records.jsonl").read_text().splitlines() if line]


def test_run_skip_finished_and_rerun_only_changed_cells(tmp_path, capsys):
    config = write(tmp_path, BASE)
    runner = FakeRunner()
    assert study(tmp_path, config, runner=runner) == 0
    out = tmp_path / "out"
    plan = expand(load_config(config, fake_options))
    assert all(is_done(out, cell) for cell in plan.cells.values())
    assert len(runner.calls) == len(plan.cells)
    for cell in plan.cells.values():
        if cell.kind == "attack":
            assert records(out / cell.output) == [f"ex{i:03d}" for i in range(6)]
    stdout = capsys.readouterr().out
    assert "attack:stdlib:tiny:int8:alert:s1" in stdout and "ASR " in stdout and "test accuracy 0.750" in stdout
    assert f"report: {out / 'report'}\n  {out / 'report' / 'latex' / 'report.tex'}\n" in stdout
    assert (out / "report" / "report.html").read_text() == "24 logs\n"

    runner = FakeRunner()
    assert study(tmp_path, config, runner=runner) == 0
    assert runner.calls == []

    changed = write(tmp_path, BASE.replace("mhm_iterations = 5", "mhm_iterations = 9"))
    runner = FakeRunner()
    assert study(tmp_path, changed, runner=runner) == 0
    ran = [(call[0], call[2] if call[0] == "attack" else None) for call in runner.calls]
    assert ran.count(("attack", "mhm")) == 12 and len(ran) == 12 + 1


def test_failures_are_one_line_and_block_only_their_dependents(tmp_path, capsys):
    text = BASE.replace("mhm_iterations = 5", "mhm_iterations = 5\nfail = true")
    text = text.replace('base = "scratch:tiny"\nepochs = 3', 'base = "scratch:broken"\nepochs = 3')
    assert study(tmp_path, write(tmp_path, text)) == 1
    captured = capsys.readouterr()
    out = tmp_path / "out"
    lines = [line for line in captured.err.splitlines() if line.startswith(("failed:", "blocked:"))]
    assert "failed: train:stdlib:tiny2: fake training diverged" in lines
    assert "failed: attack:stdlib:tiny:original:mhm:s0: fake attack crashed on ex002" in lines
    assert "blocked: compress:stdlib:tiny2:prune: needs train:stdlib:tiny2, which is failed" in lines
    plan = expand(load_config(write(tmp_path, text), fake_options))
    states = {name: cell_state(out, cell) for name, cell in plan.cells.items()}
    assert states["attack:stdlib:tiny:prune:alert:s0"] == "done"
    assert states["attack:stdlib:tiny:prune:mhm:s0"] == "partial"  # two records, resumable
    assert not any(states[n] == "done" for n in states if ":tiny2:" in n)
    # The report covered the 6 attack cells that finished and says it is partial.
    marker = json.loads((out / "report" / "DONE.json").read_text())
    assert marker["complete"] is False and len(marker["covered"]) == 6
    assert states["report"] != "done"
    assert "failed or blocked" in captured.err


def test_dry_run_shows_states_and_costs(tmp_path, capsys):
    config = write(tmp_path, BASE)
    assert study(tmp_path, config, "--dry-run", "--no-measure") == 0
    text = capsys.readouterr().out
    assert "attack:stdlib:tiny:prune:mhm:s0" in text and "todo" in text and "300" in text  # 6 × 50 queries
    assert "33 cells (2 train, 4 compress, 1 mlm, 1 substitutes, 24 attack, 1 report)" in text
    assert not (tmp_path / "out").exists()
    assert study(tmp_path, config, "--only", "train") == 0
    capsys.readouterr()
    assert study(tmp_path, config, "--dry-run", "--no-measure") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["train:stdlib:tiny"].split()[1] == "done" and lines["compress:stdlib:tiny:prune"].split()[1] == "todo"


SMALL = BASE.replace("seeds = [0, 1]", "seeds = [0]").replace("""
[[models]]
name = "tiny2"
base = "scratch:tiny"
epochs = 3
""", "").replace("""
[[compressions]]
name = "int8"
method = "quantize"
""", "")


def test_resume_after_sigkill_loses_and_repeats_nothing(tmp_path):
    text = SMALL.replace("n = 6", "n = 12").replace("mhm_iterations = 5", "mhm_iterations = 5\ndelay = 0.05")
    config = write(tmp_path, text)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "tests.study_fakes", "--config", str(config), "--out", str(out), "--no-progress"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    plan = expand(load_config(config, fake_options))
    target = plan.cells["attack:stdlib:tiny:prune:mhm:s0"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it in the middle of the second mhm cell
        path = out / target.output / "records.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= 4:
            break
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert cell_state(out, target) == "partial"
    unfinished = [c for c in plan.cells.values() if not is_done(out, c)]
    assert target in unfinished and len(unfinished) < len(plan.cells)
    runner = FakeRunner()
    assert study(tmp_path, config, runner=runner) == 0
    assert any(call[0] == "attack" and "--resume" in call for call in runner.calls)
    for cell in plan.cells.values():
        assert is_done(out, cell), cell.name
        if cell.kind == "attack":
            assert records(out / cell.output) == [f"ex{i:03d}" for i in range(12)], cell.name


def test_process_executor(tmp_path):
    config = write(tmp_path, SMALL)
    assert study(tmp_path, config, "--executor", "process", "--jobs", "2") == 0
    plan = expand(load_config(config, fake_options))
    out = tmp_path / "out"
    assert all(is_done(out, cell) for cell in plan.cells.values())
    log = (out / plan.cells["attack:stdlib:tiny:prune:alert:s0"].directory / "log.txt").read_text()
    assert "$ engine attack --attack alert" in log and "--substitutes" in log


def test_ray_executor_on_a_local_instance(tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'code-robustness-toolkit[ray]')")
    config = load_config(write(tmp_path, SMALL), fake_options)
    plan = expand(config)
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        for storage in ("copy", "shared"):
            root = out / storage
            executor = make_executor("ray", root, jobs=2, runner=FakeRunner(), ray_storage=storage)
            results = run_plan(plan, root, executor, progress=False, options=fake_options)
            assert {r.state for r in results.values()} == {"ok"}, {n: r.reason for n, r in results.items()}
            for cell in plan.cells.values():
                assert is_done(root, cell)
                if cell.kind == "attack":
                    assert records(root / cell.output) == [f"ex{i:03d}" for i in range(6)]
    finally:
        ray.shutdown()


def test_report_and_summary_through_parse_config_defaults(tmp_path):
    raw = {"study": {"name": "x", "report": []}, "datasets": [{"builtin": "stdlib-attribution"}],
           "models": [{"name": "m", "base": "scratch:tiny"}], "attacks": [{"recipe": "wir-random", "n": 2, "budget": 3}]}
    plan = expand(parse_config(raw, tmp_path / "x.toml", fake_options))
    assert [c.kind for c in plan.cells.values()] == ["train", "attack"]  # no substitutes needed, no report asked


def test_docs_describe_every_config_key():
    from engine.study.config import SECTIONS

    text = (ROOT / "docs" / "study.md").read_text(encoding="utf-8")
    for section in SECTIONS.values():
        heading = f"### `[[{section.name}]]`" if section.array else f"### `[{section.name}]`"
        assert heading in text, heading
        for key in section.keys:
            assert f"`{key.name}`" in text, (section.name, key.name)


@pytest.mark.parametrize("preset", ["quickstart", "paper"])
def test_presets_validate_and_dry_run_offline(preset, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CRT_CACHE_DIR", str(tmp_path))  # the plan memoises the distilled student's shape there
    args = build_parser().parse_args(["study", "--preset", preset, "--out", "/nonexistent/study", "--dry-run",
                                      "--no-measure", "--no-progress"])
    assert run_study(args) == 0
    text = capsys.readouterr().out
    if preset == "quickstart":
        assert "23 cells (1 train, 3 compress, 1 mlm, 1 substitutes, 16 attack, 1 report)" in text
    else:
        assert "184 cells (9 train, 27 compress, 3 substitutes, 144 attack, 1 report)" in text
        assert "attack:gcj:graphcodebert:distill:coda:s0" in text


def test_cli_runner_reports_one_line_reasons(tmp_path):
    import io

    from engine.study.stages import CliRunner, StageCall, StageFailed, run_subprocess

    runner, log = CliRunner(), io.StringIO()
    with pytest.raises(StageFailed, match=r"^engine train refused its arguments: .*--bogus"):
        runner.run(StageCall("engine", ()), ["train", "--bogus", "--out", str(tmp_path)], log)
    with pytest.raises(StageFailed, match=r"^give either --dataset NAME \(builtin\) or --data-format"):
        runner.run(StageCall("engine", ()), ["data", "show", "--dataset", "stdlib-attribution",
                                              "--data-format", "jsonl"], log)
    with pytest.raises(StageFailed, match=r"exited with code 1: boom$"):
        run_subprocess([sys.executable, "-c", "import sys; print('out'); sys.exit('boom')"], log)
    assert "out\n" in log.getvalue()


def test_finished_model_folders_are_not_rebuilt_without_a_marker(tmp_path):
    from engine.study.stages import StageCall, prepare_output

    model = tmp_path / "model"
    model.mkdir()
    assert prepare_output(StageCall("engine", (), complete_if="manifest"), model)
    (model / "manifest.json").write_text(json.dumps({"base": "distill", "compression": {"method": "none"}}))
    assert not prepare_output(StageCall("engine", (), complete_if="manifest"), model)
    # A distilled student with its manifest but not yet measured: engine compress must run again.
    assert prepare_output(StageCall("engine", (), complete_if="compressed"), model)
    (model / "manifest.json").write_text(json.dumps({"compression": {"method": "distill"}}))
    assert not prepare_output(StageCall("engine", (), complete_if="compressed"), model)
