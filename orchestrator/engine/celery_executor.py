"""The Celery executor: a wave's targets in batches on Celery workers, progress read from the store.

Two halves of one protocol, both over :func:`~.targets.process_target`:

* **coordinator side** (:class:`CeleryExecutor`, ``in_process = False``): splits the tasks into
  batches (one message per batch of about a hundred targets, never one per host), sends them with
  ``expires`` at the change window's end, then polls ``run_targets`` until every target it sent has
  an outcome, telling ``on_finished`` about each as it lands. Nothing is read from a result backend.
* **worker side** (:class:`BatchRun`, called by the ``apply_batch`` task): a bounded thread pool
  runs ``process_target`` for each target of the batch with a lease heartbeat and the store's gate.

Delivery is at least once; the store makes duplicates harmless: a target is claimed with a
compare-and-set on its attempt counter (a second delivery of a batch claims nothing it already
did), and the host work's journal keeps each step to one application. What the executor waits for
and what it gives back to the coordinator:

* a target still ``pending`` is waited for while the gate allows it to start; when the gate says no
  (window closed, cancel, canary, budget) the workers leave it ``pending`` too, and so does the
  executor: the coordinator's next pass pauses, cancels or fails the run;
* a target ``running`` under a live lease is in progress on a worker: waited for;
* a target ``running`` whose lease expired had its worker die: the executor stops waiting for it and
  the coordinator's next pass takes it over (a new attempt, which re-reads the host first);
* a batch nothing has happened to for ``redispatch_after`` (its message was lost: a broker that
  restarted without persistence, a batch acknowledged after its hard time limit) has its untouched
  targets sent again; a batch whose worker died mid-target is re-sent at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import select

from orchestrator.engine.executors import OnFinished
from orchestrator.engine.leases import Lease, leases_of, release
from orchestrator.engine.model import (
    TERMINAL_TARGET_STATES,
    Clock,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    TargetWork,
)
from orchestrator.engine.runs import RunOptions, record_outcome, write_transaction
from orchestrator.engine.targets import LeasePolicy, ShouldStart, lease_heartbeat, process_target
from orchestrator.engine.windows import ChangeWindow
from orchestrator.errors import InputError
from orchestrator.store.db import Store
from orchestrator.store.engine import store_errors
from orchestrator.store.models import Run, RunTarget
from orchestrator.store.types import utcnow

log = logging.getLogger("fleetfix.engine.celery")

APPLY_BATCH_TASK = "fleetfix.runs.apply_batch"
"""The batch task for hosts (WinRM work); routed to the ``winrm`` queue."""
APPLY_GRAPH_BATCH_TASK = "fleetfix.runs.apply_graph_batch"
"""The same task for tenant targets (Graph work); routed to the ``graph`` queue."""

DEFAULT_BATCH_SIZE = 100


# --- pure: batching and judging what the store says ------------------------------------------------


def task_name_for(role: TargetRole) -> str:
    """Tenant changes go through Graph, everything else through WinRM: separate queues."""
    return APPLY_GRAPH_BATCH_TASK if role is TargetRole.TENANT else APPLY_BATCH_TASK


def split_batches(tasks: Sequence[TargetTask], batch_size: int) -> list[tuple[str, list[TargetTask]]]:
    """``(task name, targets)`` per batch: tenant and host targets apart, each in the caller's order,
    at most ``batch_size`` targets per batch."""
    if batch_size < 1:
        raise InputError("must be at least 1", field="celery.batch_size")
    groups: dict[str, list[TargetTask]] = {}
    for task in tasks:
        groups.setdefault(task_name_for(task.role), []).append(task)
    batches: list[tuple[str, list[TargetTask]]] = []
    for name, members in groups.items():
        for start in range(0, len(members), batch_size):
            batches.append((name, members[start : start + batch_size]))
    return batches


class Progress(Enum):
    """Where a dispatched task stands, judged from its target's row and lease."""

    NOT_STARTED = "not_started"  # no worker has claimed it (yet)
    IN_PROGRESS = "in_progress"  # claimed by this attempt, its lease alive
    DEAD = "dead"  # claimed by this attempt, its lease gone: the worker died
    FINISHED = "finished"  # this attempt's outcome is recorded
    GONE = "gone"  # someone else owns the target now (a takeover, the run ended)


