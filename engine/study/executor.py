"""Where cells run: in this process, in a pool of worker processes, or as Ray tasks.

Every executor runs the same function, `execute(task, runner)`, which runs a cell's stage calls
with their output in the cell's `log.txt` and returns an `Outcome` (never raises for a failing
stage: the reason travels back as one line). Executors only differ in where that function runs
and how many at once:

- `local` (default): one cell at a time in this process; the stages' own progress bars show.
- `process`: `--jobs N` worker processes (spawned, so no forked torch state); each worker keeps
  its imports between cells, dies with the driver (`engine.processes`) and leaves Ctrl-C to it.
- `ray`: each cell a Ray task requesting `threads` CPUs (default 1) and `[study] gpus` GPUs, on a
  local Ray instance or the cluster at `--ray-address`. With shared storage the tasks write into
  the study's folder directly; with `copy` storage (the default on a cluster) a task receives
  the folders of the cells it depends on through Ray's object store, runs in a scratch folder
  on its node (an interrupted cell starts again there), and sends its cell's folder back, where the driver unpacks it: the same
  "merge by copying directories" that combines results from several machines by hand.

The driver (`engine.study.run`) writes the done-markers; executors never do. A cell runs under
an exclusive lock on its folder (`cell.lock`), so a second driver running the same cell at the
same time fails that cell with the holder's pid and host instead of writing beside it.
"""
from __future__ import annotations

import concurrent.futures as futures
import contextlib
import io
import json
import multiprocessing
import os
import resource
import shutil
import signal
import sys
import tarfile
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from engine.errors import UserError
from engine.locks import Locked, exclusive
from engine.processes import die_with_parent
from engine.study.plan import Cell
from engine.study.stages import CliRunner, StageCall, StageFailed, StageRunner, first_line, prepare_output

EXECUTORS = ("local", "process", "ray")
LOG_NAME = "log.txt"
LOCK_NAME = "cell.lock"


@dataclass
class CellTask:
    cell: Cell
    calls: list[StageCall]
    root: str  # the study's folder as seen by whoever runs the task
    capture: str = "stdout"  # stdout: only stdout to the log (local bars stay visible); all: fds 1 and 2
    inputs: list[str] = field(default_factory=list)  # cell directories a copying executor must ship


@dataclass
class Outcome:
    name: str
    ok: bool
    seconds: float
    reason: str | None = None
    ran: bool = True  # False when the output was already complete and no stage ran
    cpu_seconds: float | None = None  # CPU time of the stage (this process's threads and its subprocesses)
    archive: bytes | None = None  # the cell's folder, from a copying executor


def execute(task: CellTask, runner: StageRunner | None = None) -> Outcome:
    """Run one cell's calls; the outcome says whether they succeeded and, if not, why (one line)."""
    runner = runner or CliRunner()
    root = Path(task.root)
    cell = task.cell
    directory = root / cell.directory
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with exclusive(directory / LOCK_NAME, f"study cell {cell.name}"):
            return _execute(task, runner, directory)
    except Locked as err:  # another driver runs this cell now
        return Outcome(cell.name, False, 0.0, first_line(str(err)), ran=False)


def _execute(task: CellTask, runner: StageRunner, directory: Path) -> Outcome:
    root, cell = Path(task.root), task.cell
    (directory / "cell.json").write_text(json.dumps(cell.to_json(), indent=2) + "\n", encoding="utf-8")
    output = root / cell.output
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    ran = False
    with open(directory / LOG_NAME, "a", encoding="utf-8", buffering=1) as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {cell.name} (key {cell.key})\n")
        try:
            for call in task.calls:
                if not prepare_output(call, output):
                    log.write(f"output complete, not re-run: {call.program} {call.argv[0]}\n")
                    continue
                argv = call.resolved(root, output)
                log.write(f"$ {call.program} {' '.join(argv)}\n")
                ran = True
                with _captured(task.capture, log):
                    runner.run(call, argv, log)
        except StageFailed as err:
            log.write(f"FAILED: {err}\n")
            return Outcome(cell.name, False, time.perf_counter() - started, str(err), ran)
        except Exception as err:  # noqa: BLE001 - e.g. an unset variable in a path; reported, not raised
            log.write(f"FAILED: {type(err).__name__}: {err}\n")
            return Outcome(cell.name, False, time.perf_counter() - started, first_line(str(err)) or type(err).__name__, ran)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
        log.write(f"ok in {seconds:.1f} s ({cpu:.1f} CPU seconds)\n")
    return Outcome(cell.name, True, seconds, None, ran, cpu)


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished subprocesses (a shared machine's honest clock)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def _captured(mode: str, log: TextIO):
    """`all`: file descriptors 1 and 2 into the log (child processes and C code included)."""
    if mode != "all":
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    log.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


# --------------------------------------------------------------------------- executors


class LocalExecutor:
    """One cell at a time, in this process."""

    capture = "stdout"

    def __init__(self, runner: StageRunner | None = None) -> None:
        self.runner = runner
        self.slots = 1
        self.queue: deque[CellTask] = deque()

    def submit(self, task: CellTask) -> None:
        self.queue.append(task)

    def wait(self, timeout: float) -> list[Outcome]:
        return [execute(self.queue.popleft(), self.runner)] if self.queue else []

    def close(self, abort: bool = False) -> None:
        self.queue.clear()


class ProcessExecutor:
    """A pool of `jobs` spawned worker processes."""

    capture = "all"

    def __init__(self, jobs: int, runner: StageRunner | None = None) -> None:
        self.slots = jobs
        self.runner = runner
        self.pool = futures.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_worker_start, initargs=(os.getpid(),))
        self.running: set[futures.Future] = set()

    def submit(self, task: CellTask) -> None:
        self.running.add(self.pool.submit(execute, task, self.runner))

    def wait(self, timeout: float) -> list[Outcome]:
        if not self.running:
            return []
        finished, self.running = futures.wait(self.running, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        outcomes = []
        for future in finished:
            try:
                outcomes.append(future.result())
            except futures.process.BrokenProcessPool as err:
                raise UserError(f"a study worker process died ({err}); finished cells are kept, run again to resume") from None
        return outcomes

    def close(self, abort: bool = False) -> None:
        """Wait for the workers; on an interruption, stop them (their cells resume next time)."""
        if abort:
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=not abort, cancel_futures=True)


