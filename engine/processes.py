"""Child processes that do not outlive the process that started them.

Linux sends a child a signal of its choice when its parent dies (`PR_SET_PDEATHSIG`), however
the parent dies (SIGKILL included); `engine study`'s worker processes and the subprocesses its
stages start ask for SIGKILL, so killing the driver never leaves a worker finishing a cell
nobody will record. Elsewhere this is a no-op (macOS has no such signal; there the workers
notice the closed pipe to their driver when they ask for the next cell).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(parent: int | None = None) -> bool:
    """Ask for SIGKILL when the parent dies; True when the kernel will send it.

    `parent`: the pid the caller expects as its parent. A parent that died before the request
    was made (the child was re-parented already) gets the child killed at once: the signal
    would never come."""
    if _LIBC is None:
        return False
    if _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True