@dataclass(frozen=True)
class TargetRow:
    """The part of a ``run_targets`` row the executor reads on every poll."""

    state: TargetState
    attempts: int
    message: str = ""
    error_kind: str | None = None


def judge(task: TargetTask, row: TargetRow | None, lease: Lease | None, now: datetime) -> Progress:
    """Where ``task`` stands. Pure: the rules of the module docstring."""
    progress = Progress.GONE
    if row is None:
        pass
    elif row.attempts == task.attempt:
        if row.state in TERMINAL_TARGET_STATES:
            progress = Progress.FINISHED
        elif row.state is TargetState.RUNNING:
            alive = lease is not None and lease.run_id == task.run_id and lease.expires_at > now
            progress = Progress.IN_PROGRESS if alive else Progress.DEAD
    elif row.attempts == task.attempt - 1:
        if row.state is TargetState.PENDING or (row.state is TargetState.RUNNING and task.takeover):
            progress = Progress.NOT_STARTED
        elif row.state is TargetState.SKIPPED:
            # skipping (the host locked by another run) records without a new attempt
            progress = Progress.FINISHED
    return progress


# --- coordinator side -------------------------------------------------------------------------------

_SETTLED = frozenset({Progress.FINISHED, Progress.GONE, Progress.DEAD})
"""Nothing more to wait for: reported, someone else's, or the coordinator's to take over."""


@dataclass
class _Look:
    """One look at the store: the rows, what finished since the last look, what is still to start
    (by batch), which batches lost their worker, and whether anything is in progress."""

    rows: dict[str, TargetRow]
    finished: list[TargetTask] = field(default_factory=list)
    untouched: dict[int, list[TargetTask]] = field(default_factory=dict)
    orphaned: set[int] = field(default_factory=set)
    in_progress: bool = False


@dataclass
class _Batch:
    name: str
    tasks: list[TargetTask]
    sent: bool = False
    ignore_window: bool = False
    send_failures: int = 0
    next_send: float = 0.0
    last_change: float = 0.0
    seen: dict[str, Progress] = field(default_factory=dict)


