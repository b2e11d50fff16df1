"""`analysis audit`: semantic-validity statistics per attack and model."""
from __future__ import annotations

import argparse
import json
import sys

from analysis.commands.common import add_log_options, add_stats_options, analyse_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit", help="semantic validity of successful adversarial examples per attack and model",
        description="Share of successful adversarial examples that re-parse, are alpha-equivalent, compile and pass "
                    "tests (each over the successes where the check ran), failures by reason, and the worst examples.")
    add_log_options(p)
    p.add_argument("--worst", type=int, default=10, metavar="N", help="list the N worst examples (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    add_stats_options(p)
    p.set_defaults(run=run_audit, bootstrap=0)


def run_audit(args: argparse.Namespace) -> int:
    from analysis.render import markdown_table
    from analysis.report import json_safe
    from analysis.tables import validity_full_table

    analysis = analyse_args(args)
    result = analysis.audit
    if args.json:
        payload = {"checks": result.checks.to_dicts(), "reasons": result.reasons.to_dicts(),
                   "worst": result.worst.drop("path").to_dicts()}
        json.dump(json_safe(payload), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    table = validity_full_table(analysis.inputs())
    if table is not None:
        print(markdown_table(table))
    for r in result.checks.iter_rows(named=True):
        print(f"- {r['attack']}, {r['model']}, {r['label']}: {r['compiles_differential']} of {r['compiles_checked']} "
              f"compile verdicts differential (the original does not compile on its own); {r['truncated']} of "
              f"{r['successes']} successes on truncated programs")
    print()
    print("### Failures by reason\n")
    print("| attack | model | compression | reason | count | example |\n|:---|:---|:---|:---|---:|:---|")
    for r in result.reasons.iter_rows(named=True):
        print(f"| {r['attack']} | {r['model']} | {r['label']} | {r['category']} | {r['count']} | {r['example']} |")
    print(f"\n### Worst examples (most failed checks, up to {args.worst})\n")
    for r in result.worst.iter_rows(named=True):
        print(f"- {r['example_id']} ({r['attack']}, {r['model']}, {r['label']}, seed {r['seed']}): "
              f"{r['failed_checks']} failed checks; reasons: {'; '.join(r['validity_reasons'] or []) or 'none given'}")
    return 0
