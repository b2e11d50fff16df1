"""What every `engine` command shares beyond `engine.common.cli`: the errors it reports in one
line, what a stopped command says about its files, and the options every torch-running command
takes (worded the same everywhere)."""
from __future__ import annotations

import argparse
from collections.abc import Callable

from engine.common import cli
from engine.errors import USER_ERRORS, UserError

# What a command says about the files it had written when it is stopped (interrupted or a
# write refused); commands not listed keep `engine.common.cli.KEPT_DEFAULT`.
KEPT = {
    "attack": "the records written so far are intact (a partly written last line is cut by --resume); "
              "run the same command with --resume to continue",
    "study": "finished cells are kept; run the same command again to continue",
}


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Run an `engine` command: the language layer's input errors are user errors too."""
    return cli.run_command(parser, argv, user_errors=USER_ERRORS, kept=KEPT)


def run_guarded(prog: str, command: str, call: Callable[[], int | None], out: str | None = None) -> int:
    """`engine.common.cli.run_guarded` with the engine's user errors and stop messages."""
    return cli.run_guarded(prog, command, call, out, user_errors=USER_ERRORS,
                           kept=KEPT.get(command, cli.KEPT_DEFAULT))


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
