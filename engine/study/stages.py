"""The command line each cell runs, and the runner that executes it.

A cell is one or more `StageCall`s: a program (`engine` or `analysis`) and its arguments, in
which paths inside the study are written as `{root}/…` so the same call runs wherever the
study's folder is (another machine, a Ray worker's scratch folder). The study never calls a
stage's Python API: `engine` stages run in-process through the CLI's own parser and handlers
(no interpreter start-up per cell), `analysis` always in a subprocess (`engine` must not import
it). A `StageRunner` can be swapped, which is how the tests drive the orchestration with fake
stages.
"""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from engine.errors import USER_ERRORS, UserError
from engine.processes import die_with_parent
from engine.study.config import cli_options
from engine.study.plan import Cell, Plan

ROOT = "{root}"


@dataclass(frozen=True)
class StageCall:
    program: str  # engine | analysis
    argv: tuple[str, ...]  # may hold {root}
    resume_flag: str | None = None  # added when the output already holds partial results
    complete_if: str | None = None  # `manifest` or `compressed`: how to tell the output is already finished
    fresh: bool = False  # delete partial output first (stages that cannot resume)

    def resolved(self, root: Path, output: Path) -> list[str]:
        argv = [word.replace(ROOT, str(root)) for word in self.argv]
        if self.resume_flag and _has_content(output):
            argv.append(self.resume_flag)
        return argv


class StageFailed(Exception):
    """A stage that did not succeed; the message is the one-line reason shown in the summary."""


class StageRunner(Protocol):
    def run(self, call: StageCall, argv: list[str], log: TextIO) -> None: ...


