"""What the `engine` and `analysis` programs share: parser assembly, error reporting and the
options every torch-running command takes.

Each program lists its command modules (each exposing `register(subparsers)`); user errors
print one line and exit 2, anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module

from engine.errors import USER_ERRORS, UserError


def assemble_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules:
        import_module(module).register(subparsers)
    return parser


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except USER_ERRORS as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `engine identifiers … | head`
        return 0


def parse_k_of_n(text: str | None, option: str) -> tuple[int, int] | None:
    """`K/N` (1 ≤ K ≤ N) -> (K, N): the K-th of N disjoint shares (`--shard`, `--part`)."""
    if text is None:
        return None
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UserError(f"{option} {text!r}: write K/N, e.g. 2/4") from None
    if not 1 <= k <= n:
        raise UserError(f"{option} {text!r}: need 1 ≤ K ≤ N")
    return k, n


def add_device_options(parser, device_note: str = "", backend: bool = True) -> None:
    """`--device`, `--threads` and `--backend`, worded the same in every command that runs torch.

    `backend=False` for commands that run only masked LMs (`pretrain-mlm`, `substitutes`): the
    backends are ways to run a sequence classifier, and an option that changes nothing would lie.
    """
    from engine.device import BACKENDS

    parser.add_argument("--device", default="auto",
                        help="auto (CUDA, then MPS, else CPU), cpu, cuda[:N], mps" + (f"; {device_note}" if device_note else ""))
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: one per core; fewer helps on a busy shared machine)")
    if not backend:
        return
    parser.add_argument("--backend", choices=tuple(BACKENDS), default="auto",
                        help="how a classifier's forward pass runs: " + "; ".join(f"{name}: {text}" for name, text in BACKENDS.items())
                        + ". All agree within float noise; the one used is recorded")
