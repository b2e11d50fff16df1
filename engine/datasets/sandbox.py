"""Run a Python program with limits and, where Linux allows, in isolation: the labeller of
`humaneval-defects` and the tests check of adversarial programs.

The programs are untrusted (an attack wrote them), so each runs:

- with resource limits (`Limits`): a wall-clock timeout, CPU seconds, address space, the size
  of any file written (stdout and stderr go to files, so an endless print is stopped too), the
  number of processes, no core dumps; set by a few lines of Python in the program's own process
  before it runs (`_PROLOGUE`), so nothing runs between fork and exec in this one;
- with an environment of PATH and LANG only;
- where user namespaces are available, under bubblewrap (`bwrap`, a Debian package) in new
  user, mount, PID, network, IPC, UTS and cgroup namespaces (`bwrap_command`). What that
  guarantees is in docs/datasets.md ("The sandbox"): it sees the system's programs and
  libraries and the Python installation read-only and nothing else of the file system (no
  /etc, /home, /root, /work, no other process in /proc); it can write only into a private
  working directory of `Limits.workspace_bytes` (a tmpfs, gone afterwards); it has no network
  but its own empty loopback; it runs as an unprivileged user without capabilities; and every
  process it starts dies when it ends (the PID namespace is torn down), a timeout or the
  death of this process included;
- without namespaces (no bwrap, or a kernel or container that forbids them), in a fresh
  temporary directory and its own process group, killed as a group afterwards. That is only a
  guard against accidents: the program can read what this user can read, use the network,
  write outside its directory, and a child that calls setsid() escapes the group kill. The
  first run says so on stderr (`isolation()` tells why).
"""
from __future__ import annotations

import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

PASSED, FAILED, TIMEOUT = "passed", "failed", "timeout"
_TAIL = 2000
# Run as the program's first lines, in its own process: limits it cannot raise again, then the
# program as __main__ (runpy compiles it separately, so `from __future__` imports still work).
_PROLOGUE = """\
import json, resource, runpy, sys
for name, value in json.loads(sys.argv[1]).items():
    which = getattr(resource, name, None)
    if which is not None:
        hard = resource.getrlimit(which)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, value))
sys.argv = ["main.py"]
runpy.run_path("main.py", run_name="__main__")
"""


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0
    memory_bytes: int = 1 << 30  # address space
    file_bytes: int = 16 << 20  # any single file written, stdout and stderr included
    processes: int = 1  # RLIMIT_NPROC: no fork/exec of children (Linux ignores it for root outside a namespace)
    workspace_bytes: int = 64 << 20  # all files written together (isolated runs: a tmpfs of this size)

    @property
    def cpu_s(self) -> int:
        return int(math.ceil(self.timeout_s)) + 1

    def to_json(self) -> dict:
        return {"timeout_s": self.timeout_s, "memory_bytes": self.memory_bytes,
                "file_bytes": self.file_bytes, "processes": self.processes, "cpu_s": self.cpu_s,
                "workspace_bytes": self.workspace_bytes}

    def rlimits(self) -> dict[str, int]:
        return {"RLIMIT_CPU": self.cpu_s, "RLIMIT_AS": self.memory_bytes, "RLIMIT_FSIZE": self.file_bytes,
                "RLIMIT_CORE": 0, "RLIMIT_NPROC": self.processes}


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


@dataclass(frozen=True)
class Isolation:
    kind: str  # "namespaces" (bubblewrap) or "none"
    reason: str  # why there is none (empty with namespaces)


def minimal_env() -> dict[str, str]:
    """PATH and LANG only: nothing else from the parent's environment reaches the program."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _interpreter(python: str | None) -> str:
    """The real interpreter file (a virtualenv's `python` is a link to it; the sandbox runs the
    standard library only, so the virtualenv itself need not be visible)."""
    return os.path.realpath(python or sys.executable)


def _system_binds() -> list[str]:
    """Read-only binds of the system's programs and libraries; merged-/usr links stay links."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", name, name]  # how the dynamic linker and Debian's links find things
    return args