def _has_content(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


# --------------------------------------------------------------------------- building calls


def build_calls(cell: Cell, plan: Plan, *, progress: bool,
                options: Callable[[str], dict[str, Any] | None] = cli_options) -> list[StageCall]:
    """The stage calls of `cell` (dependencies' outputs located through `plan`)."""
    config, settings = cell.config, cell.settings

    def out_of(kind: str) -> str:
        (dep,) = [plan.cells[d] for d in cell.deps if plan.cells[d].kind == kind] or [None]
        if dep is None:
            raise UserError(f"cell {cell.name} has no {kind} dependency")
        return f"{ROOT}/{dep.output}"

    def runtime(command: str) -> list[str]:
        known = options(command) or {}
        words = []
        if "device" in known and settings.get("device"):
            words += ["--device", str(settings["device"])]
        if "threads" in known and settings.get("threads"):
            words += ["--threads", str(settings["threads"])]
        if "no_progress" in known and not progress:
            words.append("--no-progress")
        return words

    def substitutes() -> list[str]:
        """Natural substitutes of an attack or augment cell: the dataset's own, a substitutes cell's, or none."""
        if config["substitutes"] == "dataset":
            return ["--substitutes", "dataset"]
        return ["--substitutes", out_of("substitutes")] if config["substitutes"] else []

    out = f"{ROOT}/{cell.output}"
    if cell.kind == "train":
        argv = ["train", *dataset_argv(config["dataset"]), "--base", config["base"], "--out", out,
                *options_argv(config["options"]), *runtime("train")]
        return [StageCall("engine", tuple(argv), complete_if="manifest")]
    if cell.kind == "compress":
        parent = out_of("compress") if config.get("of") else out_of("train")  # `of`: another variant's output
        argv = ["compress", "--method", config["method"], "--model", parent, "--out", out,
                *dataset_argv(config["dataset"]), *options_argv(config["options"]), *runtime("compress")]
        if config.get("adversarial"):  # the programs its [[augment]] entry wrote
            argv += ["--adversarial", out_of("augment")]
        return [StageCall("engine", tuple(argv), complete_if="compressed")]
    if cell.kind == "augment":
        victim = out_of("compress") if config["of"] != "original" else out_of("train")
        argv = ["augment", "--attack", config["attack"], "--model", victim, *dataset_argv(config["dataset"]),
                "--split", "train", "--out", out]
        if config.get("n"):
            argv += ["--n", str(config["n"])]
        argv += [*substitutes(), *options_argv(config["options"]), *runtime("augment")]
        return [StageCall("engine", tuple(argv), resume_flag="--resume")]
    if cell.kind == "mlm":
        argv = ["pretrain-mlm", *dataset_argv(config["dataset"]), "--out", out, *options_argv(config["options"]),
                *runtime("pretrain-mlm")]
        return [StageCall("engine", tuple(argv), complete_if="manifest")]
    if cell.kind == "substitutes":
        mlm = out_of("mlm") if any(plan.cells[d].kind == "mlm" for d in cell.deps) else config["mlm"]
        argv = ["substitutes", "--mlm", mlm, *dataset_argv(config["dataset"]), "--out", out,
                "--split", ",".join(config["splits"]), *options_argv(config["options"]), *runtime("substitutes")]
        for key in ("n", "sample"):  # set only for sampled studies
            if config.get(key):
                argv += [f"--{key}", str(config[key])]
        return [StageCall("engine", tuple(argv))]  # resumes by itself: programs already written are skipped
    if cell.kind == "attack":
        victim = out_of("compress") if config["variant"] != "original" else out_of("train")
        argv = ["attack", "--attack", config["recipe"], "--model", victim, *dataset_argv(config["dataset"]),
                "--n", str(config["n"]), "--budget", str(config["budget"]), "--seed", str(config["seed"]),
                "--out", out]
        if config["attack"] != config["recipe"]:  # records name the entry: two entries of a recipe stay apart
            argv += ["--attack-name", config["attack"]]
        if config.get("transfer"):  # replay the source entry's programs found on the original
            source = [plan.cells[d] for d in cell.deps if plan.cells[d].kind == "attack"]
            argv += ["--transfer-from", f"{ROOT}/{source[0].output}"]
        elif config.get("sample"):
            argv += ["--sample", str(config["sample"])]
        if settings.get("batch_size"):
            argv += ["--batch-size", str(settings["batch_size"])]
        argv += [*substitutes(), *options_argv(config["options"]), *runtime("attack")]
        return [StageCall("engine", tuple(argv), resume_flag="--resume")]
    if cell.kind == "report":
        return [report_call(cell, plan)]
    raise AssertionError(cell.kind)


def report_call(cell: Cell, plan: Plan, logs: list[str] | None = None) -> StageCall:
    """`python -m analysis report` over the attack cells' logs (all of them, or `logs`), every format at once."""
    if logs is None:
        logs = [f"{ROOT}/{plan.cells[d].output}" for d in cell.deps]
    argv = ["report", "--logs", *logs, "--format", ",".join(cell.meta["formats"]), "--out", f"{ROOT}/{cell.output}"]
    for key, text in cell.config.get("labels", {}).items():  # the study's [labels]
        argv += ["--label", f"{key}={text}"]
    return StageCall("analysis", tuple(argv))


def dataset_argv(data: dict[str, Any]) -> list[str]:
    """The shared dataset options of every stage for a hashed dataset spec."""
    if data.get("builtin"):
        argv = ["--dataset", data["builtin"]]
        if data.get("size"):
            argv += ["--dataset-size", str(data["size"])]
    else:
        argv = ["--data-format", data["loader"], "--data", expand_path(data["path"])]
        for key in ("columns", "language", "task"):
            if data.get(key):
                argv += [f"--{key}", data[key]]
        if data.get("skip_bad"):
            argv.append("--skip-bad")
    return argv + ["--data-seed", str(data.get("seed", 0))]


def expand_path(text: str) -> str:
    """`~` and `$VARS` expanded, relative paths made absolute against the current directory."""
    expanded = os.path.expanduser(os.path.expandvars(text))
    if "$" in expanded:
        raise UserError(f"dataset path {text!r}: an environment variable in it is not set")
    return os.path.abspath(expanded)


def options_argv(options: dict[str, Any]) -> list[str]:
    """Pass-through options (validated against the command) as words: key → --key, true → flag."""
    words: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words += [flag] if value else []
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return words


# --------------------------------------------------------------------------- running calls


class CliRunner:
    """Runs `engine` calls in this process through the real CLI, `analysis` calls as subprocesses."""

    def run(self, call: StageCall, argv: list[str], log: TextIO) -> None:
        if call.program == "engine":
            self._engine(argv, log)
        elif call.program == "analysis":
            run_subprocess([sys.executable, "-m", "analysis", *argv], log)
        else:
            raise StageFailed(f"unknown program {call.program!r}")

    def _engine(self, argv: list[str], log: TextIO) -> None:
        from engine.cli import build_parser

        parser = build_parser()
        captured = io.StringIO()
        try:
            with contextlib.redirect_stderr(captured):
                args = parser.parse_args(argv)
        except SystemExit:
            log.write(captured.getvalue())
            lines = [line for line in captured.getvalue().splitlines() if line.strip()]
            raise StageFailed(f"engine {argv[0]} refused its arguments: {lines[-1] if lines else 'usage error'}") from None
        try:
            with contextlib.redirect_stdout(log):
                code = int(args.run(args) or 0)
        except USER_ERRORS as err:
            log.write(f"error: {err}\n")
            raise StageFailed(first_line(str(err))) from None
        except Exception as err:  # a bug in a stage: keep the traceback in the cell's log
            log.write(traceback.format_exc())
            raise StageFailed(f"{type(err).__name__}: {first_line(str(err))} (traceback in the cell's log)") from None
        if code != 0:
            raise StageFailed(f"engine {argv[0]} exited with code {code}")


def run_subprocess(command: list[str], log: TextIO) -> None:
    """Run a command with its output appended to `log`; a failure's reason is its last stderr line."""
    log.flush()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"},
                          preexec_fn=functools.partial(die_with_parent, os.getpid()))  # not outliving a killed driver
    log.write(done.stdout)
    log.write(done.stderr)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise StageFailed(f"{Path(command[0]).name} {' '.join(command[1:3])} exited with code {done.returncode}"
                          + (f": {lines[-1].strip()}" if lines else ""))


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def prepare_output(call: StageCall, output: Path) -> bool:
    """Before a call: False when the output is already complete (skip the call); clears it for fresh calls."""
    if call.complete_if and output_complete(call.complete_if, output):
        return False
    if call.fresh and output.exists():
        shutil.rmtree(output) if output.is_dir() else output.unlink()
    return True


def output_complete(check: str, output: Path) -> bool:
    """A model folder whose stage finished (its marker may not have been written before a kill).

    `manifest`: the manifest exists (written last, atomically). `compressed`: the manifest names a
    compression method; a distilled student gets a manifest before its measurement, which is
    not the end of `engine compress`.
    """
    try:
        manifest = json.loads((output / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if check == "compressed":
        return ((manifest.get("compression") or {}).get("method") or "none") != "none"
    return True
