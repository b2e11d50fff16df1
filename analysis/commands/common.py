"""Options shared by `analysis report`, `stats` and `audit`."""
from __future__ import annotations

import argparse

from analysis.comparisons import FAMILY_SCHEMES
from analysis.loading import TRUNCATED
from analysis.stats import CORRECTIONS, DEFAULTS, ROLES, TESTS, choices


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
    for role, what in ROLES.items():  # one option per role, its choices from the registry (analysis/stats/procedures)
        p.add_argument(f"--{role}", choices=choices(role), default=DEFAULTS[role], metavar="TEST", dest=role.replace("-", "_"),
                       help=f"the test for {what.split(':')[0]}: " + ", ".join(
                           f"{name} ({TESTS[name].title})" for name in choices(role)) + f" (default {DEFAULTS[role]})")
    p.add_argument("--alpha", type=float, default=0.05, help="level for intervals and cliques (default 0.05)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples for intervals of means (default 1000; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def analyse_args(args: argparse.Namespace):
    from analysis.report import analyse
    from analysis.variants import parse_label_overrides

    return analyse(args.logs, labels=parse_label_overrides(args.label), correction=args.correction,
                   family_scheme=args.family, tests=chosen_tests(args), alpha=args.alpha, resamples=args.bootstrap,
                   seed=args.seed, worst=getattr(args, "worst", 10), truncated=getattr(args, "truncated", "include"))


def chosen_tests(args: argparse.Namespace) -> dict[str, str]:
    """Role -> test name, from the per-role options of `add_stats_options`."""
    return {role: vars(args)[role.replace("-", "_")] for role in ROLES}
