"""One writer per output: an exclusive lock file beside what a run writes.

Two `engine attack --resume` into one directory at once (an `engine study` retry does that)
would both append the same examples. So a run holds `flock` on a lock file for as long as it
writes; the file holds the holder's pid, host, start time and command, which is what a second
writer's error shows. The kernel drops an flock when its holder dies, however it dies
(SIGKILL included), so a lock file left behind by a dead run is recognised as stale: the next
run takes it over and says so. The holder removes the file when it finishes.

Where the file system has no flock (some network or FUSE mounts answer ENOLCK/EOPNOTSUPP), the
lock falls back to the pid in the file: a live pid on this host holds it, anything else is
stale. That fallback is best effort (two runs starting in the same instant can both pass it).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.errors import UserError


class Locked(UserError):
    """Another live process holds the lock; the message names it."""


def _describe(holder: dict[str, Any]) -> str:
    parts = [f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    if holder.get("command"):
        parts.append(f"running `{holder['command']}`")
    return ", ".join(parts)


def _read_holder(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    data = os.read(fd, 4096)
    if not data.strip():
        return None
    try:
        holder = json.loads(data)
    except ValueError:
        return {"pid": "?", "host": "?", "note": "unreadable lock file"}
    return holder if isinstance(holder, dict) else {"pid": "?", "host": "?"}


def _alive(holder: dict[str, Any]) -> bool:
    """The fallback's test: a pid on this host that still runs."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold `path` (a lock file, created if needed) for the block; `what` names the locked thing
    in the error a second writer gets."""
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            flocked = _flock(fd)
            holder = _read_holder(fd)
            if flocked is None or (flocked is False and holder is not None and _alive(holder)):
                raise Locked(f"{what} is in use by {_describe(holder or {})} (lock file {path}); wait for it to "
                             "finish or stop it")
            if not _same_file(fd, path):  # removed by its previous holder while we waited: take the new one
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        if holder is not None:
            print(f"note: {what}: took over the stale lock of {_describe(holder)}, which is no longer running "
                  f"({path})", file=sys.stderr)
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            if _same_file(fd, path):
                path.unlink()
        os.close(fd)


def _flock(fd: int) -> bool | None:
    """True: locked; None: held by another process; False: the file system has no flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return None
    except OSError as err:
        if err.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return False
        raise


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
