"""What the `engine` and `analysis` programs share: parser assembly and the guarded run.

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib import import_module

from engine.common.errors import UserError

# What a stopped command says about the files it had written, unless its program says more.
KEPT_DEFAULT = "files completed before this point are intact"


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


def run_guarded(prog: str, command: str, call: Callable[[], int | None], out: str | None = None, *,
                user_errors: tuple[type[Exception], ...] = (UserError,), kept: str = KEPT_DEFAULT) -> int:
    """Run a command's handler; user errors, interruptions and refused writes become one line.

    `user_errors`: the exception types the program reports without a traceback; `kept`: what
    the command says about its files when stopped.
    """
    try:
        with sigterm_interrupts():
            return int(call() or 0)
    except user_errors as err:
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


def run_command(parser: argparse.ArgumentParser, argv: list[str] | None, *,
                user_errors: tuple[type[Exception], ...] = (UserError,),
                kept: Mapping[str, str] | None = None) -> int:
    """Parse `argv` and run the chosen command's handler under `run_guarded`; `kept` says, per
    command, what a stopped run leaves behind (default: `KEPT_DEFAULT`)."""
    args = parser.parse_args(argv)
    return run_guarded(parser.prog, args.command, lambda: args.run(args), out=getattr(args, "out", None),
                       user_errors=user_errors, kept=(kept or {}).get(args.command, KEPT_DEFAULT))
