"""The plan as text: every cell with its state and costs, per-stage totals, wall time on K workers, and
which figures were measured, which came from pilots and which are priors."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from engine.study.estimate import Estimate, Estimator, format_seconds, wall_time
from engine.study.plan import KINDS, Plan, cell_state
from engine.study.priors import priors as recipe_priors
from engine.study.throughput import load_average

WORKERS = (1, 2, 4, 8, 16)


def render(plan: Plan, root: Path, estimator: Estimator, selected: set[str], *, workers: int | None = None,
           gpus: float = 0.0, title: str | None = None) -> str:
    rows = [("cell", "state", "queries/ex", "s/pass", "expected", "queries ≤", "bound", "basis")]
    estimates: dict[str, Estimate] = {}
    for name, cell in plan.cells.items():
        state = cell_state(root, cell)
        state = {"partial": "resumes"}.get(state, state)
        if name not in selected and state != "done":
            state = "not selected"
        if state == "done":
            rows.append((name, state, "", "", "", "", "", ""))
            continue
        estimate = estimator.cell(cell)
        if name in selected:
            estimates[name] = estimate
        per = estimate.per_example
        rows.append((name, state,
                     _number(per["queries"].value) if per else "",
                     _pass(per["seconds_per_pass"].value) if per else "",
                     format_seconds(estimate.seconds),
                     f"{estimate.queries:,}" if estimate.queries else "",
                     format_seconds(estimate.bound_seconds), estimate.basis))
    lines = _table(rows, right={2, 3, 4, 5, 6})
    lines.append("")
    kinds = Counter(cell.kind for cell in plan.cells.values())
    lines.append((f"{title}: " if title else "") + f"{len(plan.cells)} cells ("
                 + ", ".join(f"{kinds[k]} {k}" for k in KINDS if kinds[k]) + f"); {len(estimates)} to run")
    lines += _totals(plan, estimates)
    lines += _walls(plan, estimates, workers, gpus)
    lines += _origins(estimator, estimates)
    return "\n".join(lines)


def _totals(plan: Plan, estimates: dict[str, Estimate]) -> list[str]:
    rows = [("stage", "cells", "expected", "bound")]
    for kind in KINDS:
        chosen = [e for name, e in estimates.items() if plan.cells[name].kind == kind]
        if chosen:
            rows.append((kind, str(len(chosen)), format_seconds(sum(e.seconds for e in chosen)),
                         format_seconds(sum(e.bound_seconds for e in chosen))))
    rows.append(("total", str(len(estimates)), format_seconds(sum(e.seconds for e in estimates.values())),
                 format_seconds(sum(e.bound_seconds for e in estimates.values()))))
    attacks = [e for e in estimates.values() if e.queries is not None]
    lines = ["", "cost of the cells to run, one at a time (expected; bound: every example spends its whole budget "
             "on full-length inputs):"]
    lines += ["  " + line for line in _table(rows, right={1, 2, 3}, rule=False)]
    if attacks:
        lines.append(f"  attack queries: {sum(e.expected_queries or 0 for e in attacks):,.0f} expected, "
                     f"{sum(e.queries or 0 for e in attacks):,} at most")
    return lines


def _walls(plan: Plan, estimates: dict[str, Estimate], workers: int | None, gpus: float) -> list[str]:
    counts = sorted(set(WORKERS) | ({workers} if workers else set()))
    todo = set(estimates)
    expected = {name: e.seconds for name, e in estimates.items()}
    bound = {name: e.bound_seconds for name, e in estimates.items()}
    rows = [("workers", *map(str, counts))]
    if gpus:
        rows.append(("Ray GPUs", *(f"{k * gpus:g}" for k in counts)))
    rows.append(("expected", *(format_seconds(wall_time(plan, expected, todo, k)) for k in counts)))
    rows.append(("bound", *(format_seconds(wall_time(plan, bound, todo, k)) for k in counts)))
    note = ("wall time with K cells at once (dependencies respected; the process executor's --jobs K"
            + (f", or a Ray cluster with K × {gpus:g} GPUs: [study] gpus = {gpus:g} per cell" if gpus else "")
            + "; --workers K adds a column):")
    return ["", note] + ["  " + line for line in _table(rows, right=set(range(1, len(counts) + 1)), rule=False)]


def _origins(estimator: Estimator, estimates: dict[str, Estimate]) -> list[str]:
    speeds, lines = estimator.speeds, ["", "where the figures come from:"]
    device = speeds.device
    threads = speeds.threads or "torch's default"
    used = speeds.used
    groups = {"measured now": [], "cache": [], "prior": []}
    for key, speed in used.items():
        groups[speed.source].append(f"{speeds.labels[key]} {_pass(speed.seconds)}"
                                    + (f" ({speed.detail})" if speed.detail and speed.source != "measured now" else ""))
    threads = f"{threads} thread" + ("s" if threads != 1 else "")
    lines.append(f"  seconds per forward pass on {device}, {threads} (one sequence; shape: layers×hidden):")
    if groups["measured now"]:
        load = load_average()
        lines.append(f"    measured now ({speeds.measuring_seconds:.1f} s"
                     + (f" at load {load:.1f} on {os.cpu_count()} cores" if load is not None else "")
                     + f", the first plan on this machine for these shapes; cached in {speeds.cache_path}): "
                     + "; ".join(groups["measured now"]))
    if groups["cache"]:
        lines.append("    measured earlier on this machine (cache): " + "; ".join(groups["cache"]))
    if groups["prior"]:
        lines.append("    priors (documented per-core table, docs/study.md; --no-measure or not measurable): "
                     + "; ".join(groups["prior"]))
    attacks = [e for e in estimates.values() if e.per_example]
    pilots = [e for e in attacks if e.per_example["queries"].origin == "pilot"]
    priors = Counter(e.per_example["queries"].note for e in attacks if e.per_example["queries"].origin == "prior")
    if attacks:
        lines.append(f"  queries per example: {len(pilots)} of {len(attacks)} attack cells from pilots"
                     + ("" if pilots else " (none: `--pilot N` measures them)")
                     + (f", {sum(priors.values())} from published priors, capped by the budget:" if priors else ""))
        for recipe, prior in recipe_priors().items():
            if prior.source in priors:
                lines.append(f"    {recipe}: {_number(prior.queries)} — {prior.source}")
        measured_passes = sum(e.per_example["seconds_per_pass"].origin == "pilot" for e in attacks)
        lines.append(f"  forward passes per query: {len(pilots)} cells with the pilot's cache and splice hit rate, "
                     f"{len(attacks) - len(pilots)} assume no hits; seconds per pass on real inputs from pilots: "
                     f"{measured_passes} cells")
    for _, hint in sorted(estimator.unavailable.items()):
        lines.append(f"  {hint}")
    return lines


def _number(value: float) -> str:
    if value == float("inf"):
        return "budget"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _pass(seconds: float) -> str:
    return f"{seconds:.3g} s" if seconds >= 0.01 else f"{seconds * 1000:.3g} ms"


def _table(rows: list[tuple[str, ...]], right: set[int], rule: bool = True) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(f"{value:>{widths[i]}}" if i in right else f"{value:<{widths[i]}}"
                       for i, value in enumerate(row)).rstrip() for row in rows]
    if rule:
        lines.insert(1, "-" * max(len(line) for line in lines))
    return lines