def bwrap_command(interpreter: str, workdir: str, limits: Limits) -> list[str]:
    """bubblewrap around `interpreter -I -c PROLOGUE`, with `workdir` a private tmpfs holding main.py."""
    prefix = str(Path(interpreter).parent.parent)  # e.g. /usr, or a pyenv or conda installation
    args = ["bwrap", "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
            *_system_binds()]
    if not prefix.startswith("/usr"):
        args += ["--ro-bind", prefix, prefix]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--size", str(limits.workspace_bytes), "--perms", "0700", "--tmpfs", workdir,
             "--ro-bind", os.path.join(workdir, "main.py"), os.path.join(workdir, "main.py"),
             "--chdir", workdir, "--remount-ro", "/"]
    if _bwrap_supports("--disable-userns"):
        args.append("--disable-userns")
    return [*args, "--", interpreter, "-I", "-c", _PROLOGUE, json.dumps(limits.rlimits())]


@functools.lru_cache(maxsize=None)
def _bwrap_supports(flag: str) -> bool:
    try:
        help_text = subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return flag in help_text


@functools.lru_cache(maxsize=None)
def isolation(python: str | None = None) -> Isolation:
    """Whether programs run in namespaces here: a trial run of the real command, once per process."""
    if os.environ.get("CRT_SANDBOX") == "none":
        return Isolation("none", "CRT_SANDBOX=none is set")
    if shutil.which("bwrap") is None:
        return Isolation("none", "bubblewrap (bwrap) is not installed")
    if not _bwrap_supports("--size"):
        return Isolation("none", "this bubblewrap is too old (no --size; 0.5 or later is needed)")
    with tempfile.TemporaryDirectory(prefix="crt-sandbox-") as workdir:
        Path(workdir, "main.py").write_text("print('ok')\n", encoding="utf-8")
        command = bwrap_command(_interpreter(python), workdir, Limits(timeout_s=20))
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=minimal_env(),
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as err:
            return Isolation("none", f"bwrap did not run ({err})")
    if done.returncode != 0 or done.stdout.strip() != "ok":
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        return Isolation("none", f"bwrap cannot create namespaces here ({lines[-1] if lines else done.returncode})")
    return Isolation("namespaces", "")


_warned: set[str] = set()


def _warn_once(found: Isolation) -> None:
    if found.reason not in _warned:
        _warned.add(found.reason)
        print(f"warning: the sandbox runs programs without namespaces: {found.reason}. They are limited in time, "
              "memory and file size only: they can read this user's files, use the network and write outside their "
              "directory (docs/datasets.md, The sandbox)", file=sys.stderr)


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
    """Run `source` as a script under `limits`, isolated where possible; exit status 0 means passed."""
    found = isolation(python)
    if found.kind == "none":
        _warn_once(found)
    interpreter = _interpreter(python)
    with tempfile.TemporaryDirectory(prefix="crt-sandbox-") as workdir:
        with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as handle:
            handle.write(source)
        if found.kind == "namespaces":
            command = bwrap_command(interpreter, workdir, limits)
        else:
            command = [interpreter, "-I", "-c", _PROLOGUE, json.dumps(limits.rlimits())]
        out_path, err_path = os.path.join(workdir, ".stdout"), os.path.join(workdir, ".stderr")
        start = time.perf_counter()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            process = subprocess.Popen(command, cwd=workdir, env=minimal_env(), stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=err, start_new_session=True,  # its own process group, killed as a whole
                                       close_fds=True)
            try:
                returncode: int | None = process.wait(timeout=limits.timeout_s)
                status = PASSED if returncode == 0 else FAILED
            except BaseException as error:  # the timeout, or the caller interrupted
                returncode, status = None, TIMEOUT
                if not isinstance(error, subprocess.TimeoutExpired):
                    _kill_group(process)
                    raise
            finally:
                _kill_group(process)  # what it left running (a namespace dies with bwrap anyway)
        wall = time.perf_counter() - start
        return RunResult(status, returncode, wall, _tail(out_path), _tail(err_path))


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the program's process group (bwrap, or the program and its children), then reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if process.poll() is None:
            process.kill()
    process.wait()


def run_many(
    sources: Sequence[str],
    limits: Limits = Limits(),
    workers: int = 2,
    progress: Callable[[int], None] | None = None,
) -> list[RunResult]:
    """`run_python` over many programs, `workers` at a time; results in input order."""
    isolation()  # probe (and warn) once, before the threads start
    results: list[RunResult | None] = [None] * len(sources)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(run_python, source, limits): index for index, source in enumerate(sources)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            if progress is not None:
                progress(1)
    return results  # type: ignore[return-value]
