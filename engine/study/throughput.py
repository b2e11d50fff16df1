"""Seconds per forward pass, measured once per machine, device, shape and input length, and cached.

A plan prices every model-running cell in forward passes; what one costs depends on the machine,
the device, the model's shape and the input length, not on the weights. So it is measured on a
randomly filled model of the shape (built without its initialisation pass, which for a
RoBERTa-base takes longer than the measurement), with the study's threads, at the length the
cell reads, and kept in `<cache root>/throughput.json` (`engine.datasets.registry.cache_root`:
`$CRT_CACHE_DIR`, else the user's cache folder) under a fingerprint of the machine (host, CPU
model, cores, torch version, visible GPUs). Only the first plan on a machine pays for a shape;
later plans read the file and do not even import torch. Each entry records the load average at
measuring time, shown in the plan: a figure taken while other jobs ran is slow (delete
`throughput.json`, or its machine's entry, to measure again).

One measurement: a batch sized so one pass takes about 0.2 s by the prior below (1 sequence of
512 tokens for a RoBERTa-base on a CPU, 32 for a tiny model), a warm-up pass of one short
sequence (a full-length one would double the cost of measuring a large model), then passes until
half a second has gone by. Deep models are timed on `MEASURED_LAYERS` of their layers and the
time scaled by depth: every encoder layer of a shape does the same work, and the embeddings and
classification head cost a small fraction of one layer, so the scaled figure over-estimates by
at most that fraction while a cold plan of the paper preset measures its 12-layer shapes in a
sixth of the time (`bench/study_plan.py --check-depth` prints scaled against whole-model
timings side by side). The vocabulary is capped as well: it only sizes a table look-up. `--no-measure` (and anything the plan cannot measure) uses
the prior instead: sequences per second at 256 tokens per CPU core for the shapes below,
other shapes scaled by their multiply-adds per token, and inputs of L tokens costing L/256 as
much (`prior_seconds`).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine.study.shapes import ROBERTA_BASE, Shape, scratch_shape

CACHE_FILE = "throughput.json"
FORMAT = 1
TARGET_PASS_SECONDS = 0.2
MEASURE_SECONDS = 0.5
WARM_UP_TOKENS = 16
MEASURED_LAYERS = 2  # deeper shapes are timed on this many layers and scaled by depth

# Sequences per second at 256 tokens on one CPU core (fp32), the anchor of every prior.
_PRIOR_RATE = {"scratch:tiny": 400.0, "scratch:small": 60.0, "scratch:base": 6.0, "minilm": 25.0,
               "roberta-base": 5.0}
INT8_PRIOR_SPEEDUP = 2.4  # roberta-base, 2 threads (docs: ../shared/reference/offline-environment.md §4)


@dataclass(frozen=True)
class Speed:
    seconds: float  # per sequence (one forward pass of one input)
    source: str  # "measured now", "cache", "prior"
    detail: str = ""  # e.g. the date it was measured, or why it could not be


def machine_fingerprint() -> dict[str, Any]:
    """What makes two machines time alike; read without importing torch."""
    from importlib import metadata

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"host": platform.node(), "cpu": cpu, "cores": os.cpu_count(), "torch": torch_version,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def fingerprint_key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def default_cache_path() -> Path:
    from engine.datasets.registry import cache_root

    return cache_root() / CACHE_FILE


class SpeedBook:
    """Seconds per forward pass for (shape, length, int8) on the study's device, cached per machine."""

    def __init__(self, device: str = "cpu", threads: int | None = None, measure: bool = True,
                 cache_path: Path | None = None, log: TextIO | None = None) -> None:
        self.requested_device, self.threads, self.measure = device or "auto", threads, measure
        self.cache_path = cache_path or default_cache_path()
        self.log = log or sys.stderr
        self.fingerprint = machine_fingerprint()
        self.machine = fingerprint_key(self.fingerprint)
        self._data = self._read()
        self._dirty = False
        self.used: dict[str, Speed] = {}  # entry key -> the speed used (for the plan's closing note)
        self.labels: dict[str, str] = {}  # entry key -> "12×768 fp32 at 512 tokens"
        self.measuring_seconds = 0.0

    # ------------------------------------------------------------------ the cache

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"format": FORMAT, "machines": {}}
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
            return {"format": FORMAT, "machines": {}}
        return data

    def _mine(self) -> dict[str, Any]:
        return self._data["machines"].setdefault(self.machine, {"fingerprint": self.fingerprint, "devices": {},
                                                                "entries": {}, "memo": {}})

    def save(self) -> None:
        """Write the cache if anything was measured (to a temporary file, then renamed)."""
        if not self._dirty:
            return
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.cache_path.with_name(f"{self.cache_path.name}.tmp-{os.getpid()}")
        temporary.write_text(json.dumps(self._data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, self.cache_path)
        self._dirty = False

    def memo(self, kind: str, key: str, compute):
        """A value computed once per machine and kept in the cache (e.g. a derived shape)."""
        table = self._mine()["memo"].setdefault(kind, {})
        if key not in table:
            table[key] = compute()
            self._dirty = True
        return table[key]

    # ------------------------------------------------------------------ the device

    @property
    def device(self) -> str:
        """The device `requested_device` resolves to here (`auto` resolved once per machine, then cached)."""
        name = self.requested_device.strip().lower()
        if name == "cpu":
            return "cpu"
        devices = self._mine()["devices"]
        if name not in devices and not self.measure:  # never resolved here, so nothing is cached for it either
            return f"cpu (device {name} not resolved: --no-measure)"
        if name not in devices:
            from engine.device import resolve_device

            try:
                resolved = resolve_device(name)
                devices[name] = f"{resolved.type}:{resolved.index}" if resolved.index is not None else resolved.type
            except Exception as err:  # noqa: BLE001 - the plan prices on the CPU and says why
                return f"cpu (device {name}: {err})"
            self._dirty = True
        return devices[name]

    # ------------------------------------------------------------------ speeds

    def entry_key(self, shape: Shape, length: int, int8: bool) -> str:
        device = self.device.split(" ")[0]
        return f"{device}|{shape.key}|{'int8' if int8 else 'fp32'}|L{length}|t{self.threads or 'default'}"

    def seconds_per_pass(self, shape: Shape, length: int, int8: bool = False) -> Speed:
        key = self.entry_key(shape, length, int8)
        if key in self.used:
            return self.used[key]
        self.labels[key] = f"{shape.label} {'int8' if int8 else 'fp32'} at {length} tokens"
        entries = self._mine()["entries"]
        if key in entries:
            entry = entries[key]
            load = f" at load {entry['load']:.1f}" if isinstance(entry.get("load"), (int, float)) else ""
            speed = Speed(float(entry["seconds"]), "cache", f"measured {entry.get('date', '?')}{load}")
        elif self.measure and not self.device.startswith("cpu ("):
            speed = self._measure(key, shape, length, int8)
        else:
            speed = Speed(prior_seconds(shape, length, int8, self.threads), "prior")
        self.used[key] = speed
        return speed

    def _measure(self, key: str, shape: Shape, length: int, int8: bool) -> Speed:
        started = time.perf_counter()
        label = f"{shape.label} {'int8' if int8 else 'fp32'} at {length} tokens on {self.device}"
        print(f"measuring {label} (first plan on this machine for this shape; cached in {self.cache_path})",
              file=self.log, flush=True)
        timed_share = min(shape.layers, MEASURED_LAYERS) / max(shape.layers, 1)  # measure() times this share of the depth
        per_sequence = prior_seconds(shape, length, int8, self.threads) * timed_share
        batch = max(1, min(32, round(TARGET_PASS_SECONDS / per_sequence)))
        try:
            seconds = measure(shape, length, batch, self.device, int8=int8, threads=self.threads)
        except Exception as err:  # noqa: BLE001 - a plan must not stop because a measurement failed
            return Speed(prior_seconds(shape, length, int8, self.threads), "prior",
                         f"measuring failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        spent = time.perf_counter() - started
        self.measuring_seconds += spent
        load = load_average()
        self._mine()["entries"][key] = {"seconds": seconds, "batch": batch, "date": time.strftime("%Y-%m-%d"),
                                        "spent": round(spent, 2), "load": load}
        self._dirty = True
        return Speed(seconds, "measured now", f"{spent:.1f} s" + (f", load {load:.1f}" if load is not None else ""))


def load_average() -> float | None:
    """The 1-minute load average when measuring: a figure taken on a busy machine is slow, and says so."""
    try:
        return round(os.getloadavg()[0], 1)
    except (AttributeError, OSError):
        return None


def prior_seconds(shape: Shape, length: int, int8: bool = False, threads: int | None = None) -> float:
    """Seconds per sequence by the documented per-core table (see the module docstring)."""
    anchors = {scratch_shape(size).key: _PRIOR_RATE[f"scratch:{size}"] for size in ("tiny", "small", "base")}
    anchors[ROBERTA_BASE.key] = _PRIOR_RATE["roberta-base"]
    from engine.study.shapes import MINILM

    anchors[MINILM.key] = _PRIOR_RATE["minilm"]
    if shape.key in anchors:
        rate = anchors[shape.key]
    else:  # scale roberta-base's rate by multiply-adds per token, no faster than the tiny model
        rate = min(_PRIOR_RATE["scratch:tiny"], _PRIOR_RATE["roberta-base"] * _flops(ROBERTA_BASE) / _flops(shape))
    cores = threads or 1
    seconds = 1.0 / (rate * cores) * max(1, length) / 256
    return seconds / INT8_PRIOR_SPEEDUP if int8 else seconds


def _flops(shape: Shape, length: int = 256) -> float:
    h, f = shape.hidden, shape.ffn
    return shape.layers * 2 * (4 * h * h + 2 * h * f + 2 * length * h)


def build_shape_model(shape: Shape, length: int):
    """A sequence classifier of `shape` with random weights, built without the initialisation pass."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification
    from transformers.initialization import no_init_weights

    common = dict(vocab_size=max(shape.vocab, 1000), hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                  num_attention_heads=shape.heads, intermediate_size=shape.ffn, num_labels=2)
    if shape.family == "bert":
        config, cls = BertConfig(max_position_embeddings=max(length, 512), **common), BertForSequenceClassification
    else:
        config = RobertaConfig(max_position_embeddings=max(length, 512) + 2, type_vocab_size=1, **common)
        cls = RobertaForSequenceClassification
    with no_init_weights():
        model = cls(config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():  # finite values of the usual size: no denormals, no NaNs
            parameter.uniform_(-0.05, 0.05, generator=generator)
    return model.eval()


def measure(shape: Shape, length: int, batch: int, device: str, *, int8: bool = False,
            threads: int | None = None, seconds: float = MEASURE_SECONDS, scale_depth: bool = True) -> float:
    """Seconds per sequence of a forward pass of `shape` at `length` tokens, batch `batch`, on `device`
    (timed on `MEASURED_LAYERS` layers and scaled by depth unless `scale_depth` is false)."""
    import torch

    from engine.device import resolve_device, synchronize

    import dataclasses

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    timed = shape
    if scale_depth and shape.layers > MEASURED_LAYERS:
        timed = dataclasses.replace(shape, layers=MEASURED_LAYERS, vocab=min(shape.vocab, 1000))
    try:
        model = build_shape_model(timed, length)
        if int8:
            from engine.common.int8 import quantize_int8

            model = quantize_int8(model)
            device = "cpu"  # dynamically quantized layers run on the CPU only
        target = resolve_device(device)
        model.to(target)
        ids = torch.randint(5, max(6, timed.vocab or 1000), (batch, length), device=target)
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            model(input_ids=ids[:1, :WARM_UP_TOKENS], attention_mask=mask[:1, :WARM_UP_TOKENS])  # warm-up, cheaply
            synchronize(target)
            started, done = time.perf_counter(), 0
            while done == 0 or (time.perf_counter() - started < seconds and done < 20 * batch):
                model(input_ids=ids, attention_mask=mask)
                synchronize(target)
                done += batch
        return (time.perf_counter() - started) / done * shape.layers / timed.layers
    finally:
        torch.set_num_threads(before)
