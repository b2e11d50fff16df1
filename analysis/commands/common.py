"""Options shared by `analysis report`, `stats` and `audit`."""
from __future__ import annotations

import argparse

from analysis.comparisons import FAMILY_SCHEMES
from analysis.loading import TRUNCATED
from analysis.stats import CORRECTIONS


def add_log_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--logs", nargs="+", required=True, metavar="DIR",
                   help="log directories written by `engine attack` (*.jsonl read recursively, manifest.json per run)")
    p.add_argument("--label", action="append", default=[], metavar="KEY=TEXT",
                   help="name a variant TEXT in every table and figure; KEY is a model name, a study's compression "
                        "name (original, prune, ...), a method or a derived label such as 'Pruned 50 %%' (repeatable)")
    p.add_argument("--truncated", choices=TRUNCATED, default="include",
                   help="records of programs longer than the model's window (attacked as the model reads them, "
                   "`truncated: true`): include them (default), exclude them, or analyse only them")


def add_stats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--correction", choices=CORRECTIONS, default="holm", help="multiple-comparison correction (default holm)")
    p.add_argument("--family", choices=FAMILY_SCHEMES, default="cell",
                   help="what a correction family is: cell (the comparisons of one outcome in one task x model x "
                        "attack; default), outcome (all cells of one outcome), all (every test)")
    p.add_argument("--mcnemar", choices=("midp", "exact"), default="midp", help="McNemar p-value (default mid-p)")
    p.add_argument("--alpha", type=float, default=0.05, help="level for intervals and cliques (default 0.05)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for intervals of means (default 1000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def analyse_args(args: argparse.Namespace):
    from analysis.report import analyse
    from analysis.variants import parse_label_overrides

    return analyse(args.logs, labels=parse_label_overrides(args.label), correction=args.correction,
                   family_scheme=args.family, mcnemar=args.mcnemar, alpha=args.alpha, resamples=args.bootstrap,
                   seed=args.seed, worst=getattr(args, "worst", 10), truncated=getattr(args, "truncated", "include"))
