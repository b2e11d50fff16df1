"""`engine`: datasets, training, compression, attacks and whole studies.

Each command lives in its own module under `engine/commands/` and exposes
`register(subparsers)`; this file only assembles them, so adding a command never means
editing another one.
"""
from __future__ import annotations

import argparse
import sys

from engine.cli_base import run_command
from engine.common.cli import assemble_parser

COMMAND_MODULES = (  # in the order of the pipeline, as `engine --help` lists them
    "engine.commands.study",
    "engine.commands.data",
    "engine.commands.train",
    "engine.commands.augment",
    "engine.commands.compress",
    "engine.commands.substitutes",
    "engine.commands.attack",
    "engine.commands.code",
)


def build_parser() -> argparse.ArgumentParser:
    return assemble_parser(
        "engine",
        "Fine-tune, compress and attack code models; every stage writes files with a manifest.",
        COMMAND_MODULES,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
