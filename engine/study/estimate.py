"""What a plan will cost: victim queries and seconds, from throughput measured on this machine.

The unit of cost is a sequence through a model. Throughput (sequences per second at the
cell's `max_length`, batch 32, on the study's device) is **measured** here: on the victim
itself when its folder exists, otherwise on a randomly initialised model of the same
architecture (a scratch size, the bundled MiniLM's config, or RoBERTa-base for the hub's
CodeBERT family), which runs at the same speed as the trained one. Full-length inputs make it
an upper bound; real batches are shorter (dynamic padding).

- attack: queries ≤ n × budget (every example spending its whole budget); seconds = queries /
  victim throughput. Early successes, skipped examples and the victim's cache make real runs
  cheaper, so this is an upper bound.
- train: epochs × training examples × 3 (forward + backward) / throughput.
- compress: prune/quantize ≈ 3 passes over the test split (parent, variant, latency runs);
  distill ≈ training a student (a tenth of the teacher's cost per example) plus one teacher pass.
- mlm: like train; substitutes: one masked-LM pass per test example and identifier (10 assumed).
- report: 30 s.

Dataset sizes come from the builtin's cached build, or, for files not read at planning time,
from `FILE_SIZES` (the CodeXGLUE splits); anything else is assumed to hold 10,000 examples.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.study.plan import Cell, Plan

# (train, test) examples of the CodeXGLUE-style files the loaders read, when not counted.
FILE_SIZES = {"devign": (21854, 2732), "bigclonebench": (901028, 415416), "gcj": (528, 132)}
ASSUMED_SIZE = (10000, 1000)
HUB_SHAPES = ("codebert", "graphcodebert", "unixcoder", "roberta")  # RoBERTa-base (125 M parameters)
IDENTIFIERS_PER_EXAMPLE = 10
REPORT_SECONDS = 30.0
DEFAULT_EPOCHS = {"scratch": 10, "pretrained": 3}


@dataclass
class Estimate:
    seconds: float
    queries: int | None  # attack cells: upper bound on victim queries
    basis: str  # how the throughput was obtained


class Estimator:
    def __init__(self, plan: Plan, root: Path, device: str = "cpu", measure: bool = True,
                 threads: int | None = None) -> None:
        self.plan, self.root, self.device, self.measure, self.threads = plan, root, device, measure, threads
        self._speed: dict[Any, tuple[float, str]] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def all(self) -> dict[str, Estimate]:
        return {name: self.cell(cell) for name, cell in self.plan.cells.items()}

    def cell(self, cell: Cell) -> Estimate:
        config = cell.config
        if cell.kind == "report":
            return Estimate(REPORT_SECONDS, None, "assumed")
        n_train, n_test = self.dataset_size(config["dataset"])
        if cell.kind == "attack":
            rate, basis = self.victim_speed(cell)
            queries = min(int(config["n"]), n_test) * int(config["budget"])
            return Estimate(queries / rate, queries, basis)
        if cell.kind == "train":
            rate, basis = self.shape_speed(config["base"], _max_length(config["options"]))
            epochs = config["options"].get("epochs") or DEFAULT_EPOCHS[_family(config["base"])]
            return Estimate(epochs * n_train * 3 / rate + n_test / rate, None, basis)
        if cell.kind == "compress":
            rate, basis = self.victim_speed(self.plan.cells[cell.deps[0]])
            if config["method"] == "distill":
                epochs = config["options"].get("epochs") or 10
                return Estimate(n_train / rate + epochs * n_train * 3 / (10 * rate), None, basis)
            return Estimate(3 * n_test / rate, None, basis)
        if cell.kind == "mlm":
            rate, basis = self.shape_speed(config["options"].get("base", "scratch:small"), _max_length(config["options"]))
            return Estimate((config["options"].get("epochs") or 3) * n_train * 3 / rate, None, basis)
        if cell.kind == "substitutes":
            rate, basis = self.shape_speed("scratch:small" if config["mlm"] == "pretrain" else config["mlm"], 256)
            return Estimate(n_test * IDENTIFIERS_PER_EXAMPLE / rate, None, basis)
        raise AssertionError(cell.kind)

    # ----------------------------------------------------------------- throughput

    def victim_speed(self, cell: Cell) -> tuple[float, str]:
        """Throughput of the model an attack (or a compression) runs: measured on it if it exists."""
        victim = cell
        if cell.kind == "attack":
            victim = self.plan.cells[cell.deps[0]]
        train = victim if victim.kind == "train" else self.plan.cells[victim.deps[0]]
        length = _max_length(train.config["options"])
        folder = self.root / victim.output
        if self.measure and (folder / "config.json").is_file():
            return self._measured(("dir", str(folder), length), lambda: _build_from_dir(folder), length, "victim")
        return self.shape_speed(train.config["base"], length)

    def shape_speed(self, base: str, length: int) -> tuple[float, str]:
        """Throughput of a randomly initialised model shaped like `base` (an upper-bound stand-in)."""
        if not self.measure:
            return _assumed_speed(base, length), "assumed"
        return self._measured(("shape", _shape_name(base), length), lambda: _build_shape(base, length), length,
                              f"{_shape_name(base)} shape")

    def _measured(self, key, build, length: int, what: str) -> tuple[float, str]:
        if key not in self._speed:
            try:
                model = build()
                speed = measure_throughput(model, length, self.device, threads=self.threads)
                self._speed[key] = (speed, f"measured ({what})")
            except Exception as err:  # noqa: BLE001 - an estimate must never stop a dry run
                self._speed[key] = (_assumed_speed(key[1], length), f"assumed ({type(err).__name__})")
        return self._speed[key]

    # ----------------------------------------------------------------- data

    def dataset_size(self, data: dict[str, Any]) -> tuple[int, int]:
        key = repr(sorted(data.items()))
        if key not in self._sizes:
            self._sizes[key] = _dataset_size(data, build=self.measure)
        return self._sizes[key]


def measure_throughput(model, length: int, device: str = "cpu", batch: int = 32, seconds: float = 1.0,
                       threads: int | None = None) -> float:
    """Sequences per second of `model` on random token ids of `length`, batch `batch`, with the stages' threads."""
    import torch

    from engine.device import resolve_device, synchronize

    if threads:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return measure_throughput(model, length, device, batch, seconds)
        finally:
            torch.set_num_threads(before)
    target = resolve_device(device)
    model.to(target).eval()
    vocab = int(getattr(model.config, "vocab_size", 1000))
    ids = torch.randint(5, max(6, vocab), (batch, length), device=target)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model(input_ids=ids[:2], attention_mask=mask[:2])  # warm-up
        synchronize(target)
        started, done = time.perf_counter(), 0
        while done == 0 or time.perf_counter() - started < seconds:
            model(input_ids=ids, attention_mask=mask)
            synchronize(target)
            done += batch
    return done / (time.perf_counter() - started)


