"""`engine study`: a whole study (train → compress → substitutes → attack → report) in one command.

    engine study --preset quickstart --out runs/quickstart
    engine study --config my-study.toml --out runs/mine --dry-run
    engine study --preset paper --out runs/paper --executor ray --ray-address auto

The config format, cell keys, resuming, executors and scale-out: docs/study.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from engine.errors import UserError

PRESETS = ("quickstart", "paper", "robust", "robust-minilm")


def studies_dir() -> Path:
    """The shipped presets: package data, so a non-editable install has them too."""
    return Path(__file__).resolve().parents[1] / "study" / "presets"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "study",
        help="run a whole study from a TOML config: train, compress, substitutes, attack, report",
        description="Expand a study config (datasets × models × compressions × attacks × seeds) into cells, "
        "skip the cells already done, resume half-finished attacks, run the rest on the chosen executor, "
        "print a summary table and build the report with `analysis report`. Running the same command "
        "again continues where it stopped. See docs/study.md.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="study config (TOML)")
    source.add_argument("--preset", choices=PRESETS,
                        help="a shipped config (engine/study/presets/): quickstart (offline, minutes on a CPU), paper "
                        "(CodeBERT, GraphCodeBERT, UniXcoder on Devign, BigCloneBench, GCJ: GPUs and model access) or "
                        "robust (standard against robust compressed variants on stdlib-attribution and gcjpy, offline) or robust-minilm "
                        "(the same on gcjpy with a pre-trained MiniLM victim, offline)")
    p.add_argument("--out", help="study folder (default runs/STUDY-NAME)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (cells, which are done, expected cost and bound, wall time on K workers) and "
                   "run nothing; never contacts a network")
    p.add_argument("--no-measure", action="store_true",
                   help="--dry-run: price forward passes by the documented per-core table instead of measuring shapes "
                   "this machine has not measured yet (measurements are cached per machine)")
    p.add_argument("--workers", type=int, metavar="K", default=None,
                   help="--dry-run: also give the wall time with K cells at once (1, 2, 4, 8 and 16 are always shown)")
    p.add_argument("--examples-per-cell", type=int, metavar="N", default=None,
                   help="attack a label-stratified sample of N examples in every attack cell (the whole grid at a size "
                   "you can afford; overrides [study] examples_per_cell)")
    p.add_argument("--pilot", type=int, metavar="N", default=None,
                   help="run N examples of every attack cell (training the study's victims first where they are not "
                   "done), then print the study's plan priced by what the pilot measured")
    p.add_argument("--pilot-epochs", type=int, metavar="E", default=None,
                   help="--pilot: train victims that are not done yet for at most E epochs, as pilot-only cells "
                   "(cheaper, less faithful: see docs/study.md)")
    p.add_argument("--executor", choices=("local", "process", "ray"), default=None,
                   help="local: one cell at a time in this process; process: a pool of --jobs worker processes; "
                   "ray: each cell a Ray task (default: the config's [study] executor, else local)")
    p.add_argument("--jobs", type=int, default=None,
                   help="cells at once (default: the config's [study] jobs, else process: the number of cores, "
                   "ray: the cluster's CPUs)")
    p.add_argument("--ray-address", metavar="ADDRESS",
                   help="join an existing Ray cluster (e.g. auto, or ray://HOST:10001); default: start a local one")
    p.add_argument("--ray-storage", choices=("shared", "copy"), default=None,
                   help="shared: every node sees --out (default without --ray-address); copy: ship cell folders "
                   "through Ray's object store (default with --ray-address)")
    p.add_argument("--only", metavar="KINDS",
                   help="run only these kinds of cell, comma-separated: "
                   "train,compress,mlm,substitutes,augment,attack,report")
    p.add_argument("--part", metavar="K/N", help="run only the K-th of N disjoint shares of the attack cells "
                   "(several machines, one config; merge by copying their cells/ folders)")
    p.add_argument("--no-report", action="store_true", help="skip the final analysis report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_study)


def config_path(args: argparse.Namespace) -> Path:
    if args.preset:
        return studies_dir() / f"{args.preset}.toml"
    path = Path(args.config)
    if not path.is_file():
        raise UserError(f"--config {path}: no such file")
    return path


def run_study(args: argparse.Namespace, runner=None, options=None) -> int:
    """The command's handler; `runner` and `options` replace the real stages (tests)."""
    import dataclasses
    import time

    from engine.study.config import cli_options, load_config
    from engine.study.plan import expand, parse_part, select

    started = time.perf_counter()
    path = config_path(args)
    config = load_config(path, options or cli_options)
    for flag in ("examples_per_cell", "pilot", "pilot_epochs", "workers"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.examples_per_cell is not None:
        config = dataclasses.replace(config, examples_per_cell=args.examples_per_cell)
    root = Path(args.out or Path("runs") / config.name).resolve()
    plan = expand(config)
    if args.no_report:
        plan.cells = {name: cell for name, cell in plan.cells.items() if cell.kind != "report"}
    only = [kind.strip() for kind in args.only.split(",")] if args.only else None
    part = parse_part(args.part)

    if args.pilot_epochs and not args.pilot:
        raise UserError("--pilot-epochs goes with --pilot N")
    if args.pilot:
        from engine.study.pilot import pilot_plan

        study_plan, plan = plan, pilot_plan(config, plan, root, args.pilot, args.pilot_epochs)
        title = f"pilot ({args.pilot} examples per attack cell)"
    selected = select(plan, only, part)
    if args.dry_run:
        print(describe_plan(plan, root, config, set(selected), args, started,
                            title=title if args.pilot else None))
        return 0

    code = run_cells(plan, root, config, path, selected, args, runner, options, write_plan=not args.pilot)
    if args.pilot:
        from engine.study.pilot import summarize

        from engine.study.throughput import SpeedBook

        device = SpeedBook(device=config.device, threads=config.threads)  # resolves `auto` as the stages did
        shapes = make_estimator(plan, root, config, args, measure=False)
        summary = summarize(plan, root, shapes, device.machine, device.device.split(" ")[0])
        device.save()
        estimator = make_estimator(study_plan, root, config, args)
        print(f"\npilot: {len(summary['attacks'])} attack cells measured, written to {root / 'pilot.json'}; "
              "the study's plan priced by them:\n")
        print(describe_plan(study_plan, root, config, set(select(study_plan, only, part)), args,
                            time.perf_counter(), estimator=estimator))
    return code


def make_estimator(plan, root: Path, config, args: argparse.Namespace, measure: bool | None = None):
    from engine.study.estimate import Estimator
    from engine.study.pilot import PilotBook
    from engine.study.throughput import SpeedBook

    measure = (not args.no_measure) if measure is None else measure
    speeds = SpeedBook(device=config.device, threads=config.threads, measure=measure)
    pilots = PilotBook(root, speeds.machine, speeds.device.split(" ")[0])
    return Estimator(plan, root, speeds, pilots=pilots or None, count_builtins=measure)


def describe_plan(plan, root: Path, config, selected: set[str], args: argparse.Namespace, started: float,
                  title: str | None = None, estimator=None) -> str:
    """The plan as text (engine.study.plan_text), ending with how long planning took."""
    import time

    from engine.study.plan_text import render

    estimator = estimator or make_estimator(plan, root, config, args)
    text = render(plan, root, estimator, selected, workers=args.workers, gpus=config.gpus, title=title)
    estimator.speeds.save()
    return text + f"\nplanned in {time.perf_counter() - started:.1f} s"


def run_cells(plan, root: Path, config, path: Path, selected: list[str], args: argparse.Namespace, runner, options,
              write_plan: bool = True) -> int:
    """Run the selected cells on the chosen executor; print the summary and the report's files."""
    from engine.study.executor import make_executor
    from engine.study.run import run_plan, summary_table

    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, root / "study.toml")
    if write_plan:
        (root / "plan.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")
    estimates = make_estimator(plan, root, config, args, measure=False).all()
    executor_name = args.executor or config.executor
    jobs = args.jobs or (config.jobs if executor_name != "local" else None)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if executor_name == "process" else 1
    executor = make_executor(executor_name, root, jobs=jobs, runner=runner, ray_address=args.ray_address,
                             ray_storage=args.ray_storage)
    print(f"study {config.name}: {len(plan.cells)} cells in {root}, executor {executor_name}"
          + (f" ({jobs} at once)" if executor_name != "local" else ""), file=sys.stderr)
    results = run_plan(plan, root, executor, selected=selected, progress=not args.no_progress,
                       weights={name: e.seconds for name, e in estimates.items()}, options=options)
    print(summary_table(root, results))
    report = next((r for r in results.values() if r.cell.kind == "report"), None)
    if report is not None and report.state in ("ok", "done"):
        print(f"report: {root / report.cell.output}")
        for path in report_files(root / report.cell.output, report.cell.meta["formats"]):
            print(f"  {path}")
    failed = [r for r in results.values() if r.state in ("failed", "blocked")]
    if failed:
        print(f"{len(failed)} cell(s) failed or blocked; logs in each cell's log.txt; run the same command again "
              "to retry them (finished cells are kept)", file=sys.stderr)
        return 1
    return 0


def report_files(folder: Path, formats: list[str]) -> list[Path]:
    """The report's entry points that exist: latex/report.tex, report.html, the CSV and Markdown
    folders, and latex/report.pdf (compiled by `analysis report` when pdflatex is installed)."""
    candidates = {"latex": folder / "latex" / "report.tex", "html": folder / "report.html",
                  "csv": folder / "csv", "md": folder / "md"}
    found = [candidates[fmt] for fmt in formats if fmt in candidates and candidates[fmt].exists()]
    pdf = folder / "latex" / "report.pdf"
    return found + ([pdf] if "latex" in formats and pdf.exists() else [])
