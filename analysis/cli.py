"""`analysis`: metrics, statistics, validity audit and reports over per-example attack logs.

Never imports torch or transformers: analysing a study must be possible on a laptop that
only has the logs.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

from engine.errors import USER_ERRORS

COMMAND_MODULES: tuple[str, ...] = (
    "analysis.commands.schema",
    "analysis.commands.report",
    "analysis.commands.stats",
    "analysis.commands.audit",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="analysis",
        description="Turn per-example attack logs into metrics, statistical tests and reports.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        import_module(module).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        print(f"analysis {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
