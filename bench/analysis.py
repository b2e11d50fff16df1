"""Time of the full `analysis report` on one million synthetic attack records.

Generates (vectorised, `analysis.synthetic`) a study with the real log schema: 3 tasks x 2
original models x 5 compression settings (none, prune 30 %, prune 50 %, int8, distilled) x
3 attacks, about 11,000 examples per run, one `records.jsonl` + `manifest.json` per run. Then
runs exactly what `analysis report` runs, in this process, and prints the time of

- tables + statistics: loading, metrics with 1,000-resample bootstrap intervals, every paired
  test, the audit, and the LaTeX, CSV and Markdown tables (the target: under 20 s on 2 cores);
- figures: the five figures in PDF, SVG and PNG;
- the HTML page (figures inlined, a gallery of adversarial examples read back from the logs).

    .venv/bin/python bench/analysis.py [--records 1000000] [--keep DIR] [--bootstrap 1000]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis import figures as figs  # noqa: E402
from analysis import report as rp  # noqa: E402
from analysis.synthetic import Study, Variant, write_study  # noqa: E402

TASKS = (("defect", "devign-like", "c", 2), ("authorship", "gcj-like", "python", 10), ("clone", "bcb-like", "java", 2))


def variants(base: str, size: float) -> list[Variant]:
    return [
        Variant(base, size_mb=size),
        Variant(f"{base}-prune30", "prune", {"sparsity": 0.3}, 0.84, 0.03, size * 0.7),
        Variant(f"{base}-prune50", "prune", {"sparsity": 0.5}, 0.82, 0.08, size * 0.5),
        Variant(f"{base}-int8", "quantize", {"bits": 8}, 0.845, 0.02, size / 4),
        Variant(f"{base}-distilled", "distill", {"layers": 3}, 0.80, 0.12, size / 8),
    ]


def generate(root: Path, records: int) -> int:
    runs_per_task = 2 * 5 * 3
    examples = max(10, records // (len(TASKS) * runs_per_task))
    total = 0
    for i, (task, dataset, language, labels) in enumerate(TASKS):
        for j, (base, size) in enumerate((("codebert", 480.0), ("graphcodebert", 500.0))):
            study = Study(dataset=dataset, task=task, language=language, labels=labels, examples=examples,
                          attacks=("mhm", "alert", "wir-random"), variants=variants(base, size), code_chars=300)
            write_study(root / f"{task}-{base}", study, random_seed=10 * i + j)
            total += examples * 5 * 3
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--keep", help="write the logs and the report here instead of a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(args.keep or scratch)
        start = time.perf_counter()
        if (root / "logs").is_dir():
            raise SystemExit(f"{root / 'logs'} exists: give an empty --keep directory")
        total = generate(root / "logs", args.records)
        size = sum(p.stat().st_size for p in (root / "logs").rglob("*.jsonl")) / 1e6
        print(f"generated {total:,} records ({size:,.0f} MB of JSONL) in {time.perf_counter() - start:.1f} s")

        start, cpu = time.perf_counter(), time.process_time()
        analysis = rp.analyse([root / "logs"], resamples=args.bootstrap)
        rp.write_report(analysis, root / "report", ["latex", "csv", "md"], make_figures=False, pdf=False)
        tables, cpu = time.perf_counter() - start, time.process_time() - cpu
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in analysis.timings.items() if k not in ("figures", "render"))
        print(f"tables + statistics: {tables:.1f} s wall, {cpu:.1f} s CPU (all threads)  ({steps})")
        print(f"  load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"  {analysis.metrics.height} cells, {len(analysis.comparisons.rows)} statistical tests")

        start = time.perf_counter()
        made = figs.make_figures(analysis.inputs(), root / "report" / "figures")
        print(f"figures: {time.perf_counter() - start:.1f} s ({len(made)} figures x PDF/SVG/PNG)")

        start = time.perf_counter()
        rp.write_report(analysis, root / "report", ["html"], make_figures=True, pdf=False)
        print(f"HTML page (figures again, gallery): {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
