"""What a plan will cost: an expected figure and an upper bound for every cell, each figure with its origin.

The unit of cost is one forward pass of one input through a model; its price in seconds comes
from `throughput.SpeedBook` (measured on this machine once per shape and length, then cached;
or the documented prior). Every cell gets two figures:

- **bound**: every attacked example spends its whole budget, every input is full length, no
  cache hit — `min(n, test examples) × budget` queries, each a forward pass at `max_length`;
- **expected**: per example, the queries a pilot measured for this recipe × task × model shape
  (`engine study --pilot N`, `pilot.PilotBook`), else the published figure for the recipe
  (`Recipe.prior` via `priors.expected_queries`, capped by the budget); the forward passes those queries need (the pilot's
  cache and splice hit rate, else none saved); the seconds per forward pass the pilot measured
  on real inputs on this machine, else the shape's measured or prior figure at `max_length`.

Other stages are priced the same way in both columns (their cost does not depend on luck): train
≈ epochs × training examples × 3 passes (forward and backward); prune/quantize ≈ 3 passes over
the test split; distill ≈ one teacher pass over the training split plus training the student;
harden (robust fine-tuning of a variant) like training that variant on its training split and
`renamings` (default 1) renamed copies of each example, plus one adversarial program per epoch for
each example that has some (`adversarial`: counted in the augment cell's programs once it is done,
else every example assumed to have one); distill --robust like distill with those copies in its
epochs after the warm-up (the teacher's outputs on the originals serve them); a transfer attack ≈ two forward passes
per example (a replay); mlm like train; substitutes ≈ (1 + top_k) masked-LM passes per variable,
10 variables per program; report 30 s. After a `--pilot-epochs E` pilot, its short train,
distill, harden and masked-LM cells price the real ones: their measured seconds scaled by the epochs.

Dataset sizes come from the builtin's cached build, or, for files not read at planning time,
from the format's published corpus (`Format.sizes`, `Format.labels`: the CodeXGLUE splits);
anything else is assumed to hold 10,000 examples.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.common.errors import UserError
from engine.study.plan import Cell, Plan
from engine.study.priors import expected_queries
from engine.study.shapes import DEFAULT_MAX_LENGTH, ModelShape, Shape, base_shape, hub_hint, local_shape, student_shape
from engine.study.throughput import Speed, SpeedBook

# (train, test) examples and labels of the CodeXGLUE-style files the loaders read, when not counted.
ASSUMED_SIZE = (10000, 1000)
VARIABLES_PER_PROGRAM = 10
REPORT_SECONDS = 30.0
DEFAULT_EPOCHS = {"scratch": 10, "pretrained": 3, "distill": 10, "mlm": 3, "harden": 4}  # harden: HARDEN_DEFAULTS
HARDEN_RENAMINGS = 1  # `engine compress --method harden --renamings`: renamed copies per program and epoch
REPLAY_PASSES = 2  # a transfer replays the original and one adversarial program per example
TRAIN_PASSES = 3  # a training step costs about three forward passes (forward, backward)


@dataclass(frozen=True)
class Figure:
    """A number and where it came from: `measured` (this machine, now or cached), `pilot` or `prior`."""

    value: float
    origin: str
    note: str = ""


@dataclass
class Estimate:
    seconds: float  # expected
    bound_seconds: float
    queries: int | None = None  # attack cells: the bound on victim queries
    expected_queries: float | None = None  # attack cells
    per_example: dict[str, Figure] = field(default_factory=dict)  # attack cells: queries, forward_passes, seconds_per_pass
    basis: str = ""  # what the figures rest on, in a few words


class Estimator:
    def __init__(self, plan: Plan, root: Path, speeds: SpeedBook, pilots=None, count_builtins: bool = True) -> None:
        self.plan, self.root, self.speeds, self.pilots = plan, root, speeds, pilots
        self.count_builtins = count_builtins
        self._sizes: dict[str, tuple[int, int, int]] = {}
        self._shapes: dict[str, tuple[ModelShape, int]] = {}
        self.unavailable: dict[str, str] = {}  # hub id -> what to do, and how it was priced

    def all(self) -> dict[str, Estimate]:
        return {name: self.cell(cell) for name, cell in self.plan.cells.items()}

    def cell(self, cell: Cell) -> Estimate:
        if cell.kind == "report":
            return Estimate(REPORT_SECONDS, REPORT_SECONDS, basis="assumed")
        if cell.kind == "attack":
            return self._attack(cell)
        seconds, basis = self._stage(cell)
        pilot = self.pilots.stage(cell) if self.pilots is not None else None
        if pilot is not None:  # a stage's cost does not depend on luck: both columns are the pilot's figure
            return Estimate(pilot.value, pilot.value, basis=f"pilot ({pilot.note})")
        return Estimate(seconds, seconds, basis=basis)

    # ----------------------------------------------------------------- attacks

    def _attack(self, cell: Cell) -> Estimate:
        config = cell.config
        _, n_test, _ = self.dataset_size(config["dataset"])
        examples = min(int(config["n"]), n_test)
        if config.get("sample"):
            examples = min(examples, int(config["sample"]))
        budget = int(config["budget"])
        shape, length = self.victim_shape(self.plan.cells[cell.deps[0]])
        full = self.speeds.seconds_per_pass(shape.shape, length, shape.int8)
        if config.get("transfer"):  # a replay: the original and one adversarial program per example
            seconds = examples * REPLAY_PASSES * full.seconds
            passes = Figure(REPLAY_PASSES, "prior", "a replay: original and adversarial program")
            return Estimate(seconds, seconds, examples * REPLAY_PASSES, examples * REPLAY_PASSES,
                            {"queries": passes, "forward_passes": passes, "seconds_per_pass": _speed_figure(full)},
                            f"replay; s/pass: {_speed_figure(full).origin}")
        bound_queries = examples * budget
        bound_seconds = bound_queries * full.seconds

        measured = self.pilots.attack(cell, self.task(config["dataset"]), shape, budget) if self.pilots else None
        startup = 0.0
        if measured is not None:
            queries = Figure(measured.queries, "pilot", measured.note)
            passes = Figure(measured.forward_passes, "pilot", f"hit rate {measured.hit_rate:.0%}")
            if measured.seconds_per_pass is not None:
                per_pass = Figure(measured.seconds_per_pass, "pilot", "attack wall time per pass, real inputs, this machine")
                startup = measured.startup
                # the attack's own time too, and never a faster pass than the pilot saw
                bound_seconds = startup + bound_queries * max(full.seconds * measured.overhead, per_pass.value)
            else:
                per_pass = _speed_figure(full)
        else:
            expected, prior = expected_queries(config["recipe"], budget)
            queries = Figure(expected, "prior", prior.source)
            passes = Figure(expected, "prior", "no cache hits assumed")
            per_pass = _speed_figure(full)
        expected_seconds = startup + examples * passes.value * per_pass.value
        per_example = {"queries": queries, "forward_passes": passes, "seconds_per_pass": per_pass}
        basis = f"queries: {queries.origin}; s/pass: {per_pass.origin}"
        return Estimate(expected_seconds, bound_seconds, bound_queries, examples * queries.value, per_example, basis)

    # ----------------------------------------------------------------- other stages

    def _stage(self, cell: Cell) -> tuple[float, str]:
        config, options = cell.config, cell.config.get("options", {})
        n_train, n_test, labels = self.dataset_size(config["dataset"])
        if cell.kind == "train":
            shape, length = self.victim_shape(cell)
            speed = self.speeds.seconds_per_pass(shape.shape, length)
            epochs = options.get("epochs") or DEFAULT_EPOCHS[_family(config["base"])]
            return (epochs * n_train * TRAIN_PASSES + n_test) * speed.seconds, _speed_basis(speed)
        if cell.kind == "compress":
            parent, length = self.victim_shape(self.plan.cells[cell.deps[0]])
            teacher = self.speeds.seconds_per_pass(parent.shape, length)
            adversarial, adversarial_basis = self._adversarial_share(cell, n_train)
            if config["method"] == "harden":  # fine-tuning the variant on its training split and renamed copies
                epochs = options.get("epochs") or DEFAULT_EPOCHS["harden"]
                copies = 1 + int(options.get("renamings", HARDEN_RENAMINGS)) + adversarial
                return (epochs * copies * n_train * TRAIN_PASSES * teacher.seconds,
                        _speed_basis(teacher) + adversarial_basis)
            if config["method"] == "distill":
                student, _ = self.victim_shape(cell)
                speed = self.speeds.seconds_per_pass(student.shape, length)
                epochs = int(options.get("epochs") or DEFAULT_EPOCHS["distill"])
                student_epochs = float(epochs)
                if options.get("robust"):  # renamed (and adversarial) copies in the epochs after the warm-up
                    from engine.compress.distill import DistillConfig  # its defaults; imports torch, so only here

                    robust = DistillConfig(epochs=epochs, robust=True, **{
                        key: options[key] for key in ("renamings", "robust_warmup") if options.get(key) is not None})
                    student_epochs += (epochs - robust.warmup()) * (robust.renamings + adversarial)
                seconds = n_train * teacher.seconds + student_epochs * n_train * TRAIN_PASSES * speed.seconds
                return seconds, _speed_basis(speed) + adversarial_basis
            return 3 * n_test * teacher.seconds, _speed_basis(teacher)
        if cell.kind == "augment":  # an attack (or one random renaming) per training program and seed
            victim, length = self.victim_shape(self.plan.cells[cell.deps[0]])
            speed = self.speeds.seconds_per_pass(victim.shape, length, victim.int8)
            programs = min(n_train, int(config["n"])) if config.get("n") else n_train
            if config["attack"] == "random":
                queries = 1.0
            else:
                budget = options.get("budget")
                queries, _ = expected_queries(config["attack"], int(budget) if budget else 10 ** 9)
            return programs * int(options.get("per_example") or 1) * queries * speed.seconds, _speed_basis(speed)
        if cell.kind == "mlm":
            length = int(options.get("max_length") or DEFAULT_MAX_LENGTH)
            shape = base_shape(options.get("base") or "scratch:small", options.get("vocab_size"))
            speed = self.speeds.seconds_per_pass(shape.shape, length)
            epochs = options.get("epochs") or DEFAULT_EPOCHS["mlm"]
            return epochs * n_train * TRAIN_PASSES * speed.seconds, _speed_basis(speed)
        if cell.kind == "substitutes":
            shape, length = self.mlm_shape(cell)
            speed = self.speeds.seconds_per_pass(shape.shape, length)
            per_split = {"train": n_train}
            programs = sum(per_split.get(split, n_test) for split in config.get("splits") or ["test"])
            if config.get("n"):
                programs = min(programs, int(config["n"]) * len(config.get("splits") or ["test"]))
            if config.get("sample"):
                programs = min(programs, int(config["sample"]) * len(config.get("splits") or ["test"]))
            top_k = int(config.get("options", {}).get("top_k") or 60)
            return programs * VARIABLES_PER_PROGRAM * (1 + top_k) * speed.seconds, _speed_basis(speed)
        raise AssertionError(cell.kind)

    def _adversarial_share(self, cell: Cell, n_train: int) -> tuple[float, str]:
        """(share of training examples with adversarial programs, a note for the basis) for a compress
        cell fed by an augment cell: counted once that cell is done, else 1 (every example has some)."""
        augment = next((self.plan.cells[key] for key in cell.deps if self.plan.cells[key].kind == "augment"), None)
        if augment is None:
            return 0.0, ""
        found = self.root / augment.output / "train.jsonl"
        if not found.is_file() or not n_train:
            return 1.0, "; adversarial programs: assumed one per example"
        with found.open(encoding="utf-8") as lines:
            examples = {json.loads(line)["original_id"] for line in lines if line.strip()}
        return min(1.0, len(examples) / n_train), f"; adversarial programs: {len(examples)} examples have some"

    # ----------------------------------------------------------------- shapes

    def victim_shape(self, cell: Cell) -> tuple[ModelShape, int]:
        """The shape of the model a train or compress cell writes, and the input length it reads."""
        if cell.key in self._shapes:
            return self._shapes[cell.key]
        folder = self.root / cell.output
        train = cell
        while train.kind != "train":  # a variant of a variant (`of`) reads its victim's length too
            train = self.plan.cells[train.deps[0]]
        length = int(train.config["options"].get("max_length") or DEFAULT_MAX_LENGTH)
        if (folder / "config.json").is_file():
            found = local_shape(folder)
        elif cell.kind == "train":
            found = base_shape(cell.config["base"], cell.config["options"].get("vocab_size"))
            if not found.available and found.hub_id:
                self.unavailable[found.hub_id] = f"{hub_hint(found.hub_id)}; priced from its shape ({found.source})"
        else:
            parent, _ = self.victim_shape(self.plan.cells[cell.deps[0]])
            method, options = cell.config["method"], cell.config["options"]
            if method == "harden":  # fine-tuned in place: the shape (and int8 storage) of the variant it hardens
                found = parent
            elif method == "quantize" and (options.get("dtype") or "int8") == "int8":
                found = ModelShape(parent.shape, f"{parent.source}, int8", int8=True)
            elif method == "distill":
                found = ModelShape(self._student(cell, length), "distillation's size search")
            else:  # pruning zeroes weights; fp16/bf16 casts keep the shape
                found = parent
        self._shapes[cell.key] = (found, length)
        return found, length

    def _student(self, cell: Cell, length: int) -> Shape:
        options = cell.config["options"]
        fixed = {"layers": options.get("layers"), "hidden": options.get("hidden"), "heads": options.get("heads"),
                 "intermediate": options.get("intermediate"), "vocab": options.get("vocab_size")}
        labels = self.dataset_size(cell.config["dataset"])[2]
        target = float(options.get("target_mb") or 3.0)
        key = json.dumps([target, length, labels, fixed], sort_keys=True)
        found = self.speeds.memo("student-shape", key,
                                 lambda: student_shape(target, length, labels, fixed).to_json())
        return Shape(**found)

    def mlm_shape(self, cell: Cell) -> tuple[ModelShape, int]:
        mlm_cells = [self.plan.cells[d] for d in cell.deps if self.plan.cells[d].kind == "mlm"]
        if mlm_cells:
            options = mlm_cells[0].config["options"]
            folder = self.root / mlm_cells[0].output
            found = local_shape(folder) if (folder / "config.json").is_file() else \
                base_shape(options.get("base") or "scratch:small", options.get("vocab_size"))
            return found, int(options.get("max_length") or DEFAULT_MAX_LENGTH)
        found = base_shape(cell.config["mlm"])
        if not found.available and found.hub_id:
            self.unavailable[found.hub_id] = f"{hub_hint(found.hub_id)}; priced from its shape ({found.source})"
        length = int(cell.config.get("options", {}).get("max_length") or min(512, found.shape.max_positions))
        return found, length

    # ----------------------------------------------------------------- data

    def dataset_size(self, data: dict[str, Any]) -> tuple[int, int, int]:
        """(train examples, test examples, labels)."""
        key = repr(sorted(data.items()))
        if key not in self._sizes:
            self._sizes[key] = _dataset_size(data, build=self.count_builtins)
        return self._sizes[key]

    @staticmethod
    def task(data: dict[str, Any]) -> str:
        if data.get("builtin"):
            from engine.datasets.registry import BUILTINS

            return BUILTINS[data["builtin"]].task
        from engine.datasets.registry import FORMATS

        return data.get("task") or FORMATS[data["loader"]].task or "classification"


def _speed_figure(speed: Speed) -> Figure:
    return Figure(speed.seconds, "measured" if speed.source in ("measured now", "cache") else "prior",
                  speed.detail or speed.source)


def _speed_basis(speed: Speed) -> str:
    return {"measured now": "measured now", "cache": "measured (cache)"}.get(speed.source, "prior speed")


def _family(base: str) -> str:
    return "scratch" if base.startswith("scratch") else "pretrained"


def _dataset_size(data: dict[str, Any], build: bool) -> tuple[int, int, int]:
    """(train, test, labels): counted from the builtin's (cached or new) build, else assumed."""
    from engine.datasets.loaders import DEFAULT_FRACTIONS

    from engine.datasets.registry import BUILTINS, FORMATS

    if not data.get("builtin"):
        spec = FORMATS[data["loader"]]
        train, test = spec.sizes or ASSUMED_SIZE
        return train, test, spec.labels or 2

    labels = 10
    if build:
        try:
            from engine.datasets.registry import build_builtin

            pool = build_builtin(data["builtin"], size=data.get("size"), progress=False)
            total, labels = len(pool.records), len(pool.label_names)
        except (UserError, OSError) as error:  # a plan still answers; it says what it assumed and why
            total = 10 * (data.get("size") or BUILTINS[data["builtin"]].default_size)
            print(f"plan: could not build {data['builtin']} to count it ({error}); assuming {total:,} examples",
                  file=sys.stderr)
    else:  # without building: size per class (or per problem) times an assumed 10 classes
        total = 10 * (data.get("size") or BUILTINS[data["builtin"]].default_size)
    return int(total * DEFAULT_FRACTIONS["train"]), int(total * DEFAULT_FRACTIONS["test"]), labels


# --------------------------------------------------------------------------- wall time on K workers


def wall_time(plan: Plan, seconds: dict[str, float], todo: set[str], workers: int) -> float:
    """Seconds until every cell in `todo` is finished with `workers` cells at once.

    The scheduler's own policy (`run.run_plan`): in plan order, a cell starts as soon as the cells
    it reads are finished and a slot is free; cells not in `todo` are finished already.
    """
    finish: dict[str, float] = {}
    running: list[tuple[float, str]] = []
    pending = [name for name in plan.cells if name in todo]
    now = 0.0
    while pending or running:
        for name in list(pending):
            if len(running) >= max(1, workers):
                break
            deps = [d for d in plan.cells[name].deps if d in todo]
            if all(d in finish and finish[d] <= now for d in deps):
                pending.remove(name)
                running.append((now + seconds.get(name, 0.0), name))
        if not running:  # dependencies outside the plan: nothing can start (never loop forever)
            break
        running.sort()
        end, name = running.pop(0)
        now = max(now, end)
        finish[name] = end
    return now


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.1f} days"
