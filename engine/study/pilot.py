"""Pilots: a few examples of every attack cell, run first to measure what the study will cost.

`engine study --pilot N` runs the study's own grid with every attack cell cut to a
label-stratified sample of N examples (`examples_per_cell = N`) and no report. Its model cells
are the study's own (same configuration, same keys, same folders under `cells/`): whatever a
pilot trains, the study does not train again, and a pilot whose victims are done only attacks.
`--pilot-epochs E` makes a cheaper, less faithful pilot: a train, distill or masked-LM cell
whose real counterpart is not done runs for at most E epochs instead, as a cell of its own
(keyed apart); real cells that are done are still used as they are. A briefly trained victim
misclassifies more examples (skipped, one query each) and may fall faster, so figures from
such a pilot count queries per *attacked* example and assume every example is attacked.

Afterwards `summarize` reads the pilot's records and markers into `pilot.json` in the study
folder: per attack cell the mean and spread of queries and forward passes per example, and
the attack's wall seconds per forward pass (overhead included) measured on real inputs, with
the first example's extra time (imports, kernel compilation, the first batches) kept apart as a
per-cell start-up cost; per shortened cell its seconds and epochs. `PilotBook` serves those
figures to the estimator, matched by cell name (the same grid) or else by recipe × task ×
victim shape × budget (another study).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.study.config import MLM_PRETRAIN, StageSpec, StudyConfig
from engine.study.plan import Cell, Plan, config_key, expand, is_done, read_marker

PILOT_FILE = "pilot.json"
FORMAT = 1
RECORDS = "records.jsonl"
SCALED_KINDS = ("train", "mlm")  # priced by epochs from a short pilot cell; compress: distill only (below)


def pilot_config(config: StudyConfig, examples: int, epochs: int | None = None) -> StudyConfig:
    """The study with N examples per attack cell and no report; with `epochs`, trained for at most that many."""
    def short(spec: StageSpec, default: int) -> StageSpec:
        if epochs is None:
            return spec
        return StageSpec(spec.name, spec.values, {**spec.options, "epochs": min(epochs, spec.options.get("epochs") or default)})

    from engine.study.estimate import DEFAULT_EPOCHS

    models = [short(m, DEFAULT_EPOCHS["scratch" if m.values["base"].startswith("scratch") else "pretrained"])
              for m in config.models]
    compressions = [short(c, DEFAULT_EPOCHS[c.values["method"]]) if c.values["method"] in ("distill", "harden") else c
                    for c in config.compressions]  # the methods that train
    mlm = short(config.mlm, DEFAULT_EPOCHS["mlm"]) if config.mlm.values["source"] == MLM_PRETRAIN else config.mlm
    augments = [StageSpec(a.name, {**a.values, "n": min(a.values["n"] or examples, examples)}, a.options)
                for a in config.augments]  # adversarial programs of N training programs
    return dataclasses.replace(config, models=models, compressions=compressions, mlm=mlm, report=[],
                               examples_per_cell=examples, augments=augments)


def pilot_plan(config: StudyConfig, full: Plan, root: Path, examples: int, epochs: int | None = None) -> Plan:
    """The pilot's cells: the study's own model cells, or (with `epochs`) short ones where the real ones are not done."""
    short = expand(pilot_config(config, examples, epochs))
    cells: dict[str, Cell] = {}
    for name, cell in short.cells.items():
        real = full.cells.get(name)
        if real is not None and _reusable(real, cells, full, root):
            cells[name] = real
            continue
        key = config_key(cell.kind, cell.config, [cells[d].key for d in cell.deps])
        meta = dict(cell.meta)
        if cell.kind in ("train", "compress", "mlm"):  # a model the pilot trains for fewer epochs
            meta["short"] = real is None or key != real.key
        elif cell.kind == "attack":
            meta["short_victim"] = bool(cells[cell.deps[0]].meta.get("short"))
        cells[name] = dataclasses.replace(cell, key=key, meta=meta)
    return Plan(short.study, cells)


def _reusable(real: Cell, chosen: dict[str, Cell], full: Plan, root: Path) -> bool:
    """A real cell the pilot can use: done, and built on the very cells the pilot uses (not on short ones)."""
    if real.kind not in ("train", "compress", "mlm", "substitutes") or not is_done(root, real):
        return False
    if real.kind == "substitutes" and real.config.get("sample"):
        return False  # a sample may miss the pilot's examples
    return all(d in chosen and chosen[d].key == full.cells[d].key for d in real.deps)


# --------------------------------------------------------------------------- measuring


def summarize(plan: Plan, root: Path, estimator, machine: str, device: str) -> dict[str, Any]:
    """Read the pilot's finished cells into `root/pilot.json` (see the module docstring); returns it."""
    attacks, stages = [], []
    for cell in plan.cells.values():
        if not is_done(root, cell):
            continue
        if cell.kind == "attack":
            records = _read_records(root / cell.output / RECORDS)
            if not records:
                continue
            shape, _ = estimator.victim_shape(plan.cells[cell.deps[0]])
            attacks.append({"name": cell.name, "recipe": cell.config["recipe"],
                            "task": estimator.task(cell.config["dataset"]), "shape": shape.shape.key,
                            "int8": shape.int8, "budget": cell.config["budget"],
                            "short_victim": bool(cell.meta.get("short_victim")), **attack_figures(records)})
        elif cell.meta.get("short") and (cell.kind in SCALED_KINDS or cell.config.get("method") == "distill"):
            marker = read_marker(root, cell) or {}
            if isinstance(marker.get("seconds"), (int, float)):
                stages.append({"name": cell.name, "kind": cell.kind, "seconds": marker["seconds"],
                               "epochs": cell.config["options"].get("epochs")})
    summary = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine, "device": device, "attacks": attacks, "stages": stages}
    path = root / PILOT_FILE
    temporary = path.with_name(f"{PILOT_FILE}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return summary


def attack_figures(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-example means and spreads of one cell's records (in the order they ran), and its times.

    Time per forward pass is the attack's wall time (victim and overhead) over forward passes,
    without the first example, whose extra time (lazy imports, kernel compilation, the first
    batches) is a per-cell start-up cost, not a per-example one.
    """
    queries = [float(r.get("queries") or 0) for r in records]
    passes = [float(r.get("forward_passes") or 0) for r in records]
    walls = [float(r.get("wall_time_s") or 0) for r in records]
    statuses = [r.get("status") for r in records]
    attacked = [q for q, status in zip(queries, statuses) if status in ("success", "failed")]
    attacked_passes = [p for p, status in zip(passes, statuses) if status in ("success", "failed")]
    victims = [float(r.get("victim_time_s") or 0) for r in records]
    steady_passes, steady_wall, steady_victim = sum(passes[1:]), sum(walls[1:]), sum(victims[1:])
    per_pass = steady_wall / steady_passes if steady_passes else None
    startup = max(0.0, walls[0] - passes[0] * per_pass) if per_pass is not None else 0.0
    return {"examples": len(records), "attacked": len(attacked), "successes": statuses.count("success"),
            "errors": statuses.count("error"), "queries": _mean_sd(queries), "forward_passes": _mean_sd(passes),
            "queries_total": sum(queries), "forward_passes_total": sum(passes),
            "attacked_queries_total": sum(attacked), "attacked_forward_passes_total": sum(attacked_passes),
            "victim_seconds": round(sum(victims), 4), "wall_seconds": round(sum(walls), 4),
            "overhead": round(steady_wall / steady_victim, 4) if steady_victim else None,
            "seconds_per_pass": None if per_pass is None else round(per_pass, 6), "startup_seconds": round(startup, 4)}


def _mean_sd(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return {"mean": round(mean, 3), "sd": round(sd, 3)}


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError:  # a torn last line of a killed run
                        continue
    except OSError:
        return []
    return records


# --------------------------------------------------------------------------- serving the figures


@dataclass(frozen=True)
class PilotAttack:
    queries: float  # mean per example (skipped ones included: they cost their one query)
    forward_passes: float
    hit_rate: float  # share of queries answered without the model
    seconds_per_pass: float | None  # attack wall seconds per forward pass (None: measured on another machine/device)
    startup: float  # seconds a cell spends once, on its first example
    overhead: float  # attack wall time / victim time (1.0 when not measured here)
    note: str


class PilotBook:
    """The figures of `root/pilot.json`, for the estimator."""

    def __init__(self, root: Path, machine: str, device: str) -> None:
        self.path = root / PILOT_FILE
        try:
            self.data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.data = {}
        if self.data.get("format") != FORMAT:
            self.data = {}
        self.same_machine = self.data.get("machine") == machine and self.data.get("device") == device
        self.by_name = {a["name"]: a for a in self.data.get("attacks", [])}
        self.stages = {s["name"]: s for s in self.data.get("stages", [])}

    def __bool__(self) -> bool:
        return bool(self.data)

    def attack(self, cell: Cell, task: str, shape, budget: int) -> PilotAttack | None:
        entry = self.by_name.get(cell.name)
        if entry is not None and entry["budget"] == budget:
            return self._figures([entry], "this cell's pilot")
        pooled = [a for a in self.data.get("attacks", []) if a["recipe"] == cell.config["recipe"] and a["task"] == task
                  and a["shape"] == shape.shape.key and a["int8"] == shape.int8 and a["budget"] == budget]
        return self._figures(pooled, f"{len(pooled)} pilot cells of this recipe, task and shape") if pooled else None

    def _figures(self, entries: list[dict[str, Any]], what: str) -> PilotAttack:
        """Pooled figures; from victims trained short for the pilot, per attacked example (all assumed attacked)."""
        short = any(e.get("short_victim") for e in entries)
        if short and sum(e["attacked"] for e in entries):
            examples = sum(e["attacked"] for e in entries)
            queries = sum(e["attacked_queries_total"] for e in entries)
            passes = sum(e["attacked_forward_passes_total"] for e in entries)
            what += ", per attacked example (victims trained short: all examples assumed attacked)"
        else:
            examples = sum(e["examples"] for e in entries)
            queries = sum(e["queries_total"] for e in entries)
            passes = sum(e["forward_passes_total"] for e in entries)
        spread = entries[0]["queries"]["sd"] if len(entries) == 1 and not short else None
        note = f"{what}: {examples} examples" + (f", sd {spread:,.1f} queries" if spread is not None else "")
        timed = [e for e in entries if e.get("seconds_per_pass")]
        per_pass = startup = None
        overhead = 1.0
        if self.same_machine and timed:
            steady = sum(e["forward_passes_total"] for e in timed)
            per_pass = sum(e["seconds_per_pass"] * e["forward_passes_total"] for e in timed) / steady if steady else None
            startup = sum(e["startup_seconds"] for e in timed) / len(timed)
            ratios = [e["overhead"] for e in timed if e.get("overhead")]
            overhead = max(1.0, sum(ratios) / len(ratios)) if ratios else 1.0
        return PilotAttack(queries / examples, passes / examples, 1 - passes / queries if queries else 0.0,
                           per_pass, startup or 0.0, overhead, note)

    def stage(self, cell: Cell):
        """A shortened pilot cell's seconds scaled to the real cell's epochs (a `Figure`), or None."""
        from engine.study.estimate import DEFAULT_EPOCHS, Figure

        entry = self.stages.get(cell.name)
        if entry is None or not self.same_machine or not entry.get("epochs") or cell.meta.get("short"):
            return None
        options = cell.config.get("options", {})
        if cell.kind == "train":
            default = DEFAULT_EPOCHS["scratch" if cell.config["base"].startswith("scratch") else "pretrained"]
        else:
            default = DEFAULT_EPOCHS[cell.config["method"] if cell.kind == "compress" else "mlm"]
        epochs = options.get("epochs") or default
        return Figure(entry["seconds"] * epochs / entry["epochs"], "pilot",
                      f"{entry['seconds']:.0f} s for {entry['epochs']} epoch × {epochs}")
