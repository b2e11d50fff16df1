"""`analysis`: metrics, statistics, validity audit and reports over per-example attack logs.

Never imports torch or transformers: analysing a study must be possible on a laptop that
only has the logs.
"""
from __future__ import annotations

import argparse
import sys

from engine.common.cli import assemble_parser, run_command

COMMAND_MODULES: tuple[str, ...] = (
    "analysis.commands.schema",
    "analysis.commands.report",
    "analysis.commands.stats",
    "analysis.commands.audit",
)


def build_parser() -> argparse.ArgumentParser:
    return assemble_parser(
        "analysis",
        "Turn per-example attack logs into metrics, statistical tests and reports.",
        COMMAND_MODULES,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
