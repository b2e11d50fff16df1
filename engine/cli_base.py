"""What the `engine` and `analysis` programs share: parser assembly, error reporting and the
options every torch-running command takes.

Each program lists its command modules (each exposing `register(subparsers)`); user errors
print one line and exit 2, anything else is a bug and keeps its traceback. Three things that are
not bugs print one line too: Ctrl-C and SIGTERM (exit 130 / 143: what was written so far is
kept), and a write refused by the file system (full disk, read-only, no permission: exit 2,
naming the path). Every `type=float` option of every command accepts finite numbers only: a
NaN or an infinity would reach `manifest.json` as `NaN`/`Infinity`, which strict JSON rejects.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module

from engine.errors import USER_ERRORS, UserError


def assemble_parser(prog: str, description: str, modules: Sequence[str]) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules:
        import_module(module).register(subparsers)
    return parser


class Parser(argparse.ArgumentParser):
    """argparse with one extra rule for every `type=float` option of every command (subcommands
    inherit the class, so options other modules add later are covered too): finite numbers only."""

    def _get_value(self, action, arg_string):
        value = super()._get_value(action, arg_string)
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentError(action, f"{arg_string!r} is not a finite number (NaN and infinities are refused)")
        return value


# What a command says about the files it had written when it is stopped (interrupted or a
# write refused); commands not listed keep the general sentence.
KEPT = {
    "attack": "the records written so far are intact (a partly written last line is cut by --resume); "
              "run the same command with --resume to continue",
    "study": "finished cells are kept; run the same command again to continue",
}
_KEPT_DEFAULT = "files completed before this point are intact"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is (like Ctrl-C) so that cleanup code runs."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def storage_error(err: OSError, out: str | None = None) -> str | None:
    """One line for an operation the file system refused (full, read-only, no permission); None otherwise."""
    causes = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
              errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted", errno.EFBIG: "the file is too large"}
    if err.errno not in causes:
        return None
    where = err.filename or (f"a file under {out}" if out else "an output file")
    verb = "access" if err.errno in (errno.EACCES, errno.EPERM) else "write"  # those two refuse reads too
    return f"cannot {verb} {where}: {causes[err.errno]} ({err.strerror})"


def run_guarded(prog: str, command: str, call: Callable[[], int | None], out: str | None = None) -> int:
    """Run a command's handler; user errors, interruptions and refused writes become one line."""
    kept = KEPT.get(command, _KEPT_DEFAULT)
    try:
        with sigterm_interrupts():
            return int(call() or 0)
    except USER_ERRORS as err:
        print(f"{prog} {command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `engine identifiers … | head`
        return 0
    except KeyboardInterrupt as err:
        name = "SIGTERM" if isinstance(err, Terminated) else "Ctrl-C (SIGINT)"
        print(f"\n{prog} {command}: stopped by {name}; {kept}", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
    except OSError as err:
        message = storage_error(err, out)
        if message is None:
            raise
        print(f"{prog} {command}: error: {message}; {kept}", file=sys.stderr)
        return 2


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    return run_guarded(parser.prog, args.command, lambda: args.run(args), out=getattr(args, "out", None))


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
