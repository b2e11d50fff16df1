"""Throughput of the language layer on real code, with the naive alternative in the same run.

Prints, for the 400 Devign C functions and the 660 Google Code Jam Python programs in
../shared/data: functions per second for extraction, and candidates per second for renaming
by span substitution from one parse against re-parsing and re-extracting every candidate
(what the reference attack scripts do), and their ratio.

    .venv/bin/python bench/code_layer.py [--candidates 30] [--repeat 3]

`--back-rename` measures instead, per language (Devign C, GCJ Python, JDK methods for Java when
a JDK with its sources is installed), the share of programs whose variables, renamed to fresh
names, may be renamed back to their original names (`bench/back_rename.py`), with the reasons
for the refusals; the time the first name check of an extraction takes (it builds the
collision index: one parse and one pass over the name tokens); and the rate of name checks
(`pair_rejection`, what an attack calls per proposed name) over the program's own words and
fresh names.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import back_rename, shared_data  # noqa: E402
from engine.code import Renamer, extract  # noqa: E402
from engine.code.rename import pair_rejection  # noqa: E402


def candidate_names(ext, count: int) -> list[str]:
    return back_rename.fresh_names(ext, count, "cand{}_")


def timed(function, repeat: int) -> float:
    """Best of `repeat` runs: the least disturbed measurement on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def bench_corpus(label: str, programs: list[tuple[str, str, str]], n_candidates: int, repeat: int) -> dict:
    extract_s = timed(lambda: [extract(code, language) for _, language, code in programs], repeat)
    extractions = [extract(code, language) for _, language, code in programs]
    work = []
    for ext in extractions:
        if ext.identifiers:
            target = max(ext.identifiers, key=lambda n: len(ext.identifiers[n].spans))
            work.append((ext, target, candidate_names(ext, n_candidates)))
    n_total = sum(len(names) for _, _, names in work)

    def by_spans():
        for ext, target, names in work:
            Renamer(ext).candidates(target, names)

    def by_reparsing():
        for ext, target, names in work:
            text = ext.text
            for name in names:
                fresh = extract(text, ext.language)  # parse + extract again, per candidate
                Renamer(fresh).apply({target: name})

    spans_s = timed(by_spans, repeat)
    reparse_s = timed(by_reparsing, max(1, repeat - 2))
    identifiers = statistics.mean(len(ext.identifiers) for ext in extractions)
    clean = sum(ext.parse_errors == 0 for ext in extractions) / len(extractions)
    return {
        "corpus": label,
        "programs": len(programs),
        "clean": clean,
        "identifiers": identifiers,
        "extract_per_s": len(programs) / extract_s,
        "cand_spans_per_s": n_total / spans_s,
        "cand_reparse_per_s": n_total / reparse_s,
    }


def corpora() -> list[tuple[str, list[tuple[str, str, str]]]]:
    found = [
        ("devign (C)", list(shared_data.devign_functions())),
        ("gcj (Python)", list(shared_data.gcj_programs())),
    ]
    if shared_data.jdk_source() is not None:
        found.append(("JDK (Java)", list(shared_data.jdk_methods(600))))
    return found


def bench_checks(programs: list[tuple[str, str, str]], n_names: int, repeat: int) -> tuple[float, float]:
    """Milliseconds per program to index its names (what the first check of an extraction pays),
    and name checks per second once indexed."""
    work = []
    for _, language, code in programs:
        ext = extract(code, language)
        if ext.identifiers:
            target = max(ext.identifiers, key=lambda n: len(ext.identifiers[n].spans))
            own = sorted(ext.names_in_program)[: n_names // 2]
            work.append((code, language, target, own + candidate_names(ext, n_names - len(own))))
    total = sum(len(names) for *_, names in work)
    fresh = [extract(code, language) for code, language, _, _ in work]
    start = time.perf_counter()
    for ext, (_, _, target, _) in zip(fresh, work):
        pair_rejection(ext, target, target + "_")  # the first check of an extraction indexes it
    index_ms = (time.perf_counter() - start) * 1000 / len(work)

    def again():
        for ext, (_, _, target, names) in zip(fresh, work):
            for name in names:
                pair_rejection(ext, target, name)

    return index_ms, total / timed(again, repeat)


def back_rename_report(n_names: int, repeat: int) -> None:
    header = f"{'corpus':<14}{'programs':>9}{'accepted':>10}{'share':>8}{'index ms/program':>18}{'checks/s':>10}"
    print(header)
    print("-" * len(header))
    refusals = []
    for label, programs in corpora():
        summary = back_rename.measure(programs)
        index_ms, rate = bench_checks(programs, n_names, repeat)
        print(f"{label:<14}{summary.programs:>9}{summary.accepted:>10}{summary.share:>8.1%}{index_ms:>18.2f}{rate:>10.0f}")
        refusals.extend((label, count, reason) for reason, count in summary.reasons.most_common())
    if refusals:
        print("\nrefusals of the way back (programs, reason):")
        for label, count, reason in refusals:
            print(f"  {label:<14}{count:>4}  {reason}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=30, help="candidates per program (default 30, as in MHM/ALERT)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--back-rename", action="store_true",
                        help="measure renaming back to the original names, and name checks per second")
    args = parser.parse_args()
    if not shared_data.available():
        print(f"no real data at {shared_data.SHARED_DATA}: nothing to measure", file=sys.stderr)
        return 1
    if args.back_rename:
        back_rename_report(args.candidates, args.repeat)
        return 0
    rows = [
        bench_corpus("devign (C)", list(shared_data.devign_functions()), args.candidates, args.repeat),
        bench_corpus("gcj (Python)", list(shared_data.gcj_programs()), args.candidates, args.repeat),
    ]
    header = f"{'corpus':<14}{'programs':>9}{'clean':>8}{'idents':>8}{'extract/s':>11}{'cands/s spans':>15}{'cands/s reparse':>17}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r["cand_spans_per_s"] / r["cand_reparse_per_s"]
        print(
            f"{r['corpus']:<14}{r['programs']:>9}{r['clean']:>8.1%}{r['identifiers']:>8.2f}"
            f"{r['extract_per_s']:>11.0f}{r['cand_spans_per_s']:>15.0f}{r['cand_reparse_per_s']:>17.0f}{ratio:>7.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
