"""Run a Python program in a subprocess with limits: the labeller of `humaneval-defects`.

Each program runs as `python -I main.py` in a fresh temporary directory (its cwd, removed
afterwards) with a minimal environment (PATH and LANG only, so no token or key in the
parent's environment is visible), a wall-clock timeout that kills the whole process group,
and `resource.setrlimit` limits set in the child before exec: CPU seconds, address space,
size of any file written (stdout and stderr go to files, so an endless print is stopped by
the same limit), number of processes, no core dumps.

This guards against accidents in generated code (an infinite loop, a runaway allocation, a
stray file write); it is not a security boundary against code written to escape. The limit on
processes is not enforced by Linux for root (CAP_SYS_RESOURCE); the others are.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

try:  # POSIX only; on other systems the program runs with the timeout alone
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

PASSED, FAILED, TIMEOUT = "passed", "failed", "timeout"
_TAIL = 2000


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30  # address space
    file_bytes: int = 16 << 20  # any single file written, stdout and stderr included
    processes: int = 1  # RLIMIT_NPROC: no fork/exec of children (ignored for root)

    @property
    def cpu_s(self) -> int:
        return int(math.ceil(self.timeout_s)) + 1

    def to_json(self) -> dict:
        return {"timeout_s": self.timeout_s, "memory_bytes": self.memory_bytes,
                "file_bytes": self.file_bytes, "processes": self.processes, "cpu_s": self.cpu_s}


@dataclass(frozen=True)
class RunResult:
    status: str  # passed (exit 0) | failed (non-zero exit or killed by a limit) | timeout
    returncode: int | None
    wall_s: float
    stdout: str  # last characters only
    stderr: str

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def minimal_env() -> dict[str, str]:
    """PATH and LANG only: nothing else from the parent's environment reaches the program."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _limiter(limits: Limits) -> Callable[[], None] | None:
    if resource is None:  # pragma: no cover
        return None

    def apply() -> None:  # runs in the child between fork and exec: keep it simple
        def cap(which: int, value: int) -> None:
            _soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

        cap(resource.RLIMIT_CPU, limits.cpu_s)
        cap(resource.RLIMIT_AS, limits.memory_bytes)
        cap(resource.RLIMIT_FSIZE, limits.file_bytes)
        cap(resource.RLIMIT_CORE, 0)
        if hasattr(resource, "RLIMIT_NPROC"):
            cap(resource.RLIMIT_NPROC, limits.processes)

    return apply


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def run_python(source: str, limits: Limits = Limits(), python: str | None = None) -> RunResult:
    """Run `source` as a script under `limits`; exit status 0 means passed."""
    with tempfile.TemporaryDirectory(prefix="crt-sandbox-") as workdir:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(source)
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(
                [python or sys.executable, "-I", "main.py"],
                cwd=workdir,
                env=minimal_env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_limiter(limits),
                start_new_session=True,  # its own process group, killed as a whole
                close_fds=True,
            )
            try:
                returncode: int | None = process.wait(timeout=limits.timeout_s)
                status = PASSED if returncode == 0 else FAILED
            except BaseException as error:  # the timeout, or the caller interrupted
                _kill_group(process)  # before reaping, so the group id is still ours
                if not isinstance(error, subprocess.TimeoutExpired):
                    raise
                returncode, status = None, TIMEOUT
        wall = time.perf_counter() - start
        return RunResult(status, returncode, wall, _tail(out_path), _tail(err_path))


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the program and whatever it started in its process group, then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def run_many(
    sources: Sequence[str],
    limits: Limits = Limits(),
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[RunResult]:
    """`run_python` over many programs, `workers` at a time; results in input order."""
    results: list[RunResult | None] = [None] * len(sources)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run_python, source, limits): index for index, source in enumerate(sources)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(1)
    return results  # type: ignore[return-value]
