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
from engine.study.plan import KINDS

PRESETS = ("quickstart", "paper")


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
                        help="a shipped config (engine/study/presets/): quickstart (offline, minutes on a CPU) or paper "
                        "(CodeBERT, GraphCodeBERT, UniXcoder on Devign, BigCloneBench, GCJ: GPUs and model access)")
    p.add_argument("--out", help="study folder (default runs/STUDY-NAME)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan (cells, which are done, estimated cost) and run nothing")
    p.add_argument("--no-measure", action="store_true",
                   help="--dry-run: use the documented throughput table instead of measuring models")
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
                   help="run only these kinds of cell, comma-separated: train,compress,mlm,substitutes,attack,report")
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
    from engine.study.config import cli_options, load_config
    from engine.study.estimate import Estimator, format_seconds
    from engine.study.executor import make_executor
    from engine.study.plan import cell_state, expand, parse_part, select
    from engine.study.run import run_plan, summary_table

    path = config_path(args)
    config = load_config(path, options or cli_options)
    root = Path(args.out or Path("runs") / config.name).resolve()
    plan = expand(config)
    if args.no_report:
        plan.cells = {name: cell for name, cell in plan.cells.items() if cell.kind != "report"}
    only = [kind.strip() for kind in args.only.split(",")] if args.only else None
    selected = select(plan, only, parse_part(args.part))
    progress = not args.no_progress

    if args.dry_run:
        estimator = Estimator(plan, root, device=config.device, measure=not args.no_measure, threads=config.threads)
        print(plan_table(plan, root, estimator, set(selected), cell_state, format_seconds))
        return 0

    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, root / "study.toml")
    (root / "plan.json").write_text(json.dumps(plan.to_json(), indent=2) + "\n", encoding="utf-8")
    estimates = Estimator(plan, root, device=config.device, measure=False).all()
    executor_name = args.executor or config.executor
    jobs = args.jobs or (config.jobs if executor_name != "local" else None)
    if jobs is None:
        jobs = (os.cpu_count() or 1) if executor_name == "process" else 1
    executor = make_executor(executor_name, root, jobs=jobs, runner=runner, ray_address=args.ray_address,
                             ray_storage=args.ray_storage)
    print(f"study {config.name}: {len(plan.cells)} cells in {root}, executor {executor_name}"
          + (f" ({jobs} at once)" if executor_name != "local" else ""), file=sys.stderr)
    results = run_plan(plan, root, executor, selected=selected, progress=progress,
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


def plan_table(plan, root: Path, estimator, selected: set[str], cell_state, format_seconds) -> str:
    rows = [("cell", "state", "queries ≤", "estimate", "basis")]
    total_seconds, total_queries = 0.0, 0
    for name, cell in plan.cells.items():
        state = cell_state(root, cell)
        state = {"partial": "resumes"}.get(state, state)
        if name not in selected and state != "done":
            state = "not selected"
        if state == "done":
            rows.append((name, state, "", "", ""))
            continue
        estimate = estimator.cell(cell)
        if name in selected:
            total_seconds += estimate.seconds
            total_queries += estimate.queries or 0
        rows.append((name, state, f"{estimate.queries:,}" if estimate.queries else "",
                     format_seconds(estimate.seconds), estimate.basis))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}  {r[4]}".rstrip()
             for r in rows]
    lines.insert(1, "-" * max(len(line) for line in lines))
    kinds = [cell.kind for cell in plan.cells.values()]
    counts = {kind: kinds.count(kind) for kind in KINDS if kind in kinds}
    lines.append("")
    lines.append(f"{len(plan.cells)} cells ({', '.join(f'{n} {k}' for k, n in counts.items())}); "
                 f"to run: {total_queries:,} attack queries at most, about {format_seconds(total_seconds)} "
                 "(upper bound: full-length inputs, every example using its whole budget; see docs/study.md)")
    return "\n".join(lines)


def report_files(folder: Path, formats: list[str]) -> list[Path]:
    """The report's entry points that exist: latex/report.tex, report.html, the CSV and Markdown
    folders, and latex/report.pdf (compiled by `analysis report` when pdflatex is installed)."""
    candidates = {"latex": folder / "latex" / "report.tex", "html": folder / "report.html",
                  "csv": folder / "csv", "md": folder / "md"}
    found = [candidates[fmt] for fmt in formats if fmt in candidates and candidates[fmt].exists()]
    pdf = folder / "latex" / "report.pdf"
    return found + ([pdf] if "latex" in formats and pdf.exists() else [])
