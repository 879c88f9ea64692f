"""Processing one target: the function every executor runs per target, in-process or in a worker.

:func:`process_target` takes the host's lease and claims the target (``pending -> running``, or
``running -> running`` for a takeover) in one transaction, calls the injected
:data:`~orchestrator.engine.model.TargetWork`, then records the outcome and releases the lease in
one transaction. So a lease exists exactly while a target of its run is ``running``, and an
outcome is never recorded without its lease being given back.

Duplicates are harmless: the claim is a compare-and-set on ``run_targets.attempts`` (the task
carries the attempt it was made for), so a second delivery of the same task claims nothing and does
nothing. A worker whose lease expired and whose target was taken over cannot record its outcome
either (the attempt no longer matches); it logs a warning.

The Celery executor sends :class:`~orchestrator.engine.model.TargetTask` values as JSON
(``to_json``/``from_json``) and calls this same function in the worker, with a :class:`Heartbeat`
running :func:`~orchestrator.engine.leases.renew_all` for the batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import func, select

from orchestrator.engine.leases import HeldBy, Lease, acquire, release, renew_all
from orchestrator.engine.model import (
    FAILURE_STATES,
    TERMINAL_TARGET_STATES,
    Clock,
    RunStatus,
    TargetOutcome,
    TargetState,
    TargetTask,
    TargetWork,
    WaveKind,
)
from orchestrator.engine.runs import RunOptions, claim_target, record_outcome, skip_target, write_transaction
from orchestrator.errors import FleetfixError
from orchestrator.store.db import Store
from orchestrator.store.engine import store_errors
from orchestrator.store.models import Run, RunTarget, RunWave

log = logging.getLogger(__name__)

ShouldStart = Callable[[str], bool]
"""The gate asked right before a target starts (window, cancel, budget); False leaves it pending."""


@dataclass(frozen=True)
class LeasePolicy:
    """How long a lease lives unless renewed (``ttl``), how long a target waits for a host that
    another run holds before it is skipped (``wait``), and how often it looks again (``poll``).

    Leases are renewed every ``ttl / 3`` while work is in progress, so a lease outlives its holder
    by at most ``ttl``: that is how long a crashed process keeps its hosts locked.
    """

    ttl: timedelta = timedelta(minutes=5)
    wait: timedelta = timedelta(minutes=1)
    poll: timedelta = timedelta(seconds=2)

    @property
    def renew_every(self) -> timedelta:
        return self.ttl / 3


class _NotClaimable(Exception):
    """Rolls back the lease taken for a target that is no longer where the task expects it."""


def _start(
    store: Store, task: TargetTask, holder: str, policy: LeasePolicy, now: datetime
) -> Lease | HeldBy | None:
    """Lease and claim in one transaction: the lease, who holds it instead, or None (not claimable)."""
    try:
        with write_transaction(store) as session:
            got = acquire(session, task.target, task.run_id, holder, policy.ttl, now)
            if isinstance(got, Lease) and not claim_target(session, task, now):
                raise _NotClaimable
            return got
    except _NotClaimable:
        return None


def _skip(store: Store, task: TargetTask, held: HeldBy, now: datetime) -> TargetOutcome | None:
    reason = held.describe()
    with write_transaction(store) as session:
        if not skip_target(session, task, reason, now):
            return None
    return TargetOutcome(TargetState.SKIPPED, reason, "locked")


def _call(work: TargetWork, task: TargetTask) -> TargetOutcome:
    """The work's outcome; an exception or a non-final answer is a ``failed`` outcome of kind
    ``internal`` (a bug in the host work must not stop the other targets)."""
    try:
        outcome = work(task)
    except Exception as exc:
        log.exception("host work raised on %s (run %s)", task.target, task.run_id)
        return TargetOutcome(TargetState.FAILED, f"{type(exc).__name__}: {exc}", "internal")
    if not isinstance(outcome, TargetOutcome):
        return TargetOutcome(TargetState.FAILED, f"host work returned {type(outcome).__name__}", "internal")
    if outcome.state not in TERMINAL_TARGET_STATES:
        return TargetOutcome(TargetState.FAILED, f"host work returned the state {outcome.state}", "internal")
    return outcome


def _finish(store: Store, task: TargetTask, outcome: TargetOutcome, holder: str, now: datetime) -> bool:
    with write_transaction(store) as session:
        recorded = record_outcome(session, task, outcome, now)
        release(session, task.target, task.run_id, holder)
    if not recorded:
        log.warning(
            "run %s: the outcome of %s attempt %d was not recorded: the target was taken over",
            task.run_id,
            task.target,
            task.attempt,
        )
    return recorded


def process_target(
    store: Store,
    task: TargetTask,
    work: TargetWork,
    holder: str,
    clock: Clock,
    *,
    policy: LeasePolicy | None = None,
    should_start: ShouldStart | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> TargetOutcome | None:
    """Work on one target and record the outcome; returns it, or None when the target was left
    alone: the gate said no (it stays ``pending``), or it was not where the task expected it (a
    duplicate task, or the outcome could not be recorded because the target was taken over).

    A host whose lease another run holds is waited for up to ``policy.wait`` (polling every
    ``policy.poll``, asking ``should_start`` again each time), then the target is ``skipped`` with
    the reason "host H is locked by run R (holder, until T)". Store errors propagate (StoreError);
    the target then stays as the store last saw it and a later ``advance`` takes it over.
    """
    policy = policy or LeasePolicy()
    waited_since: datetime | None = None
    while True:
        if should_start is not None and not should_start(task.target):
            return None
        now = clock()
        got = _start(store, task, holder, policy, now)
        if got is None:
            return None
        if isinstance(got, Lease):
            break
        waited_since = waited_since or now
        if now - waited_since >= policy.wait:
            return _skip(store, task, got, now)
        sleep(policy.poll.total_seconds())
    outcome = _call(work, task)
    return outcome if _finish(store, task, outcome, holder, clock()) else None


class StoredGate:
    """A ``should_start`` that reads everything from the store, for workers that cannot ask the
    coordinator (the Celery executor's batch tasks): it refuses when the run is no longer running
    (paused, finished), a cancel was requested, the change window is closed (unless
    ``ignore_window``), a tenant or canary target failed, or the failure budget is exceeded.

    The window, budget and wave kinds are read once; each call costs one window check and two small
    queries (the run's flags, failure counts by wave).
    """

    def __init__(self, store: Store, run_id: str, clock: Clock, *, ignore_window: bool = False):
        self._store = store
        self._run_id = run_id
        self._clock = clock
        with store_errors(store.engine.url), store.sessions() as session:
            run = session.execute(select(Run).where(Run.id == run_id)).scalar_one()
            options = RunOptions.from_json(run.options or {})
            self._total = session.execute(
                select(func.count()).select_from(RunTarget).where(RunTarget.run_id == run_id)
            ).scalar_one()
            self._gate_waves = set(
                session.execute(
                    select(RunWave.number).where(
                        RunWave.run_id == run_id, RunWave.kind != WaveKind.WAVE.value
                    )
                ).scalars()
            )
        self._window = None if ignore_window else options.change_window
        self._budget = options.rollout.max_fail

    def __call__(self, target: str) -> bool:
        if self._window is not None and not self._window.is_open(self._clock()):
            return False
        with store_errors(self._store.engine.url), self._store.sessions() as session:
            status, cancel = session.execute(
                select(Run.status, Run.cancel_requested).where(Run.id == self._run_id)
            ).one()
            failures = dict(
                session.execute(
                    select(RunTarget.wave, func.count())
                    .where(
                        RunTarget.run_id == self._run_id,
                        RunTarget.state.in_([s.value for s in FAILURE_STATES]),
                    )
                    .group_by(RunTarget.wave)
                ).all()
            )
        if status != RunStatus.RUNNING or cancel:
            return False
        if any(failures.get(wave, 0) for wave in self._gate_waves):
            return False
        return not self._budget.exceeded(sum(failures.values()), self._total)


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds on a daemon thread while the ``with`` block runs.

    Used to renew leases (and the coordinator's claim) while work is in progress; a failing beat is
    logged and retried at the next interval, since a missed renewal only matters after a whole ttl.
    """

    def __init__(self, interval: float, beat: Callable[[], object], *, name: str = "fleetfix-heartbeat"):
        self._interval = interval
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except FleetfixError:
                log.warning("heartbeat failed; retrying in %.0f s", self._interval, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def lease_heartbeat(store: Store, run_id: str, holder: str, clock: Clock, policy: LeasePolicy) -> Heartbeat:
    """A heartbeat renewing every lease ``holder`` has for ``run_id`` (one statement per beat)."""

    def beat() -> None:
        with write_transaction(store) as session:
            renew_all(session, run_id, holder, policy.ttl, clock())

    return Heartbeat(policy.renew_every.total_seconds(), beat, name=f"fleetfix-leases-{run_id[:8]}")


__all__ = ["Heartbeat", "LeasePolicy", "ShouldStart", "StoredGate", "lease_heartbeat", "process_target"]
