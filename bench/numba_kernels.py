"""Speed of each numba kernel in `engine/kernels.py` against its NumPy/Python reference.

Sizes are what one attacked example produces (defaults; scale with --scale):

- edit distance: two 400-token programs that differ in a few renamed identifiers;
- grouped cosine top-k: 10 variables × 3 occurrences × 60 masked-LM proposals (180 rows per
  variable) of 768-dimensional embeddings, keep 30 per variable (ALERT on CodeBERT);
- importance ranking: 40 occurrences of 12 variables;
- tournament / roulette selection and steady-state replacement: a population of 11, 64 children
  per generation (ALERT's GA), two parents per child.

Both sides run on the same inputs in one process, after a warm-up call (numba's compile or
cache load is excluded), each repeated until it has run for --seconds; the table prints the
microseconds per call and the ratio reference / kernel.

    .venv/bin/python bench/numba_kernels.py [--seconds 0.5] [--scale 1]

Not named kernels.py: run as a script, bench/ comes first on sys.path and would shadow the
`kernels` package that transformers imports.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from engine import kernels  # noqa: E402


def per_call(function, args, seconds: float) -> float:
    function(*args)  # warm-up: compile or load from cache
    calls, started = 0, time.perf_counter()
    while True:
        function(*args)
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / calls


def workloads(scale: int, rng: np.random.Generator) -> dict[str, tuple]:
    tokens = rng.integers(0, 8000, 400 * scale)
    renamed = tokens.copy()
    renamed[rng.choice(len(tokens), 12 * scale, replace=False)] = rng.integers(0, 8000, 12 * scale)
    variables, rows_per_variable, dims = 10 * scale, 180, 768
    embeddings = rng.normal(size=(variables * rows_per_variable, dims)).astype(np.float32)
    offsets = np.arange(0, variables * rows_per_variable + 1, rows_per_variable)
    references = rng.normal(size=(variables, dims)).astype(np.float32)
    occurrences, owners = 40 * scale, 12 * scale
    drops = rng.normal(size=occurrences)
    owner = rng.integers(0, owners, occurrences)
    population, children = 11 * scale, 64 * scale
    fitness = rng.random(population)
    contenders = rng.integers(0, population, (2 * children, 3))
    uniforms = rng.random(2 * children)
    child_fitness = rng.random(children)
    return {
        "token_edit_distance": (tokens, renamed),
        "grouped_cosine_topk": (embeddings, offsets, references, 30),
        "rank_importance": (drops, owner, owners),
        "tournament_select": (fitness, contenders),
        "roulette_select": (fitness, uniforms),
        "steady_state_replace": (fitness, child_fitness),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per side per kernel (default 0.5)")
    parser.add_argument("--scale", type=int, default=1, help="multiply every size by this (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"{'kernel':<24}{'reference µs':>14}{'numba µs':>12}{'speed-up':>10}")
    for name, inputs in workloads(args.scale, rng).items():
        fast = getattr(kernels, name)
        slow = getattr(kernels, f"{name}_reference")
        reference = per_call(slow, inputs, args.seconds)
        kernel = per_call(fast, inputs, args.seconds)
        print(f"{name:<24}{reference * 1e6:>14.1f}{kernel * 1e6:>12.1f}{reference / kernel:>9.1f}×", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
