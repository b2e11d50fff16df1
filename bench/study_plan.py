"""How long `engine study --dry-run` takes: cold (no throughput cache), warm, and with `--no-measure`.

Each run is a fresh `python -m engine study … --dry-run` (interpreter start-up and imports
included, as a user sees it) with its own cache folder (`CRT_CACHE_DIR`): "cold" starts from an
empty one and measures every shape the plan needs, "warm" reads what the cold run cached,
"no-measure" prices from the prior table. Prints wall seconds (median and range over the
repeats) side by side, with the load average, since a shared machine slows the measuring.

    .venv/bin/python bench/study_plan.py [--preset paper] [--repeat 3]
    .venv/bin/python bench/study_plan.py --check-depth   # depth-scaled timing vs the whole model

`--check-depth` times the presets' 12-layer shapes whole and as the plan does (two layers, scaled
by depth), side by side, and prints the ratio: the scaled figure should sit within a few per
cent of the whole one (above it by the embeddings' and head's share).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dry_run(preset: str, cache: Path, out: Path, *extra: str) -> float:
    env = {**os.environ, "CRT_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine", "study", "--preset", preset, "--out", str(out),
                           "--dry-run", *extra], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the dry run failed:\n{done.stderr[-2000:]}")
    return seconds


def check_depth(repeat: int) -> None:
    from engine.study.shapes import ROBERTA_BASE
    from engine.study.throughput import measure

    print(f"depth-scaled vs whole-model timing, 1 sequence per pass, best of {repeat}, load {os.getloadavg()[0]:.1f}")
    for length in (256, 512):
        whole = min(measure(ROBERTA_BASE, length, 1, "cpu", scale_depth=False, seconds=2.0) for _ in range(repeat))
        scaled = min(measure(ROBERTA_BASE, length, 1, "cpu", seconds=1.0) for _ in range(repeat))
        print(f"  {ROBERTA_BASE.label} at {length} tokens: whole {whole * 1000:7.1f} ms   "
              f"scaled {scaled * 1000:7.1f} ms   scaled/whole {scaled / whole:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--check-depth", action="store_true", help="compare depth-scaled and whole-model timings")
    args = parser.parse_args()
    if args.check_depth:
        check_depth(args.repeat)
        return
    datasets = Path(os.environ.get("CRT_CACHE_DIR") or Path.home() / ".cache" / "code-robustness-toolkit") / "datasets"
    times: dict[str, list[float]] = {"cold": [], "warm": [], "no-measure": []}
    loads = []
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.repeat):
            cache = Path(scratch) / f"cache-{index}"
            cache.mkdir()
            if datasets.is_dir():  # builtin datasets are counted, not rebuilt: only throughput starts cold
                (cache / "datasets").symlink_to(datasets)
            out = Path(scratch) / "study"
            loads.append(os.getloadavg()[0])
            times["cold"].append(dry_run(args.preset, cache, out))
            times["warm"].append(dry_run(args.preset, cache, out))
            empty = Path(scratch) / f"empty-{index}"
            empty.mkdir()
            if datasets.is_dir():
                (empty / "datasets").symlink_to(datasets)
            times["no-measure"].append(dry_run(args.preset, empty, out, "--no-measure"))
    print(f"engine study --preset {args.preset} --dry-run, {args.repeat} runs each, {os.cpu_count()} cores, "
          f"load average {min(loads):.1f}-{max(loads):.1f}")
    cold = statistics.median(times["cold"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<11} {median:6.1f} s  (range {min(values):.1f}-{max(values):.1f} s)  "
              f"cold/this {cold / median:4.1f}x")


if __name__ == "__main__":
    main()
