"""The beat: fires the configured jobs when they are due, one beat at a time.

Each pass (:meth:`Beat.fire_due`) asks the pure core which jobs are due (each job's latest fire
within ``catch_up``), records each fire in the ledger (the unique key turns a duplicate into a
no-op), and hands the job to a :class:`Dispatcher`:

* :class:`InProcess` (no broker: the embedded default) runs the sweep or the playbook run here;
* :class:`CeleryDispatch` (a broker is configured) sends a sweep to the workers as the
  ``scheduled_sweep`` task, and for a playbook creates the run here (checks, approval, targets) and
  sends the run's controller task, so the beat never sits in a long job.

The beat keeps time in UTC; a job's local date and wall time come from its own zone, and every line
it writes shows both (``2026-06-01T00:00:00Z (02:00 CEST Europe/Amsterdam)``). Only the holder of
the schedule lease fires (:mod:`.lease`); the others stand by.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from orchestrator.config import Settings
from orchestrator.errors import FleetfixError
from orchestrator.schedule.execute import (
    JobResult,
    prepare_playbook_run,
    run_playbook_job,
    run_sweep_job,
)
from orchestrator.schedule.fires import (
    CELERY,
    IN_PROCESS,
    FireRecord,
    finish_fire,
    mark_dispatched,
    record_fire,
    set_run,
)
from orchestrator.schedule.jobs import Due, FireKey, Job, due_fires, next_wake
from orchestrator.schedule.lease import LeaseKeeper, LeaseState, acquire_lease, release_lease
from orchestrator.store.db import Store
from orchestrator.store.models import FireStatus

log = logging.getLogger("fleetfix.schedule")

MAX_SLEEP_S = 30.0
"""The longest the beat sleeps between passes: a clock step (NTP) or a lost lease is noticed soon."""
ERROR_BACKOFF_S = 15.0
"""After a store error (the database restarting) the beat tries again this much later."""

Clock = Callable[[], datetime]


def beat_holder() -> str:
    """``beat:host:pid:nonce``: recognisable in ``--list``, logs and the audit log (the actor of
    ``schedule.fire``), unique per process start."""
    return f"beat:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def both_times(at: datetime, zone: Any) -> str:
    """``2026-06-01T00:00:00Z (02:00 CEST Europe/Amsterdam)``: UTC first, then the job's wall clock."""
    utc, local = at.astimezone(UTC), at.astimezone(zone)
    return f"{utc:%Y-%m-%dT%H:%M:%SZ} ({local:%Y-%m-%d %H:%M %Z} {zone.key})"


# --- dispatchers --------------------------------------------------------------------------------


class Dispatcher(Protocol):
    """Runs (or sends) a fired job; ``name`` is recorded on the fire (``in-process``, ``celery``)."""

    name: str

    def run(self, due: Due, fire: FireRecord) -> JobResult: ...


@dataclass
class InProcess:
    """Runs each job in the beat's process: the embedded default, no broker needed."""

    settings: Settings
    store: Store
    holder: str
    clock: Clock
    environ: Mapping[str, str] | None = None
    name: str = IN_PROCESS

    def run(self, due: Due, fire: FireRecord) -> JobResult:
        if due.job.kind == "sweep":
            return run_sweep_job(self.settings, self.store, due.job.settings, environ=self.environ)
        return run_playbook_job(
            self.settings,
            self.store,
            due.job,
            local_date=due.occurrence.local_date,
            now=self.clock(),
            holder=self.holder,
            on_run=lambda run_id: set_run(self.store, fire.id, run_id),
            environ=self.environ,
            clock=self.clock,
        )


class TaskSender(Protocol):
    """The part of a Celery app the beat uses (``app.send_task``)."""

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...


SCHEDULED_SWEEP_TASK = "fleetfix.sweeps.scheduled_sweep"
"""``scheduled_sweep(job_name, selector, local_date)`` (tasks/sweeps.py)."""
ADVANCE_RUN_TASK = "fleetfix.runs.advance_run"
"""``advance_run(run_id)`` (tasks/runs.py): the run's coordinator on a worker."""


