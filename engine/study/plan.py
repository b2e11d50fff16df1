"""A study config expanded into cells: what runs, in which order, and where it writes.

Cells and their dependencies (one arrow: a file on disk):

    train(dataset, model) ──► compress(dataset, model, method) [──► compress(…, method of it), `of`]
    train / compress ──► augment(dataset, model, name) ──► compress(…)   (`adversarial = name`)
    mlm(dataset) ──► substitutes(dataset)                       (only when an attack needs them)
    mlm(dataset) ──► substitutes(dataset, train) ──► augment    (only when an augment entry needs them)
    train / compress ──► attack(dataset, model, variant, attack, seed) ◄── substitutes
    attack(…, original, attack A, seed) ──► attack(…, variant, transfer of A, seed)   (`transfer`)
    every attack ──► report

Each cell's **key** is a hash of its resolved configuration (defaults filled in) and of the
keys of the cells it depends on, so changing one attack's parameter changes the keys of that
attack's cells only, while changing a model's training changes everything downstream of it.
Engineering knobs that do not change results (device, threads, inference batch size) are kept
out of the key. A cell writes into `cells/<kind>/<slug>-<key>/`; the stage's output is the
output folder inside it (named after the model for models), and a `DONE.json` marker, written atomically after the stage succeeds,
is what makes the cell finished. The report is the one cell with a fixed place (`report/`):
its marker records which attack cells it covered.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.cli_base import parse_k_of_n
from engine.errors import UserError
from engine.study.config import MLM_PRETRAIN, DatasetSpec, StudyConfig

KINDS = ("train", "compress", "mlm", "substitutes", "augment", "attack", "report")
MARKER = "DONE.json"
CELLS_DIR = "cells"
REPORT_DIR = "report"
ORIGINAL = "original"


@dataclass
class Cell:
    kind: str
    name: str  # unique and readable, e.g. attack:stdlib:tiny:prune:mhm:s0
    key: str  # 12 hex digits of the configuration hash
    config: dict[str, Any]  # everything that decides the result (hashed)
    deps: tuple[str, ...]  # names of the cells whose outputs it reads
    settings: dict[str, Any] = field(default_factory=dict)  # engineering knobs (not hashed)
    meta: dict[str, Any] = field(default_factory=dict)  # dataset, model, variant, attack, seed

    @property
    def directory(self) -> str:
        """Relative to the study's root."""
        if self.kind == "report":
            return REPORT_DIR
        slug = ".".join(self.name.split(":")[1:]) or self.kind
        return f"{CELLS_DIR}/{self.kind}/{slug}-{self.key}"

    @property
    def output(self) -> str:
        """The stage's output path, relative to the study's root (the report writes beside its marker).

        Model folders are named after the model (`tiny`, `tiny-prune`): the attack records a
        model by its folder, and the report matches a variant to the original it starts with.
        """
        if self.kind == "report":
            return self.directory
        name = {"train": self.meta.get("model"), "compress": f"{self.meta.get('model')}-{self.meta.get('variant')}",
                "attack": "logs"}.get(self.kind, self.kind)
        return f"{self.directory}/{name}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "key": self.key, "directory": self.directory,
                "deps": list(self.deps), "config": self.config, "settings": self.settings, "meta": self.meta}


@dataclass
class Plan:
    study: str
    cells: dict[str, Cell]  # in dependency order

    def to_json(self) -> dict[str, Any]:
        return {"study": self.study, "cells": [cell.to_json() for cell in self.cells.values()]}


