"""`analysis stats`: the statistical tests as a table, or JSON."""
from __future__ import annotations

import argparse
import json
import sys

from analysis.commands.common import add_log_options, add_stats_options, analyse_args, chosen_tests


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stats", help="paired statistical tests of compressed variants against their original",
        description="Cochran's Q and McNemar (binary outcomes), Wilcoxon signed-rank with rank-biserial, Cliff's delta "
                    "and A12 (continuous outcomes), Friedman with Kendall's W and post-hoc tests across cells "
                    "(the defaults; --paired-binary etc. choose other registered tests); corrected per family. "
                    "Prints a Markdown table, or every row as JSON with --json.")
    add_log_options(p)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_stats_options(p)
    p.set_defaults(run=run_stats, bootstrap=0)


def run_stats(args: argparse.Namespace) -> int:
    from analysis.render import markdown_table
    from analysis.report import json_safe
    from analysis.tables import ranking_table, tests_full_table

    analysis = analyse_args(args)
    if args.json:
        payload = {"correction": args.correction, "family_scheme": args.family, "tests": chosen_tests(args),
                   "rows": analysis.comparisons.rows,
                   "rankings": [vars(r) | {"pairwise": [[a, b, p] for (a, b), p in r.pairwise.items()]}
                                for r in analysis.comparisons.rankings]}
        json.dump(json_safe(payload), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        inputs = analysis.inputs()
        for table in (tests_full_table(inputs), ranking_table(inputs)):
            if table is not None:
                print(markdown_table(table))
    return 0