@dataclass
class CeleryDispatch:
    """Sends jobs to the Celery workers. A sweep goes as ``scheduled_sweep``; a playbook run is
    created here (so a refusal is recorded at once, with its reason) and its controller sent as
    ``advance_run``. The tasks' own expiry keeps a fire that sat in a dead broker for a day from
    running late: it expires after the schedule's ``catch_up``."""

    settings: Settings
    store: Store
    app: TaskSender
    clock: Clock
    name: str = CELERY
    sweep_task: str = SCHEDULED_SWEEP_TASK
    advance_task: str = ADVANCE_RUN_TASK

    def _expires(self, due: Due) -> datetime:
        return max(self.clock(), due.occurrence.at) + timedelta(
            seconds=max(self.settings.schedule.catch_up_s, 60)
        )

    def run(self, due: Due, fire: FireRecord) -> JobResult:
        if due.job.kind == "sweep":
            sent = self.app.send_task(
                self.sweep_task,
                kwargs={
                    "job_name": due.job.name,
                    "selector": due.job.settings.selector,
                    "local_date": due.occurrence.local_date.isoformat(),
                },
                expires=self._expires(due),
            )
            return JobResult(
                FireStatus.DISPATCHED,
                f"sent to the workers as task {sent.id}",
                run_id=None,
                summary={"task_id": sent.id},
            )
        prepared = prepare_playbook_run(
            self.settings, self.store, due.job, local_date=due.occurrence.local_date, now=self.clock()
        )
        if isinstance(prepared, JobResult):
            return prepared
        set_run(self.store, fire.id, prepared.run_id)
        sent = self.app.send_task(
            self.advance_task, kwargs={"run_id": prepared.run_id}, expires=self._expires(due)
        )
        return JobResult(
            FireStatus.DISPATCHED,
            f"run {prepared.run_id} created; its coordinator sent to the workers as task {sent.id}",
            run_id=prepared.run_id,
            summary={"task_id": sent.id, "run_id": prepared.run_id},
        )


# --- what a pass did ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FireOutcome:
    """One due fire this beat handled: ``fired`` False when another beat (or an earlier start of
    this one) had already recorded its key."""

    job: Job
    key: FireKey
    scheduled_at: datetime
    fired: bool
    record: FireRecord | None = None
    result: JobResult | None = None

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "job": self.job.name,
            "kind": self.job.kind,
            "local_date": self.key.local_date.isoformat(),
            "slot": self.key.slot or None,
            "timezone": self.job.zone.key,
            "scheduled_at": self.scheduled_at.isoformat(),
            "scheduled_local": self.scheduled_at.astimezone(self.job.zone).isoformat(),
            "fired": self.fired,
            "fire": None if self.record is None else self.record.to_dict(),
            "status": None if result is None else result.status.value,
            "message": None if result is None else result.message,
            "run_id": None if result is None else result.run_id,
            "attention": None if result is None else result.attention,
            "document": None if result is None else result.document,
        }


@dataclass(frozen=True)
class BeatEvent:
    """A line the beat reports (the CLI prints ``text``; it is also logged)."""

    kind: str
    text: str
    level: int = logging.INFO
    at: datetime | None = None