def config_key(kind: str, config: dict[str, Any], dep_keys: list[str]) -> str:
    payload = json.dumps({"kind": kind, "config": config, "deps": dep_keys}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


def expand(config: StudyConfig) -> Plan:
    """The cells of a study, each after the cells it depends on."""
    cells: dict[str, Cell] = {}

    def add(kind: str, parts: list[str], hashed: dict[str, Any], deps: list[str], settings: dict[str, Any],
            meta: dict[str, Any]) -> Cell:
        name = ":".join([kind, *parts])
        cell = Cell(kind, name, config_key(kind, hashed, [cells[d].key for d in deps]), hashed, tuple(deps),
                    settings, meta)
        cells[name] = cell
        return cell

    runtime = {"device": config.device, "threads": config.threads, "gpus": config.gpus}
    attack_cells: list[str] = []
    for dataset in config.datasets:
        data = dataset.hashed()
        substitutes = _substitute_cells(config, dataset, add, runtime)
        for model in config.models:
            if model.values.get("datasets") and dataset.name not in model.values["datasets"]:
                continue  # this model is trained on other datasets only
            meta = {"dataset": dataset.name, "model": model.name}
            train = add("train", [dataset.name, model.name],
                        {"dataset": data, "model": model.name, "base": model.values["base"], "options": model.options},
                        [], dict(runtime), meta | {"variant": ORIGINAL})
            victims = [(ORIGINAL, train)] if config.include_original else []
            made: dict[str, Cell] = {}
            for compression in config.compressions:
                if not compression.applies_to(model.name):
                    continue  # this compression is made for other victims only
                hashed = {"dataset": data, "model": model.name, "name": compression.name,
                          "method": compression.values["method"], "options": compression.options}
                parent = train
                if compression.values.get("of"):  # only then: other compressions keep their keys
                    hashed["of"] = compression.values["of"]
                    parent = made[compression.values["of"]]
                deps = [parent.name]  # the parent first: the estimate reads a variant's shape from deps[0]
                if compression.values.get("adversarial"):  # only then, as `of`
                    hashed["adversarial"] = compression.values["adversarial"]
                    deps.append(_augment_cell(config, add, dataset, model.name, compression.values["adversarial"],
                                              train, made, runtime, meta).name)
                cell = add("compress", [dataset.name, model.name, compression.name], hashed,
                           deps, dict(runtime), meta | {"variant": compression.name,
                                                        "method": compression.values["method"]})
                made[compression.name] = cell
                victims.append((compression.name, cell))
            # Attacks first, then transfers: a transfer replays what its source found on the original.
            sources: dict[tuple[str, int], Cell] = {}
            attacks = [a for a in config.attacks if a.values.get("transfer") is None]
            transfers = [a for a in config.attacks if a.values.get("transfer") is not None]
            pairs = [(v, a) for v in victims for a in attacks] + [(v, a) for a in transfers for v in victims]
            for (variant, victim), attack in pairs:
                for seed in config.seeds:
                    cell = _attack_cell(config, add, data, model.name, variant, victim, attack, seed, substitutes,
                                        sources, runtime, meta)
                    if variant == ORIGINAL:
                        sources[(attack.name, seed)] = cell
                    attack_cells.append(cell.name)
    if config.report and attack_cells:
        hashed = {"formats": sorted(config.report), "study": config.name,
                  "attacks": sorted(cells[name].key for name in attack_cells)}
        if config.labels:  # only when set, so that studies without labels keep their report key
            hashed["labels"] = dict(sorted(config.labels.items()))
        add("report", [], hashed,
            attack_cells, {}, {"formats": list(config.report)})
    return Plan(config.name, cells)


def _attack_cell(config: StudyConfig, add, data: dict[str, Any], model: str, variant: str, victim: Cell,
                 attack, seed: int, substitutes: Cell | None, sources: dict[tuple[str, int], Cell],
                 runtime: dict[str, Any], meta: dict[str, Any]) -> Cell:
    """One attack cell; a transfer entry's cell reads its source's cell on the original (same seed)."""
    natural = config.attack_needs_substitutes(attack)
    if natural and config.substitutes.values["from_dataset"]:
        natural = "dataset"  # the dataset's own substitutes field
    hashed = {"dataset": data, "model": model, "variant": variant,
              "attack": attack.name, "recipe": attack.values["recipe"],
              "n": attack.values["n"], "budget": attack.values["budget"], "seed": seed,
              "options": attack.options, "substitutes": natural}
    if config.examples_per_cell:  # only then: unsampled cells keep their keys
        hashed["sample"] = config.examples_per_cell
    deps = [victim.name] + ([substitutes.name] if natural is True and substitutes is not None else [])
    transfer = attack.values.get("transfer")
    if transfer is not None:  # only then: other attacks keep their keys
        hashed["transfer"] = transfer
        deps.append(sources[(transfer, seed)].name)
    return add("attack", [meta["dataset"], model, variant, attack.name, f"s{seed}"], hashed, deps,
               runtime | {"batch_size": attack.values["batch_size"]},
               meta | {"variant": variant, "attack": attack.name, "recipe": attack.values["recipe"], "seed": seed,
                       **({"transfer": transfer} if transfer is not None else {})})


def _augment_cell(config: StudyConfig, add, dataset: DatasetSpec, model: str, name: str, train: Cell,
                  made: dict[str, Cell], runtime: dict[str, Any], meta: dict[str, Any]) -> Cell:
    """The cell of one [[augment]] entry for one victim: `engine augment` on the training split of the
    variant it attacks (after that variant's cell, and the train-split substitutes for natural attacks)."""
    augment = next(a for a in config.augments if a.name == name)
    target = augment.values["of"]
    victim = made[target] if target is not None else train
    natural: bool | str = config.augment_needs_substitutes(augment)
    deps = [victim.name]
    if natural and config.substitutes.values["from_dataset"]:
        natural = "dataset"
    elif natural:
        deps.append(_train_substitutes(config, add, dataset, runtime).name)
    hashed = {"dataset": dataset.hashed(), "model": model, "name": name, "of": target or ORIGINAL,
              "attack": augment.values["attack"], "n": augment.values["n"], "options": augment.options,
              "substitutes": natural}
    return add("augment", [dataset.name, model, name], hashed, deps, dict(runtime),
               meta | {"variant": target or ORIGINAL, "attack": augment.values["attack"]})


def _mlm_cell(config: StudyConfig, dataset: DatasetSpec, add, runtime: dict[str, Any]) -> list[str]:
    """The dataset's masked-LM cell as a dependency list ([] when the masked LM is given, not trained)."""
    if config.mlm.values["source"] != MLM_PRETRAIN:
        return []
    mlm = add("mlm", [dataset.name], {"dataset": dataset.hashed(), "options": config.mlm.options}, [], dict(runtime),
              {"dataset": dataset.name})
    return [mlm.name]


def _train_substitutes(config: StudyConfig, add, dataset: DatasetSpec, runtime: dict[str, Any]) -> Cell:
    """Natural substitutes of the training programs the natural [[augment]] entries attack (all, or the
    largest `n` of theirs)."""
    natural = [a for a in config.augments if config.augment_needs_substitutes(a)]
    sizes = {a.values["n"] for a in natural}
    hashed = {"dataset": dataset.hashed(), "mlm": config.mlm.values["source"], "splits": ["train"],
              "options": config.substitutes.options, "n": None if None in sizes else max(sizes)}
    return add("substitutes", [dataset.name, "train"], hashed, _mlm_cell(config, dataset, add, runtime),
               dict(runtime), {"dataset": dataset.name})


def _substitute_cells(config: StudyConfig, dataset: DatasetSpec, add, runtime: dict[str, Any]) -> Cell | None:
    """The substitutes cell of a dataset (after its masked-LM cell), or None when no attack needs one."""
    if config.substitutes.values["from_dataset"] or not any(config.attack_needs_substitutes(a) for a in config.attacks):
        return None
    data = dataset.hashed()
    source = config.mlm.values["source"]
    deps = _mlm_cell(config, dataset, add, runtime)
    natural = [a for a in config.attacks if config.attack_needs_substitutes(a)]
    splits = sorted({a.options.get("split", "test") for a in natural})
    # Only the programs the attacks read: the first n (the largest n of those attacks), and with
    # examples_per_cell the same sample (when the attacks share one n, hence one population).
    sizes = {a.values["n"] for a in natural}
    hashed = {"dataset": data, "mlm": source, "splits": splits, "options": config.substitutes.options, "n": max(sizes)}
    if config.examples_per_cell and len(sizes) == 1:
        hashed["sample"] = config.examples_per_cell
    return add("substitutes", [dataset.name], hashed, deps, dict(runtime), {"dataset": dataset.name})


# --------------------------------------------------------------------------- what is done


def read_marker(root: Path, cell: Cell) -> dict[str, Any] | None:
    path = root / cell.directory / MARKER
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_done(root: Path, cell: Cell) -> bool:
    marker = read_marker(root, cell)
    return marker is not None and marker.get("key") == cell.key


def write_marker(root: Path, cell: Cell, seconds: float, **extra: Any) -> None:
    """Mark a cell finished: write the marker next to its final name, then rename (atomic)."""
    directory = root / cell.directory
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"key": cell.key, "kind": cell.kind, "name": cell.name, "seconds": round(seconds, 3),
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    temporary = directory / f"{MARKER}.tmp-{os.getpid()}"
    temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, directory / MARKER)