class CeleryExecutor:
    """Runs a wave's targets on Celery workers (``in_process = False``).

    ``app`` is a Celery app whose workers serve :data:`APPLY_BATCH_TASK` and
    :data:`APPLY_GRAPH_BATCH_TASK` (``tasks.app.make_app``). ``holder`` names the coordinating
    process in logs (leases are held by the workers). ``clock`` judges lease expiry and the window;
    ``poll_s`` is how often the store is read, ``redispatch_after_s`` how long a batch may show no
    change at all before its untouched targets are sent again (the visibility timeout by default).
    ``ignore_window`` travels to the workers' gate (``runs resume --ignore-window``). ``expires``
    False leaves out the broker-side ``expires`` (for a ``clock`` that is not the real time; the
    batch still carries the window's end, which the workers check before each target).
    """

    in_process = False

    def __init__(
        self,
        store: Store,
        app: Any,
        batch_size: int = DEFAULT_BATCH_SIZE,
        holder: str | None = None,
        *,
        clock: Clock = utcnow,
        poll_s: float = 2.0,
        redispatch_after_s: float = 7200.0,
        ignore_window: bool = False,
        expires: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if batch_size < 1:
            raise InputError("must be at least 1", field="celery.batch_size")
        self.expires = expires
        self.store = store
        self.app = app
        self.batch_size = batch_size
        self.holder = holder or "coordinator"
        self.clock = clock
        self.poll_s = poll_s
        self.redispatch_after_s = redispatch_after_s
        self.ignore_window = ignore_window
        self.sleep = sleep
        self.monotonic = monotonic
        self.sent_batches = 0
        """Batch messages sent so far (re-sends included), for the record and the tests."""

    # --- sending ----------------------------------------------------------------------------------

    def _window(self, run_id: str) -> ChangeWindow | None:
        with store_errors(self.store.engine.url), self.store.sessions() as session:
            options = session.execute(select(Run.options).where(Run.id == run_id)).scalar_one()
        return RunOptions.from_json(options or {}).change_window

    def _outside(self, window: ChangeWindow | None) -> bool:
        return window is not None and not window.is_open(self.clock())

    def _terms(self, window: ChangeWindow | None) -> tuple[bool, datetime | None]:
        """``(ignore_window, deadline)`` for a batch sent now.

        The coordinator's gate is the authority on the window: it dispatches outside the window
        only when told to ignore it (``advance(ignore_window=True)``), so a batch sent or found
        wanted while the window is closed tells the workers to ignore it too. Otherwise the batch
        carries the window's end as its deadline (and ``expires``).
        """
        if self.ignore_window or window is None:
            return self.ignore_window, None
        now = self.clock()
        if not window.is_open(now):
            return True, None
        return False, window.closes_at(now)

    def _send(self, run_id: str, batch: _Batch, window: ChangeWindow | None) -> None:
        now = self.monotonic()
        ignore_window, deadline = self._terms(window)
        try:
            self.app.send_task(
                batch.name,
                args=(run_id, [task.to_json() for task in batch.tasks], _iso(deadline)),
                kwargs={"ignore_window": ignore_window},
                # the broker-side guard; workers judge it by their own (real) clocks
                expires=deadline if self.expires else None,
                # keep host names out of logs and monitoring: the store has them
                argsrepr=f"({run_id!r}, <{len(batch.tasks)} targets>)",
            )
        except Exception as exc:  # the broker is away: retry on a later poll, never assume it arrived
            batch.send_failures += 1
            batch.next_send = now + min(self.poll_s * 2**batch.send_failures, 60.0)
            log.warning(
                "run %s: could not send a batch of %d targets (%s); retrying",
                run_id,
                len(batch.tasks),
                type(exc).__name__,
            )
            return
        batch.sent = True
        batch.ignore_window = ignore_window
        batch.send_failures = 0
        batch.last_change = now
        self.sent_batches += 1

    # --- waiting ----------------------------------------------------------------------------------

    def _read(
        self, run_id: str, tasks: Iterable[TargetTask]
    ) -> tuple[dict[str, TargetRow], dict[str, Lease]]:
        names = sorted({task.target for task in tasks})
        rows: dict[str, TargetRow] = {}
        with store_errors(self.store.engine.url), self.store.sessions() as session:
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                for row in session.execute(
                    select(
                        RunTarget.target,
                        RunTarget.state,
                        RunTarget.attempts,
                        RunTarget.message,
                        RunTarget.error_kind,
                    ).where(RunTarget.run_id == run_id, RunTarget.target.in_(chunk))
                ):
                    rows[row.target] = TargetRow(
                        TargetState(row.state), row.attempts, row.message or "", row.error_kind
                    )
            leases = leases_of(session, run_id)
        return rows, leases

    def _details(self, run_id: str, targets: Sequence[str]) -> dict[str, Mapping[str, Any]]:
        if not targets:
            return {}
        with store_errors(self.store.engine.url), self.store.sessions() as session:
            return {
                row.target: dict(row.detail or {})
                for row in session.execute(
                    select(RunTarget.target, RunTarget.detail).where(
                        RunTarget.run_id == run_id, RunTarget.target.in_(list(targets))
                    )
                )
            }

    def execute(
        self,
        run_id: str,
        tasks: Sequence[TargetTask],
        should_start: ShouldStart,
        on_finished: OnFinished | None = None,
    ) -> None:
        if not tasks:
            return
        window = self._window(run_id)
        batches = [_Batch(name, members) for name, members in split_batches(tasks, self.batch_size)]
        for batch in batches:
            self._send(run_id, batch, window)
        log.info("run %s: %d targets sent in %d batches", run_id, len(tasks), len(batches))
        while True:
            waiting = self._poll(run_id, batches, should_start, on_finished, window)
            if not waiting:
                return
            self.sleep(self.poll_s)

    def _poll(
        self,
        run_id: str,
        batches: list[_Batch],
        should_start: ShouldStart,
        on_finished: OnFinished | None,
        window: ChangeWindow | None,
    ) -> bool:
        """One look at the store; True while something is still worth waiting for."""
        look = self._look(run_id, batches)
        self._report(run_id, look.finished, look.rows, on_finished)
        if not look.untouched:
            return look.in_progress
        # one gate question per look (it reads the store); the workers ask the same one
        if not should_start(next(iter(look.untouched.values()))[0].target):
            return look.in_progress
        tick, outside = self.monotonic(), self._outside(window)
        for index, pending in look.untouched.items():
            batch = batches[index]
            if not batch.sent:
                if tick >= batch.next_send:
                    self._send(run_id, batch, window)
            elif index in look.orphaned:
                self._resend(run_id, batches, index, pending, window, why="its worker died")
            elif outside and not batch.ignore_window:
                # the window closed, and the coordinator still wants these started: it ignores it
                self._resend(run_id, batches, index, pending, window, why="going on outside the window")
            elif tick - batch.last_change >= self.redispatch_after_s:
                self._resend(run_id, batches, index, pending, window, why="no worker touched it")
        return True

    def _look(self, run_id: str, batches: list[_Batch]) -> _Look:
        """Judge every task still worth watching; note what changed since the last look."""
        rows, leases = self._read(run_id, (task for batch in batches for task in batch.tasks))
        now, tick = self.clock(), self.monotonic()
        look = _Look(rows)
        for index, batch in enumerate(batches):
            for task in batch.tasks:
                if batch.seen.get(task.target) in _SETTLED:
                    continue
                progress = judge(task, rows.get(task.target), leases.get(task.target), now)
                if progress is not batch.seen.get(task.target):
                    batch.seen[task.target] = progress
                    batch.last_change = tick
                    if progress is Progress.FINISHED:
                        look.finished.append(task)
                    elif progress is Progress.DEAD:
                        look.orphaned.add(index)
                        log.warning(
                            "run %s: the worker on %s (attempt %d) stopped renewing its lease; "
                            "the coordinator takes the target over",
                            run_id,
                            task.target,
                            task.attempt,
                        )
                if progress is Progress.IN_PROGRESS:
                    look.in_progress = True
                elif progress is Progress.NOT_STARTED:
                    look.untouched.setdefault(index, []).append(task)
        return look

    def _resend(
        self,
        run_id: str,
        batches: list[_Batch],
        index: int,
        pending: list[TargetTask],
        window: ChangeWindow | None,
        *,
        why: str,
    ) -> None:
        """Send the untouched targets of batch ``index`` again (a duplicate does nothing)."""
        old = batches[index]
        log.warning("run %s: sending %d targets again (%s)", run_id, len(pending), why)
        again = _Batch(old.name, pending)
        self._send(run_id, again, window)
        if again.sent:
            # the old batch keeps the targets that were already under way; the new one the rest
            names = {task.target for task in pending}
            old.tasks = [task for task in old.tasks if task.target not in names]
            old.last_change = again.last_change
            again.seen = {task.target: Progress.NOT_STARTED for task in pending}
            batches.append(again)

    def _report(
        self,
        run_id: str,
        finished: list[TargetTask],
        rows: Mapping[str, TargetRow],
        on_finished: OnFinished | None,
    ) -> None:
        if not finished or on_finished is None:
            return
        details = self._details(run_id, [task.target for task in finished])
        for task in finished:
            row = rows[task.target]
            outcome = TargetOutcome(row.state, row.message, row.error_kind, details.get(task.target, {}))
            on_finished(task, outcome)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


# --- worker side ------------------------------------------------------------------------------------


def deadline_gate(gate: ShouldStart, deadline: datetime | None, clock: Clock) -> ShouldStart:
    """``gate``, refusing from ``deadline`` on (the ``not_after`` a batch carries: the window's end
    when it was sent; checked before each target, since ``expires`` is only checked on receipt)."""
    if deadline is None:
        return gate

    def should_start(target: str) -> bool:
        return clock() < deadline and gate(target)

    return should_start


@dataclass(frozen=True)
class BatchReport:
    """What one delivery of a batch did."""

    recorded: tuple[str, ...] = ()
    """targets whose outcome this delivery recorded"""
    abandoned: tuple[str, ...] = ()
    """targets in progress when the batch was stopped, recorded as failed (timed out)"""
    left: tuple[TargetTask, ...] = ()
    """targets this delivery did not finish (not started, or the gate said no): still ``pending``"""

    def counts(self) -> dict[str, int]:
        return {"recorded": len(self.recorded), "abandoned": len(self.abandoned), "left": len(self.left)}


class BatchRun:
    """One delivery of a batch on a worker: ``process_target`` for each target on at most
    ``concurrency`` threads, with the worker's lease heartbeat around it.

    :meth:`run` returns when every target is finished or left alone (the gate said no). A store
    error stops new targets from starting; the targets in progress finish and the error is raised
    (the task retries the batch: what was recorded is not done again). :meth:`abandon` is for a
    batch that must stop now (its soft time limit): no new target starts, targets still in progress
    are recorded ``failed`` with ``message`` (their threads cannot be interrupted; they stay fenced
    off by the attempt counter), and the untouched targets are returned to be sent again.
    """

    def __init__(
        self,
        store: Store,
        tasks: Sequence[TargetTask],
        work: TargetWork,
        *,
        holder: str,
        gate: ShouldStart,
        concurrency: int,
        clock: Clock = utcnow,
        policy: LeasePolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.store = store
        self.tasks = tuple(tasks)
        self.work = work
        self.holder = holder
        self.gate = gate
        self.concurrency = max(1, min(concurrency, len(self.tasks) or 1))
        self.clock = clock
        self.policy = policy or LeasePolicy()
        self.sleep = sleep
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_progress: dict[str, TargetTask] = {}
        self._futures: dict[str, Future[TargetOutcome | None]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _tracked(self, task: TargetTask) -> TargetOutcome:
        with self._lock:
            self._in_progress[task.target] = task
        try:
            return self.work(task)
        finally:
            with self._lock:
                self._in_progress.pop(task.target, None)

    def _should_start(self, target: str) -> bool:
        return not self._stop.is_set() and self.gate(target)

    def _one(self, task: TargetTask) -> TargetOutcome | None:
        return process_target(
            self.store,
            task,
            self._tracked,
            self.holder,
            self.clock,
            policy=self.policy,
            should_start=self._should_start,
            sleep=self.sleep,
        )

    def run(self) -> BatchReport:
        if not self.tasks:
            return BatchReport()
        runs = {task.run_id for task in self.tasks}
        if len(runs) != 1:
            raise InputError("a batch holds the targets of one run", field="tasks")
        run_id = runs.pop()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="fleetfix-batch")
        try:
            with lease_heartbeat(self.store, run_id, self.holder, self.clock, self.policy):
                for task in self.tasks:
                    self._futures[task.target] = self._pool.submit(self._one, task)
                self._wait_all()
        finally:
            # without waiting: after abandon() a thread may still be stuck on its host
            self._pool.shutdown(wait=False, cancel_futures=True)
        for future in self._futures.values():
            if not future.cancelled() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        return self._report(abandoned=())

    def _wait_all(self) -> None:
        """Until every target is finished or cancelled. A store failure stops new targets from
        starting; the started ones finish. (``wait`` alone would never see a future cancelled by
        :meth:`abandon` as done: the pool's thread never picks it up to say so.)"""
        pending: set[Future[TargetOutcome | None]] = set(self._futures.values())
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            if any(not future.cancelled() and future.exception() is not None for future in done):
                self._stop.set()
            pending = {future for future in pending if not future.done()}

    def abandon(self, message: str, error_kind: str = "timed_out") -> BatchReport:
        """Stop now (called from the thread that was running :meth:`run`, e.g. on a soft time limit)."""
        self._stop.set()
        for future in self._futures.values():
            future.cancel()
        with self._lock:
            stuck = list(self._in_progress.values())
        abandoned: list[str] = []
        now = self.clock()
        for task in stuck:
            with write_transaction(self.store) as session:
                if record_outcome(session, task, TargetOutcome(TargetState.FAILED, message, error_kind), now):
                    abandoned.append(task.target)
                release(session, task.target, task.run_id, self.holder)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        return self._report(abandoned=tuple(abandoned))

    def _report(self, *, abandoned: tuple[str, ...]) -> BatchReport:
        recorded: list[str] = []
        left: list[TargetTask] = []
        for task in self.tasks:
            future = self._futures.get(task.target)
            outcome = None
            if future is not None and future.done() and not future.cancelled() and future.exception() is None:
                outcome = future.result()
            if outcome is not None:
                recorded.append(task.target)
            elif task.target not in abandoned:
                left.append(task)
        return BatchReport(tuple(recorded), abandoned, tuple(left))


def lease_policy(ttl_s: float) -> LeasePolicy:
    """The workers' lease policy: ``ttl_s`` from ``[celery] lease_ttl_s``, the default waits."""
    default = LeasePolicy()
    return LeasePolicy(ttl=timedelta(seconds=ttl_s), wait=default.wait, poll=default.poll)


__all__ = [
    "APPLY_BATCH_TASK",
    "APPLY_GRAPH_BATCH_TASK",
    "DEFAULT_BATCH_SIZE",
    "BatchReport",
    "BatchRun",
    "CeleryExecutor",
    "Progress",
    "TargetRow",
    "deadline_gate",
    "judge",
    "lease_policy",
    "split_batches",
    "task_name_for",
]
