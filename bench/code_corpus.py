"""Corpus mode against one process per file: `engine identifiers` and `engine rename` over real code.

For the Devign C functions in ../shared/data: programs per second when each program is a file
and a fresh `python -m engine identifiers FILE` process (what scripting the single-file CLI over a
corpus costs: interpreter and tree-sitter start-up every time), against `--jsonl IN` with 1 and
with `--workers` processes, and the ratio. Timings are wall clock on whatever else the machine runs.

    .venv/bin/python bench/code_corpus.py [--files 20] [--programs 400] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import shared_data  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def engine(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "engine", *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def per_file(functions: list[str], folder: Path) -> float:
    paths = []
    for i, code in enumerate(functions):
        path = folder / f"f{i:04d}.c"
        path.write_text(code, encoding="utf-8")
        paths.append(path)
    start = time.perf_counter()
    for path in paths:
        engine("identifiers", str(path))
    return len(paths) / (time.perf_counter() - start)


def corpus(command: list[str], path: Path, count: int, workers: int) -> float:
    start = time.perf_counter()
    engine(*command, "--jsonl", str(path), "--lang", "c", "--workers", str(workers), "--no-progress",
           "--out", str(path.with_suffix(".out")))
    return count / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20, help="programs run as one process each (default 20)")
    parser.add_argument("--programs", type=int, default=400, help="programs in the corpus runs (default 400)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the parallel corpus run (default 2)")
    args = parser.parse_args()
    if not shared_data.available():
        print("../shared/data is absent: nothing to measure", file=sys.stderr)
        return 1
    functions = [code for _, _, code in shared_data.devign_functions()][: args.programs]
    with tempfile.TemporaryDirectory(prefix="crt-corpus-") as directory:
        folder = Path(directory)
        path = folder / "devign.jsonl"
        path.write_text("".join(json.dumps({"idx": i, "func": code}) + "\n" for i, code in enumerate(functions)),
                        encoding="utf-8")
        renames = folder / "renames.jsonl"
        renames.write_text("".join(json.dumps({"idx": i, "func": code, "map": {}}) + "\n"
                                   for i, code in enumerate(functions)), encoding="utf-8")
        rows = [("identifiers, one process per file", per_file(functions[: args.files], folder), args.files)]
        for workers in sorted({1, args.workers}):
            rows.append((f"identifiers --jsonl, {workers} worker(s)", corpus(["identifiers"], path, len(functions), workers),
                         len(functions)))
        rows.append(("rename --jsonl (empty map: parse, rename, check)", corpus(["rename"], renames, len(functions), 1),
                     len(functions)))
    base = rows[0][1]
    print(f"{'mode':<52} {'programs':>8} {'programs/s':>11} {'vs per file':>12}")
    for name, rate, count in rows:
        print(f"{name:<52} {count:>8} {rate:>11.1f} {rate / base:>11.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