def _worker_start(driver: int) -> None:
    """In each worker process: die with the driver; Ctrl-C (sent to the whole terminal group) is the
    driver's to handle: it stops the workers itself, without a traceback from each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(driver)


class RayExecutor:
    """Each cell a Ray task; `storage` is `shared` (one filesystem) or `copy` (ship folders through Ray)."""

    capture = "all"

    def __init__(self, root: Path, *, address: str | None = None, storage: str | None = None,
                 jobs: int | None = None, runner: StageRunner | None = None, init: dict[str, Any] | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'code-robustness-toolkit[ray]' (or ray>=2.40)") from None
        self.ray = ray
        self.root = root
        self.storage = storage or ("copy" if address else "shared")
        if self.storage not in ("shared", "copy"):
            raise UserError(f"--ray-storage {self.storage!r}: use shared or copy")
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **(init or {})}
            if address:
                options["address"] = address
            ray.init(**options)
        self.slots = jobs or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.runner = runner
        self.running: dict[Any, CellTask] = {}
        self.shipped: dict[str, Any] = {}  # cell directory -> object ref of its archive
        self._remote = ray.remote(_ray_execute)

    def submit(self, task: CellTask) -> None:
        settings = task.cell.settings
        resources = {"num_cpus": settings.get("threads") or 1,
                     "num_gpus": settings.get("gpus", 0) if task.cell.kind != "report" else 0}
        if self.storage == "copy":  # object refs go as top-level arguments: Ray resolves only those
            # A cell's own partial results are not shipped: an attack refuses to resume a run made
            # from another model path, so in copy mode an interrupted cell starts again.
            directories = list(task.inputs)
            refs = [self._archive(d) for d in directories]
            ref = self._remote.options(**resources).remote(task, self.runner, directories, *refs)
        else:
            ref = self._remote.options(**resources).remote(task, self.runner, None)
        self.running[ref] = task

    def _archive(self, directory: str):
        if directory not in self.shipped:
            self.shipped[directory] = self.ray.put(pack(self.root, directory))
        return self.shipped[directory]

    def wait(self, timeout: float) -> list[Outcome]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        outcomes = []
        for ref in ready:
            task = self.running.pop(ref)
            try:
                outcome = self.ray.get(ref)
            except Exception as err:  # noqa: BLE001 - a lost node or worker: the cell failed, the study goes on
                cause = getattr(err, "cause", None) or err
                outcome = Outcome(task.cell.name, False, 0.0,
                                  f"Ray task failed: {type(cause).__name__}: {first_line(str(cause))}")
            if outcome.archive is not None:
                unpack(self.root, task.cell.directory, outcome.archive)
                outcome.archive = None
            outcomes.append(outcome)
        return outcomes

    def close(self, abort: bool = False) -> None:
        for ref in list(self.running):
            self.ray.cancel(ref, force=True)
        self.running.clear()


def _ray_execute(task: CellTask, runner: StageRunner | None, directories: list[str] | None,
                 *archives: bytes) -> Outcome:
    """The Ray task: in copy mode, unpack the shipped folders into a scratch root, run, pack the cell."""
    if directories is None:
        return execute(task, runner)
    scratch = tempfile.mkdtemp(prefix="engine-study-")
    try:
        for directory, archive in zip(directories, archives):
            unpack(Path(scratch), directory, archive)
        local = CellTask(task.cell, task.calls, scratch, task.capture, task.inputs)
        outcome = execute(local, runner)
        outcome.archive = pack(Path(scratch), task.cell.directory)
        return outcome
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def pack(root: Path, directory: str) -> bytes:
    """A cell's folder as an uncompressed tar (model weights do not compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(root / directory, arcname=".")
    return buffer.getvalue()


def unpack(root: Path, directory: str, data: bytes) -> None:
    """Replace `root/directory` with an archive from `pack` (written beside it, then swapped in)."""
    target = root / directory
    temporary = target.with_name(target.name + f".incoming-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        archive.extractall(temporary, filter="data")
    if target.exists():
        shutil.rmtree(target)
    os.replace(temporary, target)


def make_executor(name: str, root: Path, *, jobs: int = 1, runner: StageRunner | None = None,
                  ray_address: str | None = None, ray_storage: str | None = None,
                  ray_init: dict[str, Any] | None = None):
    if name == "local":
        if jobs != 1:
            raise UserError("--jobs applies to --executor process or ray; local runs one cell at a time")
        return LocalExecutor(runner)
    if jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {jobs}")
    if name == "process":
        return ProcessExecutor(jobs, runner)
    if name == "ray":
        return RayExecutor(root, address=ray_address, storage=ray_storage, jobs=jobs if jobs > 1 else None,
                           runner=runner, init=ray_init)
    raise UserError(f"--executor {name!r}: use one of {', '.join(EXECUTORS)}")
