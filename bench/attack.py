"""Attack speed: the engine as designed against a naive mode, side by side on the same examples.

For each recipe (MHM and ALERT by default) the same examples of a test split (`stdlib-attribution`
by default; `--data-format gcj --data ../shared/data/gcjpy` for real programs, many of them
longer than the model's window: attacked as the model reads them, as `engine attack` does) are
attacked twice in this process:

- `designed`: the victim as built (batch size --batch-size, length bucketing, program and
  token-sequence caches, candidates' token ids spliced into the original's, the default
  forward-pass backend: `fast` on the CPU), candidates made by span substitution from one parse
  per example;
- `before`:   the same with the `hf` backend (transformers' own forward), i.e. the engine before
  the `fast` backend: `before` vs `designed` is the old-vs-new comparison of the forward pass,
  and their records must be identical (every field but the timings; probabilities within 1e-6);
- `naive`:    what the published code does per candidate: batch size 1, no cache and no
  de-duplication (so every query is tokenized and run), and every candidate re-parsed and
  re-renamed from the source;
- `padded`:   naive, and every input padded to the model's maximum length as the published
  code does (optional: `--modes designed,naive,padded`);
- `interleaved`: designed, with `--interleave K` examples attacked at a time and their victim
  calls merged into one (cross-example batching, `engine.attacks.interleave`): what a GPU needs.

`--peak` then measures the victim's peak batched throughput on the attack's own mix of inputs
(each example's program as many times as the designed run sent it through the model, so the
lengths match; every copy runs, cache off; best over batch sizes up to 512) and prints, per
mode, the forward passes per second of wall time the attack reached and their share of that peak.

It prints, per mode: wall time and process CPU time (best of `--repeat` rounds, the modes taking
turns), queries, forward passes, the share of wall time spent inside the model's forward pass,
and each mode's wall-time ratio to `designed`, plus queries and seconds per example next to the
published ALERT figures. All modes use the same RNG streams, so they attack with the same
candidates; the script reports how many records agree.

ALERT needs natural substitutes; this benchmark measures the engine, not the substitutes
stage, so by default both ALERT runs draw from the random-name pool (`--alert-source pool`);
`--substitutes PATH` uses a cache written by `engine substitutes` instead.

    .venv/bin/python bench/attack.py --model /tmp/victim-small [--n 20] [--recipes mhm,alert] [--threads 1]
    .venv/bin/python bench/attack.py --model /tmp/victim-small --modes before,designed --repeat 3
    .venv/bin/python bench/attack.py --model /tmp/gcj-victim --data-format gcj --data ../shared/data/gcjpy
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# The repository root instead of this script's folder: the engine is imported from there, and no
# bench script can then shadow an installed package of the same name.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from engine.attacks import registry  # noqa: E402
from engine.attacks.base import AttackContext, Candidate  # noqa: E402
from engine.attacks.environment import make_environment  # noqa: E402
from engine.attacks.records import read_records  # noqa: E402
from engine.attacks.runner import AttackRunner, RunOptions, model_info  # noqa: E402
from engine.code import Renamer, extract  # noqa: E402

PUBLISHED = "ALERT on CodeBERT (Du et al.'s re-run, GCJ clone): ~4,000 queries and 2.9 min per example; " \
            "~1,260 queries and 0.9 min per successful example"


class NaiveContext(AttackContext):
    """Re-parses and re-renames the whole program for every candidate, as the published code does."""

    def render(self, candidate):
        if isinstance(candidate, dict):
            mapping = {old: new for old, new in candidate.items() if new != old}
            return Candidate(code=Renamer(extract(self.code, self.language)).apply(mapping), mapping=mapping)
        return super().render(candidate)


MODES = ("before", "designed", "interleaved", "naive", "padded")
TIMING_FIELDS = ("wall_time_s", "victim_time_s")
PROBABILITY_FIELDS = ("original_probability", "adversarial_probability")


def attack(recipe: str, mode: str, args, dataset, out: Path) -> dict:
    from engine.victim import Victim

    naive = mode in ("naive", "padded")
    backend = args.backend if mode in ("designed", "interleaved") else "hf"  # the published code runs transformers' forward
    victim = Victim.load(args.model, batch_size=1 if naive else args.batch_size, cache_size=0 if naive else 100_000,
                         dedupe=not naive, device=args.device, padding="max_length" if mode == "padded" else "longest",
                         backend=backend)
    params = registry.params_from_args(recipe)
    env = make_environment(dataset, victim, substitutes=args.substitutes)
    if recipe in ("alert", "mhm-ns") and args.substitutes is None:
        env.natural_substitutes = env.name_pool
    search = registry.build_search(recipe, params, env)
    runner = AttackRunner(victim=victim, dataset=dataset, search=search, out=out / f"{recipe}-{mode}",
                          model=model_info(args.model, victim),
                          options=RunOptions(attack=recipe, params=params, n=args.n, budget=args.budget,
                                             too_long=args.too_long, progress=False,
                                             compile_check=False, tests_check=False,
                                             interleave=args.interleave if mode == "interleaved" else 1))
    if naive:
        runner.context_factory = NaiveContext
    env.name_pool()  # build the pool outside the timed region (both modes share its cost)
    started, cpu = time.perf_counter(), time.process_time()
    runner.run()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    counters = victim.counters()
    records = read_records(runner.records_path)
    splicer = victim.splicer
    return {"wall": wall, "cpu": cpu, "backend": victim.describe()["backend"],
            "queries": counters.queries, "forward_passes": counters.forward_passes,
            "model_s": counters.model_seconds, "victim_s": counters.victim_seconds, "records": records,
            "batches": counters.batches,
            "spliced": splicer.spliced if splicer else 0, "tokenized_full": splicer.fallbacks if splicer else None}


def same_record(a: dict, b: dict, tolerance: float = 1e-6) -> bool:
    """Every field equal but the timings; probabilities equal within `tolerance` (float noise)."""
    for key in set(a) | set(b):
        if key in TIMING_FIELDS:
            continue
        x, y = a.get(key), b.get(key)
        if key in PROBABILITY_FIELDS and x is not None and y is not None:
            if abs(float(x) - float(y)) > tolerance:
                return False
        elif x != y:
            return False
    return True


def run_modes(recipe: str, modes: list[str], args, dataset, tmp: Path) -> dict[str, dict]:
    """Each mode `--repeat` times, taking turns; per mode the round with the least wall time."""
    results: dict[str, dict] = {}
    for round_ in range(args.repeat):
        for mode in modes:
            result = attack(recipe, mode, args, dataset, tmp / f"round{round_}")
            if mode in results and not all(map(same_record, result["records"], results[mode]["records"])):
                print(f"  {recipe} {mode}: round {round_ + 1} gave other records than an earlier round")
            if mode not in results or result["wall"] < results[mode]["wall"]:
                results[mode] = result
    return results


def peak_throughput(args, dataset, records: list[dict], limit: int = 2048) -> tuple[float, int, int]:
    """The victim's best sequences per second over batch sizes on the attack's mix of inputs: each
    example's input repeated as often as it went through the model (scaled to at most `limit`),
    every copy run (cache and de-duplication off). Returns (seq/s, batch size, inputs)."""
    from engine.victim import Victim

    by_id = {str(example.id): example for example in dataset.split("test")}
    weights = {r["example_id"]: r["forward_passes"] for r in records if r["forward_passes"]}
    scale = min(1.0, limit / max(1, sum(weights.values())))
    codes = [by_id[i].code for i, count in weights.items() for _ in range(max(1, round(count * scale)))]
    best = (0.0, 0)
    for batch_size in sorted({args.batch_size, 128, 256, 512}):
        victim = Victim.load(args.model, batch_size=batch_size, cache_size=0, dedupe=False, device=args.device,
                             backend=args.backend)
        victim.predict_proba(codes[:batch_size])  # warm-up at this batch size
        started = time.perf_counter()
        victim.predict_proba(codes)
        best = max(best, (len(codes) / (time.perf_counter() - started), batch_size))
    return best[0], best[1], len(codes)


def warm_up(args, dataset) -> None:
    """Pay one-time costs (numba kernels, the model's first forward, the name pool's parse) before timing."""
    from engine.attacks.runner import token_edit_distance

    token_edit_distance(["a", "b"], ["a", "c"])
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as tmp:
        for mode in ("designed", "before"):  # each backend's first forward pass too
            attack("mhm", mode, argparse.Namespace(**{**vars(args), "n": 2}), dataset, Path(tmp) / mode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a victim trained on stdlib-attribution")
    parser.add_argument("--n", type=int, default=20, help="test examples (default 20)")
    parser.add_argument("--recipes", default="mhm,alert", help="comma-separated (default mhm,alert)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--budget", type=int, default=None)
    parser.add_argument("--substitutes", default=None, help="ALERT/MHM-NS substitutes cache (default: random pool)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", default="before,designed,naive", help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--backend", default="auto", help="the designed mode's victim backend (default auto)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every mode, taking turns; best wall time")
    parser.add_argument("--interleave", type=int, default=8, help="examples at a time in the interleaved mode (default 8)")
    parser.add_argument("--peak", action="store_true", help="measure the victim's peak batched throughput and the "
                        "share of it each mode reaches")
    parser.add_argument("--data-format", default=None, help="a dataset file format (gcj, jsonl, …) instead of stdlib-attribution")
    parser.add_argument("--data", default=None, help="the dataset path for --data-format")
    parser.add_argument("--too-long", default="attack", help="programs longer than the model's window: attack (the "
                        "truncated view, as engine attack does) or error")
    args = parser.parse_args()
    if (args.data_format is None) != (args.data is None):
        parser.error("--data-format and --data go together")
    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if unknown := sorted(set(modes) - set(MODES)):
        parser.error(f"--modes: unknown {', '.join(unknown)}; use {', '.join(MODES)}")

    import torch

    torch.set_num_threads(args.threads)
    from engine.datasets.registry import load_dataset

    if args.data_format:
        dataset = load_dataset(args.data_format, args.data)
    else:
        dataset = load_dataset("stdlib-attribution", progress=False)
    warm_up(args, dataset)
    print(f"victim {args.model}; {args.n} test examples of {dataset.name} ({dataset.fingerprint}); "
          f"batch size {args.batch_size}; torch threads {args.threads}")
    header = (f"{'recipe':<8} {'mode':<9} {'backend':<8} {'wall s':>8} {'CPU s':>7} {'queries':>8} {'fwd':>8} "
              f"{'in fwd':>7} {'in victim':>9} {'ratio':>6}")
    with tempfile.TemporaryDirectory(prefix="bench-attack-") as tmp:
        for recipe in args.recipes.split(","):
            results = run_modes(recipe, modes, args, dataset, Path(tmp))
            print(header)
            base = results.get("designed")
            for mode, r in results.items():
                ratio = f"{r['wall'] / base['wall']:.2f}x" if base else ""
                print(f"{recipe:<8} {mode:<9} {r['backend']:<8} {r['wall']:>8.1f} {r['cpu']:>7.1f} {r['queries']:>8} "
                      f"{r['forward_passes']:>8} {r['model_s'] / r['wall']:>7.1%} {r['victim_s'] / r['wall']:>9.1%} "
                      f"{ratio:>6}")
            if args.peak:
                peak, peak_batch, inputs = peak_throughput(args, dataset, next(iter(results.values()))["records"])
                print(f"  victim peak batched throughput on this attack's inputs: {peak:.1f} seq/s (batch size "
                      f"{peak_batch}, {inputs} inputs, every one run)")
                for mode, r in results.items():
                    reached = r["forward_passes"] / r["wall"]
                    print(f"  {mode}: {reached:.1f} forward passes per second of wall time = {reached / peak:.0%} of "
                          f"the victim's peak {peak:.1f} seq/s")
            if base and "before" in results:
                old = results["before"]
                same = sum(same_record(a, b) for a, b in zip(base["records"], old["records"]))
                identical = same == len(base["records"]) == len(old["records"])
                print(f"  old vs new ({old['backend']} -> {base['backend']} backend): wall {old['wall'] / base['wall']:.2f}x, "
                      f"CPU {old['cpu'] / base['cpu']:.2f}x faster; records identical: "
                      f"{'yes' if identical else 'NO'} ({same}/{len(base['records'])}; every field but the timings, "
                      f"probabilities within 1e-6)")
                for a, b in zip(base["records"], old["records"]):
                    if not same_record(a, b):
                        fields = sorted(k for k in set(a) | set(b) if k not in TIMING_FIELDS and a.get(k) != b.get(k))
                        print(f"    {a['example_id']}: differs in {', '.join(fields)}")
            if base and "interleaved" in results:
                merged = results["interleaved"]
                same = sum(same_record(a, b, tolerance=1e-5) for a, b in zip(base["records"], merged["records"]))
                print(f"  interleaved ({args.interleave} examples at a time) vs designed: wall "
                      f"{base['wall'] / merged['wall']:.2f}x faster, {merged['batches']} model calls instead of "
                      f"{base['batches']}; records identical: {same}/{len(base['records'])} (every field but the "
                      "timings, probabilities within 1e-5: another batch composition changes them by float noise)")
            if base:
                if base["tokenized_full"] is not None:
                    print(f"  designed: {base['spliced']} inputs spliced into their original's token ids, "
                          f"{base['tokenized_full']} tokenized in full")
                records = base["records"]
                attacked = [x for x in records if x["status"] in ("success", "failed")]
                wins = [x for x in attacked if x["status"] == "success"]
                if attacked:
                    print(f"  designed: {len(wins)}/{len(attacked)} succeeded; per attacked example "
                          f"{sum(x['queries'] for x in attacked) / len(attacked):.0f} queries, "
                          f"{sum(x['wall_time_s'] for x in attacked) / len(attacked):.2f} s")
                if wins:
                    print(f"  per successful example {sum(x['queries'] for x in wins) / len(wins):.0f} queries, "
                          f"{sum(x['wall_time_s'] for x in wins) / len(wins):.2f} s")
                if "naive" in results:
                    differing = [(a, b) for a, b in zip(records, results["naive"]["records"])
                                 if a["status"] != b["status"] or a["rename_map"] != b["rename_map"]]
                    print(f"  records agreeing between modes (status and rename map): "
                          f"{len(records) - len(differing)}/{len(records)}")
                    for a, b in differing:  # batched and one-by-one inference differ by float noise
                        print(f"    {a['example_id']}: designed {a['status']} ({a['queries']} q), "
                              f"naive {b['status']} ({b['queries']} q)")
    print(f"published: {PUBLISHED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
