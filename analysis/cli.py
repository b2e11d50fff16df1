"""`analysis`: metrics, statistics, validity audit and reports over per-example attack logs.

Never imports torch or transformers: analysing a study must be possible on a laptop that
only has the logs.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

COMMAND_MODULES: tuple[str, ...] = ("analysis.commands.schema",)


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
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
