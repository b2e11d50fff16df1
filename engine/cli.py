"""`engine`: datasets, training, compression, attacks and whole studies.

Each command lives in its own module under `engine/commands/` and exposes
`register(subparsers)`; this file only assembles them, so adding a command never means
editing another one.
"""
from __future__ import annotations

import argparse
import sys
from importlib import import_module

from engine.errors import USER_ERRORS

COMMAND_MODULES = (
    "engine.commands.attack",
    "engine.commands.code",
    "engine.commands.data",
    "engine.commands.train",
    "engine.commands.compress",
    "engine.commands.substitutes",
    "engine.commands.study",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engine",
        description="Fine-tune, compress and attack code models; every stage writes files with a manifest.",
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
        print(f"engine {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `engine identifiers … | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