def cell_state(root: Path, cell: Cell) -> str:
    """`done`, `partial` (its folder has output but no marker: the stage resumes or redoes it) or `todo`."""
    if is_done(root, cell):
        return "done"
    output = root / cell.output
    if output.exists() and (output.is_file() or any(output.iterdir())):
        return "partial"
    return "todo"


def select(plan: Plan, only: list[str] | None = None, part: tuple[int, int] | None = None) -> list[str]:
    """Names of the cells to run: of the kinds in `only`, and for attacks the K-th of N parts.

    Attack cells are split by position in a key-sorted list, so every machine that runs the same
    config with `--part K/N` takes a disjoint share and the N parts cover all attack cells.
    """
    for kind in only or ():
        if kind not in KINDS:
            raise UserError(f"--only {kind!r}: use kinds from {', '.join(KINDS)}")
    chosen = [c for c in plan.cells.values() if not only or c.kind in only]
    if part is not None:
        k, n = part
        attacks = sorted((c for c in plan.cells.values() if c.kind == "attack"), key=lambda c: c.key)
        mine = {c.name for i, c in enumerate(attacks) if i % n == k - 1}
        chosen = [c for c in chosen if c.kind != "attack" or c.name in mine]
    return [c.name for c in chosen]


def parse_part(text: str | None) -> tuple[int, int] | None:
    return parse_k_of_n(text, "--part")