@dataclass
class Beat:
    """The schedule's one active firer; see the module docstring."""

    settings: Settings
    store: Store
    dispatcher: Dispatcher
    holder: str = field(default_factory=beat_holder)
    clock: Clock = field(default=lambda: datetime.now(UTC))
    on_event: Callable[[BeatEvent], None] | None = None
    jobs: tuple[Job, ...] = ()
    _seen: set[FireKey] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        if not self.jobs:
            self.jobs = Job.all_from(self.settings.schedule)

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.schedule.lease_ttl_s)

    @property
    def catch_up(self) -> timedelta:
        return timedelta(seconds=self.settings.schedule.catch_up_s)

    def _event(self, kind: str, text: str, level: int = logging.INFO) -> None:
        """Report a line: to ``on_event`` when there is one (the CLI prints it, with the time), else
        to the log; not both, so a terminal does not show every line twice."""
        if self.on_event is None:
            log.log(level, "%s", text)
            return
        try:
            self.on_event(BeatEvent(kind, text, level, self.clock()))
        except Exception:  # a broken printer must not stop the schedule
            log.warning("beat event handler failed", exc_info=True)
            log.log(level, "%s", text)

    # --- one pass -------------------------------------------------------------------------------

    def fire_due(self, now: datetime) -> list[FireOutcome]:
        """Fire every job due at ``now`` whose key is not recorded yet; the outcomes."""
        outcomes = []
        for due in due_fires(self.jobs, now, self.catch_up):
            key = due.key
            if key in self._seen:
                continue
            outcomes.append(self._fire(due, now))
            self._seen.add(key)
        return outcomes

    def _fire(self, due: Due, now: datetime) -> FireOutcome:
        key, job, at = due.key, due.job, due.occurrence.at
        when = both_times(at, job.zone)
        record = record_fire(self.store, due, fired_by=self.holder, dispatch=self.dispatcher.name, at=now)
        if record is None:
            self._event(
                "duplicate", f"{job.name}: the fire of {when} was already recorded ({key}); nothing to do"
            )
            return FireOutcome(job, key, at, fired=False)
        late = now - at
        lateness = f", {int(late.total_seconds())} s late" if late > timedelta(minutes=1) else ""
        self._event(
            "fired",
            f"{job.name}: firing the {job.kind} scheduled for {when}{lateness} ({self.dispatcher.name})",
        )
        try:
            result = self.dispatcher.run(due, record)
        except FleetfixError as exc:
            result = JobResult(FireStatus.FAILED, f"{exc.kind}: {exc}")
        except Exception as exc:  # the schedule goes on; the fire says what happened
            log.debug("scheduled job failed", exc_info=True)
            result = JobResult(FireStatus.FAILED, f"internal error: {type(exc).__name__}: {exc}")
        record = self._record_result(record, result)
        level = logging.INFO if result.ok or result.status is FireStatus.DISPATCHED else logging.ERROR
        if result.ok and result.attention:
            level = logging.WARNING
        self._event("finished", f"{job.name}: {result.status.value}: {result.message}", level)
        return FireOutcome(job, key, at, fired=True, record=record, result=result)

    def _record_result(self, record: FireRecord, result: JobResult) -> FireRecord:
        if result.status is FireStatus.DISPATCHED:
            task_id = (result.summary or {}).get("task_id")
            return mark_dispatched(self.store, record.id, task_id=task_id, run_id=result.run_id)
        return finish_fire(
            self.store,
            record.id,
            result.status,
            at=self.clock(),
            actor=self.holder,
            message=result.message,
            summary=result.summary,
            run_id=result.run_id,
        )

    # --- the lease ------------------------------------------------------------------------------

    def acquire(self) -> LeaseState:
        return acquire_lease(self.store, self.holder, self.ttl, self.clock())

    def release(self) -> None:
        try:
            release_lease(self.store, self.holder)
        except FleetfixError as exc:  # it expires by itself
            log.warning("could not release the schedule lease: %s", exc)

    def once(self) -> tuple[LeaseState, list[FireOutcome]]:
        """Take the lease, fire what is due now, give the lease back (``fleetfix beat --once``).
        When another beat holds the lease nothing fires."""
        lease = self.acquire()
        if not lease.mine:
            self._event("standby", f"another beat is active: {lease.describe()}; nothing fired")
            return lease, []
        keeper = LeaseKeeper(self.store, self.holder, self.ttl, self.clock).start()
        try:
            return lease, self.fire_due(self.clock())
        finally:
            keeper.stop()
            self.release()

    def run(self, stop: threading.Event, *, standby: bool = True) -> LeaseState | None:
        """Fire jobs as they fall due until ``stop`` is set. Without ``standby`` a beat that finds
        the lease held returns that lease at once; with it, it waits to take over."""
        keeper: LeaseKeeper | None = None
        waiting_for: str | None = None
        try:
            while not stop.is_set():
                try:
                    if keeper is None or not keeper.held:
                        if keeper is not None:
                            keeper.stop()
                            keeper = None
                        lease = self.acquire()
                        if not lease.mine:
                            if not standby:
                                return lease
                            if waiting_for != lease.holder:
                                self._event("standby", f"standing by: {lease.describe()}")
                                waiting_for = lease.holder
                            remaining = (lease.expires_at - self.clock()).total_seconds()
                            stop.wait(min(self.ttl.total_seconds() / 3, max(1.0, remaining + 0.5)))
                            continue
                        waiting_for = None
                        self._event(
                            "lease", f"holding the schedule lease as {self.holder} ({self._jobs_text()})"
                        )
                        keeper = LeaseKeeper(self.store, self.holder, self.ttl, self.clock).start()
                    self.fire_due(self.clock())
                    stop.wait(self._sleep_for(self.clock()))
                except FleetfixError as exc:
                    self._event(
                        "error", f"{exc.kind}: {exc}; trying again in {ERROR_BACKOFF_S:.0f} s", logging.ERROR
                    )
                    stop.wait(ERROR_BACKOFF_S)
            return None
        finally:
            if keeper is not None:
                keeper.stop()
                if keeper.held:
                    self.release()

    def _sleep_for(self, now: datetime) -> float:
        wake = next_wake(self.jobs, now)
        if wake is None:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, (wake - now).total_seconds() + 0.01))

    def _jobs_text(self) -> str:
        enabled = [job for job in self.jobs if job.enabled]
        if not enabled:
            return "no enabled jobs"
        now = self.clock()
        parts = [f"{job.name} next at {both_times(job.next(now).at, job.zone)}" for job in enabled]
        return "; ".join(parts)


def offset_clock(start: datetime) -> Clock:
    """A clock that starts at ``start`` and runs at the real pace (``fleetfix beat --now``)."""
    origin = time.monotonic()

    def clock() -> datetime:
        return start.astimezone(UTC) + timedelta(seconds=time.monotonic() - origin)

    return clock


__all__ = [
    "ADVANCE_RUN_TASK",
    "SCHEDULED_SWEEP_TASK",
    "Beat",
    "BeatEvent",
    "CeleryDispatch",
    "Dispatcher",
    "FireOutcome",
    "InProcess",
    "beat_holder",
    "both_times",
    "offset_clock",
]