def _family(base: str) -> str:
    return "scratch" if base.startswith("scratch") else "pretrained"


def _max_length(options: dict[str, Any]) -> int:
    return int(options.get("max_length") or 256)


def _shape_name(base: str) -> str:
    if base.startswith("scratch"):
        return "scratch:" + (base.partition(":")[2] or "small")
    if base.lower().startswith("minilm") or base.lower() == "all-minilm-l6-v2":
        return "minilm"
    return "roberta-base"


def _build_shape(base: str, length: int):
    from transformers import AutoConfig, AutoModelForSequenceClassification, RobertaConfig

    from engine.models import SCRATCH_SIZES, minilm_path

    name = _shape_name(base)
    if name == "minilm":
        config = AutoConfig.from_pretrained(minilm_path())
        return AutoModelForSequenceClassification.from_config(config)
    size = SCRATCH_SIZES[name.partition(":")[2]] if name.startswith("scratch") else SCRATCH_SIZES["base"]
    vocab = size.vocab if name.startswith("scratch") else 50265
    config = RobertaConfig(vocab_size=vocab, hidden_size=size.hidden, num_hidden_layers=size.layers,
                           num_attention_heads=size.heads, intermediate_size=size.ffn,
                           max_position_embeddings=max(length, 512) + 2, type_vocab_size=1, num_labels=2)
    return AutoModelForSequenceClassification.from_config(config)


def _build_from_dir(folder: Path):
    from engine.models import load_classifier

    loaded = load_classifier(folder)
    return loaded[0] if isinstance(loaded, tuple) else loaded


# Sequences per second at length 256 on one CPU core, used only when nothing can be measured.
_ASSUMED_CPU_RATE = {"scratch:tiny": 400.0, "scratch:small": 60.0, "scratch:base": 6.0, "minilm": 25.0,
                     "roberta-base": 5.0}


def _assumed_speed(base: str, length: int) -> float:
    return _ASSUMED_CPU_RATE.get(_shape_name(base), 5.0) * 256 / max(1, length)


def _dataset_size(data: dict[str, Any], build: bool) -> tuple[int, int]:
    """(train, test) examples: counted from the builtin's (cached or new) build, else assumed."""
    from engine.datasets.loaders import DEFAULT_FRACTIONS

    if not data.get("builtin"):
        return FILE_SIZES.get(data.get("loader"), ASSUMED_SIZE)
    if build:
        try:
            from engine.datasets.registry import build_builtin

            total = len(build_builtin(data["builtin"], size=data.get("size"), progress=False).records)
        except Exception:  # noqa: BLE001 - fall back to the assumption below
            return ASSUMED_SIZE
    else:  # without building: size per class (or per problem) times an assumed 10 classes
        from engine.datasets.registry import BUILTINS

        total = 10 * (data.get("size") or BUILTINS[data["builtin"]].default_size)
    return int(total * DEFAULT_FRACTIONS["train"]), int(total * DEFAULT_FRACTIONS["test"])


def format_seconds(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
