"""Measuring a parent and its variants side by side, in one run, on one machine.

What each model gets (`Measurement`):

- `size_mb`: its files on disk (weights, config, tokenizer; `engine.manifest.size_on_disk_mb`);
- `parameters`, `nonzero_parameters`: every weight, int8 weights of quantized layers included,
  tied tensors once; non-zero counts exact zeros only;
- `test_metrics`: accuracy, precision, recall, F1 on the whole test split (`engine.evaluate`);
- `latency_ms_batch1`: wall milliseconds per example through `Victim.predict_proba` (tokenization
  included, cache off) one example per model call, over the first `timing_examples` test
  programs; `throughput_per_s`: examples per second at the best of `batch_sizes`
  (`best_batch_size`). Each figure is the best of `repeats` rounds; in every round the models
  take turns (parent, variant 1, variant 2, …), so a machine that slows down mid-run slows all
  of them, and the ratios stay fair. Nothing here is compared with numbers from another run.
- `agreement` (variants only): share of test examples whose predicted label equals the parent's.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.device import describe_device
from engine.errors import UserError
from engine.evaluate import evaluate

METRIC_KEYS = ("n", "accuracy", "precision", "recall", "f1", "average")


def parameter_counts(model) -> tuple[int, int]:
    """(parameters, non-zero parameters), quantized int8 weights and tied tensors counted once."""
    from engine.common.int8 import dynamic_linear

    linear = dynamic_linear()
    seen: set[int] = set()
    alive = []  # quantized weights are new tensors per call: keep them so their ids are not reused
    total = nonzero = 0

    def add(tensor: torch.Tensor) -> None:
        nonlocal total, nonzero
        if tensor is None or id(tensor) in seen:
            return
        seen.add(id(tensor))
        alive.append(tensor)
        values = tensor.int_repr() if tensor.is_quantized else tensor.detach()
        total += values.numel()
        nonzero += int(torch.count_nonzero(values))

    for module in model.modules():
        if isinstance(module, linear):
            add(module.weight())
            add(module.bias())
        for parameter in module.parameters(recurse=False):
            add(parameter)
    return int(total), int(nonzero)


@dataclass
class Measurement:
    name: str
    size_mb: float
    parameters: int
    nonzero_parameters: int
    device: str
    backend: str  # the forward pass that was timed (engine.backends): an int8 model runs on `hf`
    max_length: int
    test_metrics: dict[str, Any]
    predictions: np.ndarray = field(repr=False)
    latency_ms_batch1: float = 0.0
    throughput_per_s: float = 0.0
    best_batch_size: int = 1
    throughput_by_batch: dict[int, float] = field(default_factory=dict)
    agreement: float | None = None
    evaluation: Any = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "size_mb": self.size_mb, "parameters": self.parameters, "nonzero_parameters": self.nonzero_parameters,
            "device": self.device, "backend": self.backend, "latency_ms_batch1": round(self.latency_ms_batch1, 4),
            "throughput_per_s": round(self.throughput_per_s, 3), "best_batch_size": self.best_batch_size,
            "throughput_by_batch": {str(k): round(v, 3) for k, v in self.throughput_by_batch.items()},
            "test_metrics": self.test_metrics, "agreement": self.agreement,
        }


def measure_side_by_side(victims: dict[str, Any], sizes: dict[str, float], examples: Sequence, *, num_labels: int,
                         parent: str, timing_examples: int = 64, batch_sizes: Sequence[int] = (1, 8, 32),
                         repeats: int = 3, progress: bool | None = None) -> dict[str, Measurement]:
    """Measure every victim (name → Victim, `parent` among them) on the test `examples`; see the module docstring."""
    if parent not in victims:
        raise ValueError(f"parent {parent!r} is not among the models measured")
    if not examples:
        raise UserError("the dataset has no test split: compressed models are measured on it")
    if repeats < 1 or timing_examples < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise UserError("--repeats, --timing-examples and every --batch-sizes entry must be at least 1")
    batch_sizes = sorted(set(int(b) for b in batch_sizes) | {1})
    results: dict[str, Measurement] = {}
    for name, victim in victims.items():
        victim.cache_size = 0
        victim.clear_cache()
        evaluation = evaluate(victim, list(examples), num_labels=num_labels, split="test", progress=progress)
        total, nonzero = parameter_counts(victim.model)
        predicted = np.array([row["prediction"] for row in evaluation.predictions])
        results[name] = Measurement(
            name=name, size_mb=sizes[name], parameters=total, nonzero_parameters=nonzero,
            device=describe_device(victim.device), backend=_backend(victim), max_length=victim.max_length,
            test_metrics={key: evaluation.metrics[key] for key in METRIC_KEYS},
            predictions=predicted, evaluation=evaluation)
    reference = results[parent].predictions
    for name, result in results.items():
        if name != parent:
            result.agreement = float(np.mean(result.predictions == reference))
    _time_all(victims, results, [ex.code for ex in examples[:timing_examples]], batch_sizes, repeats, progress)
    return results


def _backend(victim) -> str:
    describe = getattr(victim, "describe", None)
    return str(describe().get("backend", "hf")) if describe else "hf"


def _time_all(victims: dict[str, Any], results: dict[str, Measurement], codes: list, batch_sizes: list[int],
              repeats: int, progress: bool | None) -> None:
    from tqdm.auto import tqdm

    best: dict[tuple[str, int], float] = {}
    for victim in victims.values():  # warm-up: first calls pay for allocations and lazy initialisation
        victim.batch_size = max(batch_sizes)
        victim.predict_proba(codes[: max(batch_sizes)])
    bar = tqdm(total=repeats * len(victims) * len(batch_sizes), desc="timing", unit="run",
               disable=None if progress is None else not progress, leave=False)
    for _ in range(repeats):
        for name, victim in victims.items():
            for batch_size in batch_sizes:
                victim.batch_size = batch_size
                started = time.perf_counter()
                victim.predict_proba(codes)
                seconds = time.perf_counter() - started
                key = (name, batch_size)
                best[key] = min(best.get(key, float("inf")), seconds)
                bar.update(1)
    bar.close()
    for name, result in results.items():
        result.latency_ms_batch1 = best[(name, 1)] / len(codes) * 1000
        result.throughput_by_batch = {b: len(codes) / best[(name, b)] for b in batch_sizes}
        result.best_batch_size = max(result.throughput_by_batch, key=result.throughput_by_batch.get)
        result.throughput_per_s = result.throughput_by_batch[result.best_batch_size]
