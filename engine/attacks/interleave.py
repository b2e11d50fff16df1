"""Cross-example batching: K examples' searches take turns, and their victim calls become one.

A search asks the victim for one small batch at a time (MHM: 30 renamings of one variable), and
waits for the answer before it decides what to ask next. On a GPU such a batch uses a sliver of
the device; the remedy is to batch *several examples'* candidates into one forward pass. The
searches are sequential code, so rather than rewriting each as a state machine, `interleaved`
runs each example in its own thread and lets only one of them run at a time (a baton passed in
a fixed round-robin order): a thread runs until it asks the victim, then hands the baton on;
when every live thread is waiting, the last one runs their requests as one
`Victim.predict_proba_groups` call (one cache look-up, one set of bucketed mini-batches) and the
baton goes round again. Nothing runs concurrently, so the searches need no locks, and the
schedule is deterministic.

What stays the same as a sequential run: every example's RNG stream (its own, from the run
seed and its id), its queries, and its record fields, except that probabilities can differ by
the float noise of another batch composition (≤ 1e-5; a search can turn a near-tie into another
path, as with another `--batch-size`), that a program two examples both ask for is one forward
pass charged to the first, and that `wall_time_s` is the example's elapsed time while K examples
ran together. `victim_time_s` is its share of the merged calls (model time by forward passes).

    for record, extra in interleaved(runner, jobs, k=8): ...
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import fields
from typing import Any


class _Cancelled(BaseException):
    """Raised in a worker thread whose run was abandoned (an error elsewhere, an interrupt)."""


class _Turns:
    """The baton and the merged victim calls (see the module docstring)."""

    def __init__(self, victim, workers: int) -> None:
        self.victim = victim
        self.workers = workers
        self.cond = threading.Condition()
        self.turn = 0
        self.live = set(range(workers))
        self.pending: dict[int, Sequence] = {}  # worker -> inputs waiting for the merged call
        self.answers: dict[int, tuple[Any, Any] | BaseException] = {}
        self.cancelled = False

    def wait_turn(self, worker: int) -> None:
        """Block until `worker` holds the baton (call with `cond` held)."""
        self.cond.wait_for(lambda: self.cancelled or self.turn == worker)
        if self.cancelled:
            raise _Cancelled()

    def call(self, worker: int, codes: Sequence):
        with self.cond:
            self.pending[worker] = codes
            self._hand_on(worker)
            self.wait_turn(worker)
            answer = self.answers.pop(worker)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def leave(self, worker: int) -> None:
        with self.cond:
            self.live.discard(worker)
            self._hand_on(worker)

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()

    def _hand_on(self, worker: int) -> None:
        """Give the baton to the next live worker not waiting for the victim; when there is none,
        run every waiting request as one victim call first."""
        if self.cancelled:
            self.cond.notify_all()
            return
        order = [(worker + step) % self.workers for step in range(1, self.workers + 1)]
        ready = [w for w in order if w in self.live and w not in self.pending]
        if not ready and self.pending:
            self._merged_call()
            ready = [w for w in order if w in self.live]
        if ready:
            self.turn = ready[0]
        self.cond.notify_all()

    def _merged_call(self) -> None:
        workers = sorted(self.pending)
        groups = [self.pending.pop(w) for w in workers]
        try:
            answers = self._groups(groups)
        except Exception:  # noqa: BLE001 - find whose input failed: each alone, as a sequential run would
            answers = []
            for group in groups:
                try:
                    answers.append(self._groups([group])[0])
                except Exception as err:  # noqa: BLE001 - raised in that example's own thread
                    answers.append(err)
        self.answers.update(zip(workers, answers))

    def _groups(self, groups: list[Sequence]) -> list[tuple[Any, Any]]:
        grouped = getattr(self.victim, "predict_proba_groups", None)
        if grouped is not None:
            rows, shares = grouped(groups)
            return list(zip(rows, shares))
        answers = []  # a victim without grouped calls (a test's stand-in): one call per group
        for group in groups:
            before = self.victim.counters()
            rows = self.victim.predict_proba(group)
            answers.append((rows, self.victim.counters() - before))
        return answers


class _WorkerVictim:
    """What one worker's search sees as the victim: its own counters, queries through the baton,
    everything else from the real victim."""

    def __init__(self, victim, turns: _Turns, worker: int) -> None:
        self._victim = victim
        self._turns = turns
        self._worker = worker
        now = victim.counters()
        self._counters = now - now  # zero, of the victim's own counter type

    def predict_proba(self, codes: Sequence):
        if isinstance(codes, str):
            codes = [codes]
        rows, share = self._turns.call(self._worker, list(codes))
        total = self._counters
        self._counters = type(total)(**{f.name: getattr(total, f.name) + getattr(share, f.name) for f in fields(total)})
        return rows

    def __call__(self, codes: Sequence):
        return self.predict_proba(codes)

    def predict(self, codes: Sequence):
        return self.predict_proba(codes).argmax(axis=1)

    def counters(self) -> Any:
        return self._counters

    def __getattr__(self, name: str):
        return getattr(self._victim, name)


class _ThreadVictim:
    """Installed as the runner's victim while examples interleave: each thread sees its worker's view."""

    def __init__(self, victim, local: threading.local) -> None:
        self._victim = victim
        self._local = local

    def __getattr__(self, name: str):
        return getattr(getattr(self._local, "view", None) or self._victim, name)


def interleaved(runner, jobs: Sequence[Callable[[], Any]], k: int) -> Iterator[Any]:
    """Run `jobs` (each attacks one example through `runner.victim`) on `k` turn-taking threads and
    yield their results in job order; `runner.victim` is swapped for the per-thread views meanwhile.
    A job's exception is raised here, at its place in the order, after the other workers stop."""
    victim = runner.victim
    workers = max(1, min(int(k), len(jobs)))
    turns = _Turns(victim, workers)
    local = threading.local()
    futures = [Future() for _ in jobs]
    next_job = iter(range(len(jobs)))

    def work(worker: int) -> None:
        local.view = _WorkerVictim(victim, turns, worker)
        try:
            with turns.cond:
                turns.wait_turn(worker)
            while True:
                with turns.cond:  # only the baton holder takes jobs: the assignment is deterministic
                    index = next(next_job, None)
                if index is None:
                    break
                futures[index].set_running_or_notify_cancel()
                try:
                    futures[index].set_result(jobs[index]())
                except _Cancelled:
                    raise
                except BaseException as err:  # noqa: BLE001 - delivered to the consumer, in order
                    futures[index].set_exception(err)
        except _Cancelled:
            return
        finally:
            turns.leave(worker)

    runner.victim = _ThreadVictim(victim, local)
    threads = [threading.Thread(target=work, args=(w,), name=f"interleave-{w}", daemon=True) for w in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for future in futures:
            yield future.result()
    finally:
        turns.cancel()
        for thread in threads:
            thread.join()
        runner.victim = victim
