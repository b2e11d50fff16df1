"""The scheduler: run a plan's cells in dependency order on an executor, with progress and a summary.

A cell starts when every cell it depends on is done; a failed cell prints one line and blocks
only the cells downstream of it, the others go on. The report cell waits until every attack cell
has finished one way or another and reports on the ones that succeeded (its marker then says
it is partial, so the next run reports again). Done-markers are written here, by the driver,
after a cell's outcome arrives.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.study.executor import CellTask, Outcome
from engine.study.plan import Cell, Plan, config_key, is_done, write_marker
from engine.study.stages import build_calls, report_call

FINISHED = ("done", "ok")
RECORDS = "records.jsonl"


@dataclass
class CellResult:
    cell: Cell
    state: str  # done (before this run), ok, failed, blocked, skipped (not selected)
    seconds: float | None = None
    reason: str | None = None
    cpu_seconds: float | None = None


def run_plan(plan: Plan, root: Path, executor, *, selected: list[str] | None = None, progress: bool = True,
             weights: dict[str, float] | None = None, stream: TextIO | None = None,
             options=None) -> dict[str, CellResult]:
    """Run the plan's unfinished cells (those in `selected`, default all); returns every cell's result."""
    from tqdm.auto import tqdm

    stream = stream or sys.stderr
    chosen = set(plan.cells if selected is None else selected)
    results: dict[str, CellResult] = {}
    for name, cell in plan.cells.items():
        if is_done(root, cell):
            results[name] = CellResult(cell, "done")
        elif name in chosen:
            results[name] = CellResult(cell, "pending")
        else:
            results[name] = CellResult(cell, "skipped", reason="not selected (--only/--part) and not done")
    pending = [name for name, result in results.items() if result.state == "pending"]
    weights = weights or {}
    weight = {name: max(1.0, float(weights.get(name, 1.0))) for name in pending}
    bar = tqdm(total=sum(weight.values()) or 1, desc="study", disable=None if progress else True, file=stream,
               dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]")
    counts: Counter[str] = Counter()

    def postfix() -> None:
        bar.set_postfix_str(f"{counts['ok'] + counts['failed'] + counts['blocked']}/{len(pending)} cells"
                            + (f", {counts['failed']} failed" if counts["failed"] else "")
                            + (f", {counts['blocked']} blocked" if counts["blocked"] else ""))

    def finish(name: str, state: str, seconds: float | None = None, reason: str | None = None) -> None:
        results[name].state, results[name].seconds, results[name].reason = state, seconds, reason
        counts[state] += 1
        bar.update(weight[name])
        if state != "ok":
            bar.write(f"{state}: {name}: {reason}", file=stream)
        postfix()

    running: dict[str, float] = {}
    probes = CellProbes(root, progress and executor.capture == "all", stream)
    postfix()
    try:
        while True:
            for name in [n for n in pending if results[n].state == "pending"]:
                cell = plan.cells[name]
                states = [results[d].state for d in cell.deps]
                if cell.kind == "report":
                    if any(state in ("pending", "running") for state in states):
                        continue
                    covered = [d for d in cell.deps if results[d].state in FINISHED]
                    if not covered:
                        finish(name, "blocked", reason="no attack cell finished")
                        continue
                    if len(running) < executor.slots:
                        calls = [report_call(cell, plan, [f"{{root}}/{plan.cells[d].output}" for d in covered])]
                        _submit(executor, cell, calls, root, running, inputs=[plan.cells[d].directory for d in covered])
                        results[name].state = "running"
                    continue
                bad = [d for d in cell.deps if results[d].state in ("failed", "blocked", "skipped")]
                if bad:
                    finish(name, "blocked", reason=f"needs {bad[0]}, which is {results[bad[0]].state}")
                elif all(state in FINISHED for state in states) and len(running) < executor.slots:
                    calls = build_calls(cell, plan, progress=progress and executor.capture != "all",
                                        **({"options": options} if options else {}))
                    _submit(executor, cell, calls, root, running, inputs=[plan.cells[d].directory for d in cell.deps])
                    results[name].state = "running"
                    probes.start(cell)
            if not running:
                stuck = [n for n in pending if results[n].state == "pending"]
                for name in stuck:  # cannot happen with a well-formed plan; never loop forever
                    finish(name, "blocked", reason="its dependencies never finished")
                break
            for outcome in executor.wait(timeout=1.0):
                running.pop(outcome.name, None)
                probes.stop(outcome.name)
                cell = plan.cells[outcome.name]
                results[outcome.name].cpu_seconds = outcome.cpu_seconds
                if outcome.ok:
                    _mark(root, cell, plan, results, outcome)
                    finish(outcome.name, "ok", outcome.seconds)
                else:
                    finish(outcome.name, "failed", outcome.seconds, outcome.reason)
            probes.refresh(plan)
    except BaseException:  # Ctrl-C or a bug: stop the workers; finished cells keep their markers
        probes.close()
        bar.close()
        executor.close(abort=True)
        raise
    probes.close()
    bar.close()
    executor.close()
    return results


def _submit(executor, cell: Cell, calls, root: Path, running: dict[str, float], inputs: list[str]) -> None:
    executor.submit(CellTask(cell, calls, str(root), executor.capture, inputs))
    running[cell.name] = time.perf_counter()


def _mark(root: Path, cell: Cell, plan: Plan, results: dict[str, CellResult], outcome: Outcome) -> None:
    if cell.kind != "report":
        write_marker(root, cell, outcome.seconds, ran=outcome.ran, cpu_seconds=_round(outcome.cpu_seconds))
        return
    covered = sorted(d for d in cell.deps if results[d].state in FINISHED)
    complete = len(covered) == len(cell.deps)
    key = cell.key if complete else "partial-" + config_key("report", {"covered": covered}, [])
    write_marker(root, Cell(cell.kind, cell.name, key, cell.config, cell.deps), outcome.seconds,
                 covered=covered, complete=complete, cpu_seconds=_round(outcome.cpu_seconds))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class CellProbes:
    """Progress bars for attack cells running in other processes, read from their records files."""

    def __init__(self, root: Path, enabled: bool, stream: TextIO) -> None:
        self.root, self.enabled, self.stream = root, enabled, stream
        self.bars: dict[str, Any] = {}

    def start(self, cell: Cell) -> None:
        if self.enabled and cell.kind == "attack":
            from tqdm.auto import tqdm

            self.bars[cell.name] = tqdm(total=cell.config["n"], desc=cell.name, unit="ex", leave=False,
                                        file=self.stream, dynamic_ncols=True, disable=None)

    def refresh(self, plan: Plan) -> None:
        for name, bar in self.bars.items():
            count = count_lines(self.root / plan.cells[name].output / RECORDS)
            if count > bar.n:
                bar.update(count - bar.n)

    def stop(self, name: str) -> None:
        bar = self.bars.pop(name, None)
        if bar is not None:
            bar.close()

    def close(self) -> None:
        for name in list(self.bars):
            self.stop(name)


def count_lines(path: Path) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


# --------------------------------------------------------------------------- the summary


def headline(root: Path, cell: Cell) -> str:
    """A cell's result in a few words: accuracy of a model, success rate of an attack."""
    output = root / cell.output
    if cell.kind in ("train", "compress"):
        manifest = _read_json(output / "manifest.json")
        metrics = (manifest or {}).get("metrics") or {}
        parts = []
        if isinstance(metrics.get("accuracy"), (int, float)):
            parts.append(f"test accuracy {metrics['accuracy']:.3f}")
        if isinstance((manifest or {}).get("size_mb"), (int, float)):
            parts.append(f"{manifest['size_mb']:.1f} MB")
        return ", ".join(parts)
    if cell.kind == "augment":
        programs = output / "train.jsonl"
        if programs.is_file():
            with programs.open("rb") as handle:
                return f"{sum(1 for _ in handle):,} training programs"
        return ""
    if cell.kind == "attack":
        statuses = record_statuses(output / RECORDS)
        attacked = statuses["success"] + statuses["failed"]
        if not statuses:
            return ""
        text = f"ASR {statuses['success']}/{attacked}"
        if attacked:
            text += f" = {100 * statuses['success'] / attacked:.0f}%"
        skipped = sum(v for k, v in statuses.items() if k.startswith("skipped"))
        if skipped:
            text += f", {skipped} skipped"
        if statuses["error"]:
            text += f", {statuses['error']} errors"
        return text
    return ""


def record_statuses(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        counts[json.loads(line).get("status", "?")] += 1
                    except ValueError:
                        counts["unreadable"] += 1
    except OSError:
        pass
    return counts


def summary_table(root: Path, results: dict[str, CellResult]) -> str:
    rows = [("cell", "state", "seconds", "CPU s", "result")]
    for result in results.values():
        seconds = f"{result.seconds:.1f}" if result.seconds is not None else ""
        cpu = f"{result.cpu_seconds:.1f}" if result.cpu_seconds is not None else ""
        if result.state in ("failed", "blocked", "skipped"):
            text = result.reason or ""
            text = text if len(text) <= 160 else text[:157] + "..."
        else:
            text = headline(root, result.cell)
        rows.append((result.cell.name, result.state, seconds, cpu, text))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]:>{widths[3]}}  {row[4]}".rstrip()
             for row in rows]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    return "\n".join(lines)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
