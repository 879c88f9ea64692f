"""Runs in the store: create, read, approve, cancel, and the guarded state changes the coordinator
and the workers make.

Every change happens in one store transaction and is checked against the transition tables of
:mod:`orchestrator.engine.model`; changes an admin would want to see later (created, approved,
started, paused, resumed, cancelled, finished) are written to the audit log in the same
transaction. Per-target outcomes go to ``run_targets``; what the host work changed on a host is
audited by the host work itself.

Readers get immutable values (:class:`RunView`, :class:`WaveView`, :class:`TargetView`), never ORM
rows. Functions taking a ``Store`` open their own transaction; functions taking a ``Session`` join
the caller's (they are the building blocks of the coordinator and of :mod:`.targets`).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from orchestrator.engine.leases import release_run
from orchestrator.engine.model import (
    FAILURE_STATES,
    TERMINAL_RUN_STATUSES,
    RolloutOptions,
    RunStatus,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    WaveKind,
    WaveStatus,
    check_run_transition,
    check_target_transition,
)
from orchestrator.engine.waves import Target, plan_waves
from orchestrator.engine.windows import ChangeWindow, resolve_window
from orchestrator.errors import InputError, RunBusyError
from orchestrator.store.audit import append_audit
from orchestrator.store.db import Store
from orchestrator.store.engine import store_errors, writer
from orchestrator.store.models import Run, RunKind, RunTarget, RunWave
from orchestrator.store.types import utcnow

if TYPE_CHECKING:
    from orchestrator.config import Settings

_ERROR_KIND_LENGTH = 32
INTERRUPTED = "interrupted: the attempt stopped before it finished; the host may be partly changed"


# --- transactions -------------------------------------------------------------------------------


@contextlib.contextmanager
def write_transaction(store: Store) -> Iterator[Session]:
    """A transaction that reads before it writes: on SQLite it takes the write lock at BEGIN, so a
    concurrent writer makes it wait (busy timeout) instead of failing half-way. Commits at the end
    of the block, rolls back on an exception; database errors come out as StoreError."""
    with (
        store_errors(store.engine.url),
        Session(writer(store.engine), expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


# --- values -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    """How a run rolls out, as stored in ``runs.options``.

    ``window`` is the canonical spec of the change window (a config name is resolved when the run
    is created, so editing the config later does not move an existing run's window);
    ``window_name`` the name it came from. ``extra`` holds references such as saved plan digests.
    """

    rollout: RolloutOptions
    window: str | None = None
    window_name: str | None = None
    concurrency: int | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def change_window(self) -> ChangeWindow | None:
        if self.window is None:
            return None
        return ChangeWindow.parse(self.window, name=self.window_name)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.rollout.to_json(),
            "window": self.window,
            "window_name": self.window_name,
            "concurrency": self.concurrency,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        if not data:  # a sweep, or a run written before the engine existed
            return cls(rollout=RolloutOptions())
        return cls(
            rollout=RolloutOptions.from_json(data),
            window=data.get("window"),
            window_name=data.get("window_name"),
            concurrency=data.get("concurrency"),
            extra=MappingProxyType(dict(data.get("extra") or {})),
        )


@dataclass(frozen=True)
class WaveView:
    number: int
    kind: WaveKind
    status: WaveStatus
    started_at: datetime | None
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "kind": self.kind.value,
            "status": self.status.value,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True)
class TargetView:
    """One target of a run and the outcome of its latest attempt."""

    name: str
    role: TargetRole
    wave: int
    state: TargetState
    attempts: int
    message: str
    error_kind: str | None
    detail: Mapping[str, Any]
    planned: Mapping[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def is_failure(self) -> bool:
        return self.state in FAILURE_STATES

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "wave": self.wave,
            "state": self.state.value,
            "attempts": self.attempts,
            "message": self.message,
            "error_kind": self.error_kind,
            "detail": dict(self.detail),
            "planned": self.planned is not None,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


@dataclass(frozen=True)
class RunView:
    """A run with its waves and targets (``targets`` in wave order, then creation order).

    :func:`list_runs` returns views without waves and targets (empty tuples) but with ``counts``.
    """

    id: str
    kind: RunKind
    playbook_id: str | None
    status: RunStatus
    selector: str | None
    parameters: Mapping[str, Any]
    options: RunOptions
    requested_by: str
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pause_reason: str | None
    status_message: str | None
    cancel_requested: bool
    coordinator: str | None
    coordinator_expires: datetime | None
    counts: Mapping[TargetState, int]
    waves: tuple[WaveView, ...] = ()
    targets: tuple[TargetView, ...] = ()

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failures(self) -> int:
        return sum(count for state, count in self.counts.items() if state in FAILURE_STATES)

    @property
    def window(self) -> ChangeWindow | None:
        return self.options.change_window

    def target(self, name: str) -> TargetView:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def wave_targets(self, number: int) -> tuple[TargetView, ...]:
        return tuple(target for target in self.targets if target.wave == number)

    def to_dict(self, *, targets: bool = True) -> dict[str, Any]:
        """JSON-friendly, for ``--output json``; ``targets=False`` leaves waves and targets out."""
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind.value,
            "playbook_id": self.playbook_id,
            "status": self.status.value,
            "selector": self.selector,
            "options": self.options.to_json(),
            "requested_by": self.requested_by,
            "approved_by": self.approved_by,
            "approved_at": _iso(self.approved_at),
            "created_at": _iso(self.created_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "pause_reason": self.pause_reason,
            "status_message": self.status_message,
            "cancel_requested": self.cancel_requested,
            "counts": {state.value: count for state, count in sorted(self.counts.items())},
        }
        if targets:
            data["waves"] = [wave.to_dict() for wave in self.waves]
            data["targets"] = [target.to_dict() for target in self.targets]
        return data


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _json_value(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A JSON-compatible copy: what cannot be encoded is stored as its text, not lost or raised."""
    return json.loads(json.dumps(dict(value or {}), default=str))  # type: ignore[no-any-return]


def _target_view(row: RunTarget) -> TargetView:
    return TargetView(
        name=row.target,
        role=TargetRole(row.role),
        wave=row.wave,
        state=TargetState(row.state),
        attempts=row.attempts,
        message=row.message,
        error_kind=row.error_kind,
        detail=MappingProxyType(dict(row.detail or {})),
        planned=None if row.planned is None else MappingProxyType(dict(row.planned)),
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _run_view(
    run: Run,
    counts: Mapping[TargetState, int],
    waves: Sequence[RunWave] = (),
    targets: Sequence[RunTarget] = (),
) -> RunView:
    return RunView(
        id=run.id,
        kind=RunKind(run.kind),
        playbook_id=run.playbook_id,
        status=RunStatus(run.status),
        selector=run.selector,
        parameters=MappingProxyType(dict(run.parameters or {})),
        options=RunOptions.from_json(run.options or {}),
        requested_by=run.requested_by,
        approved_by=run.approved_by,
        approved_at=run.approved_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        pause_reason=run.pause_reason,
        status_message=run.status_message,
        cancel_requested=bool(run.cancel_requested),
        coordinator=run.coordinator,
        coordinator_expires=run.coordinator_expires,
        counts=MappingProxyType(dict(counts)),
        waves=tuple(
            WaveView(
                wave.number, WaveKind(wave.kind), WaveStatus(wave.status), wave.started_at, wave.finished_at
            )
            for wave in waves
        ),
        targets=tuple(_target_view(row) for row in targets),
    )


# --- creating -----------------------------------------------------------------------------------


def _resolve_window(window_text: str | None, settings: Settings | None) -> ChangeWindow | None:
    if window_text is None or not window_text.strip():
        return None
    if settings is not None:
        return resolve_window(window_text, settings)
    return ChangeWindow.parse(window_text)


def create_run(
    store: Store,
    *,
    playbook_id: str | None,
    targets: Sequence[Target],
    rollout: RolloutOptions,
    requested_by: str,
    kind: RunKind = RunKind.PLAYBOOK,
    window_text: str | None = None,
    needs_approval: bool = False,
    parameters: Mapping[str, Any] | None = None,
    plans: Mapping[str, Mapping[str, Any]] | None = None,
    selector: str | None = None,
    concurrency: int | None = None,
    extra_options: Mapping[str, Any] | None = None,
    planned_only: bool = False,
    executor: str = "local",
    settings: Settings | None = None,
    now: datetime | None = None,
) -> str:
    """Record a new run with its waves (:func:`~orchestrator.engine.waves.plan_waves`) and targets,
    all ``pending``; returns its id. Audited as ``run.create``.

    The run starts as ``awaiting_approval`` when ``needs_approval`` (a second person must
    :func:`approve` it), as ``planned`` when ``planned_only`` (a --check run keeping its plans; see
    :func:`submit_planned`), else ``pending``: :func:`~orchestrator.engine.coordinator.advance`
    runs it. ``window_text`` is a literal window spec, or a config name when ``settings`` is given.
    ``plans`` maps target names to saved plans (``run_targets.planned``); a plan for a target that
    is not in ``targets`` is an InputError. Nothing is written when anything is invalid.
    """
    waves = plan_waves(targets, rollout)
    if not waves:
        raise InputError("a run needs at least one target", field="targets")
    names = {name for wave in waves for name, _role in wave.targets}
    unknown = sorted(set(plans or {}) - names)
    if unknown:
        raise InputError(
            f"plans given for targets that are not in the run: {', '.join(unknown)}", field="plans"
        )
    if concurrency is not None and concurrency < 1:
        raise InputError("must be at least 1", field="--concurrency")
    window = _resolve_window(window_text, settings)
    options = RunOptions(
        rollout=rollout,
        window=None if window is None else window.spec,
        window_name=None if window is None else window.name,
        concurrency=concurrency,
        extra=MappingProxyType(_json_value(extra_options)),
    )
    if planned_only:
        status = RunStatus.PLANNED
    else:
        status = RunStatus.AWAITING_APPROVAL if needs_approval else RunStatus.PENDING
    at = now or utcnow()
    with write_transaction(store) as session:
        run = Run(
            kind=kind.value,
            playbook_id=playbook_id,
            status=status.value,
            selector=selector,
            parameters=_json_value(parameters),
            requested_by=requested_by,
            executor=executor,
            created_at=at,
            options=options.to_json(),
            cancel_requested=False,
        )
        session.add(run)
        session.flush()
        append_audit(
            session,
            requested_by,
            "run.create",
            run.id,
            {
                "playbook": playbook_id,
                "status": status.value,
                "targets": len(names),
                "waves": len(waves),
                "options": options.to_json(),
            },
        )
        for wave in waves:
            session.add(
                RunWave(
                    run_id=run.id, number=wave.number, kind=wave.kind.value, status=WaveStatus.PENDING.value
                )
            )
            for name, role in wave.targets:
                planned = (plans or {}).get(name)
                session.add(
                    RunTarget(
                        run_id=run.id,
                        wave=wave.number,
                        target=name,
                        role=role.value,
                        state=TargetState.PENDING.value,
                        attempts=0,
                        message="",
                        detail={},
                        planned=None if planned is None else _json_value(planned),
                    )
                )
        return run.id


# --- reading ------------------------------------------------------------------------------------


def _counts(session: Session, run_ids: Collection[str]) -> dict[str, Counter[TargetState]]:
    out: dict[str, Counter[TargetState]] = {run_id: Counter() for run_id in run_ids}
    if not run_ids:
        return out
    rows = session.execute(
        select(RunTarget.run_id, RunTarget.state, func.count())
        .where(RunTarget.run_id.in_(run_ids))
        .group_by(RunTarget.run_id, RunTarget.state)
    )
    for run_id, state, count in rows:
        out[run_id][TargetState(state)] = count
    return out


def _load_run(session: Session, run_id: str, *, for_update: bool = False) -> Run:
    query = select(Run).where(Run.id == run_id)
    if for_update:
        query = query.with_for_update()
    run = session.execute(query).scalar_one_or_none()
    if run is None:
        raise InputError(f"no run {run_id}", field="RUN_ID")
    return run


def read_run(session: Session, run_id: str) -> RunView:
    """:func:`get_run` inside the caller's transaction."""
    run = _load_run(session, run_id)
    waves = (
        session.execute(select(RunWave).where(RunWave.run_id == run_id).order_by(RunWave.number))
        .scalars()
        .all()
    )
    targets = (
        session.execute(
            select(RunTarget).where(RunTarget.run_id == run_id).order_by(RunTarget.wave, RunTarget.id)
        )
        .scalars()
        .all()
    )
    counts = Counter(TargetState(row.state) for row in targets)
    return _run_view(run, counts, waves, targets)


def get_run(store: Store, run_id: str) -> RunView:
    """The run with its waves and targets; InputError when there is no such run."""
    with store_errors(store.engine.url), store.sessions() as session, session.begin():
        return read_run(session, run_id)


def list_runs(
    store: Store,
    *,
    kind: RunKind | None = RunKind.PLAYBOOK,
    statuses: Collection[RunStatus] | None = None,
    limit: int = 50,
) -> tuple[RunView, ...]:
    """Runs newest first, with target counts but without waves and targets (``get_run`` for those).

    ``kind=None`` lists sweeps too; ``statuses`` filters, e.g. the unfinished runs to resume.
    """
    query = select(Run).order_by(Run.created_at.desc(), Run.id).limit(limit)
    if kind is not None:
        query = query.where(Run.kind == kind.value)
    if statuses is not None:
        query = query.where(Run.status.in_([status.value for status in statuses]))
    with store_errors(store.engine.url), store.sessions() as session, session.begin():
        runs = session.execute(query).scalars().all()
        counts = _counts(session, [run.id for run in runs])
        return tuple(_run_view(run, counts[run.id]) for run in runs)


# --- approval, submission, cancel ---------------------------------------------------------------


def approve(store: Store, run_id: str, *, approver: str, now: datetime | None = None) -> RunView:
    """Approve a run that awaits approval; it becomes ``pending`` (advance starts it).

    The approver must be a second person: approving one's own run is an InputError, as is approving
    a run that does not await approval. Audited as ``run.approve``.
    """
    at = now or utcnow()
    with write_transaction(store) as session:
        run = _load_run(session, run_id, for_update=True)
        if run.status != RunStatus.AWAITING_APPROVAL:
            raise InputError(f"run {run_id} does not await approval (it is {run.status})", field="RUN_ID")
        if _same_person(approver, run.requested_by):
            raise InputError(
                f"{approver} requested run {run_id} and cannot approve it too: a second person must",
                field="approver",
            )
        _set_status(session, run, RunStatus.PENDING, actor=approver, action="run.approve", at=at)
        run.approved_by = approver
        run.approved_at = at
        return read_run(session, run_id)


def _same_person(first: str, second: str) -> bool:
    return first.strip().casefold() == second.strip().casefold()


def submit_planned(store: Store, run_id: str, *, actor: str, needs_approval: bool) -> RunView:
    """Submit a ``planned`` run (a --check run with saved plans) for execution: ``pending``, or
    ``awaiting_approval`` when ``needs_approval``. Audited as ``run.submit``."""
    with write_transaction(store) as session:
        run = _load_run(session, run_id, for_update=True)
        if run.status != RunStatus.PLANNED:
            raise InputError(f"run {run_id} is not a saved plan (it is {run.status})", field="RUN_ID")
        new = RunStatus.AWAITING_APPROVAL if needs_approval else RunStatus.PENDING
        _set_status(session, run, new, actor=actor, action="run.submit", at=utcnow())
        return read_run(session, run_id)


def request_cancel(store: Store, run_id: str, *, actor: str, now: datetime | None = None) -> RunView:
    """Cancel a run. A run nobody is advancing right now (not started, paused, awaiting approval,
    planned, or running under a coordinator whose claim expired) is cancelled at once; a run being
    advanced gets ``cancel_requested`` and its coordinator stops it before the next target starts
    (targets in progress finish). A finished run is left alone. Audited as ``run.cancel``.
    """
    at = now or utcnow()
    with write_transaction(store) as session:
        run = _load_run(session, run_id, for_update=True)
        if RunStatus(run.status) in TERMINAL_RUN_STATUSES:
            return read_run(session, run_id)
        append_audit(session, actor, "run.cancel", run_id, {"status": run.status})
        run.cancel_requested = True
        live = (
            run.coordinator is not None
            and run.coordinator_expires is not None
            and run.coordinator_expires > at
        )
        if not live:
            finish_run(session, run_id, RunStatus.CANCELLED, f"cancelled by {actor}", actor=actor, at=at)
        return read_run(session, run_id)


# --- guarded changes (the coordinator's and the workers' building blocks) -----------------------


def _set_status(
    session: Session, run: Run, new: RunStatus, *, actor: str, action: str, at: datetime, **details: Any
) -> None:
    old = RunStatus(run.status)
    check_run_transition(old, new, run_id=run.id)
    append_audit(session, actor, action, run.id, {"from": old.value, "to": new.value, **details})
    run.status = new.value


def start_run(session: Session, run_id: str, *, actor: str, at: datetime, **details: Any) -> Run:
    """pending/paused -> running; audited as ``run.start`` the first time, ``run.resume`` after."""
    run = _load_run(session, run_id, for_update=True)
    first = run.started_at is None
    _set_status(
        session,
        run,
        RunStatus.RUNNING,
        actor=actor,
        action="run.start" if first else "run.resume",
        at=at,
        **details,
    )
    if first:
        run.started_at = at
    run.pause_reason = None
    return run


def pause_run(session: Session, run_id: str, reason: str, *, actor: str, at: datetime) -> Run:
    """running/pending -> paused with ``reason``; audited as ``run.pause``."""
    run = _load_run(session, run_id, for_update=True)
    _set_status(session, run, RunStatus.PAUSED, actor=actor, action="run.pause", at=at, reason=reason)
    run.pause_reason = reason
    return run


def set_pause_reason(session: Session, run_id: str, reason: str) -> None:
    """Update why a paused run is paused (no transition, no audit: it was audited when it paused)."""
    session.execute(update(Run).where(Run.id == run_id).values(pause_reason=reason))


def run_status(session: Session, run_id: str) -> RunStatus:
    """The run's status, locked for the rest of the transaction (PostgreSQL)."""
    return RunStatus(_load_run(session, run_id, for_update=True).status)


def finish_run(
    session: Session, run_id: str, status: RunStatus, message: str, *, actor: str, at: datetime
) -> None:
    """End a run: targets that never started become ``cancelled`` (with why), targets left
    ``running`` by a dead attempt ``cancelled`` as interrupted, unfinished waves ``cancelled``; the
    run's leftover leases are released. Audited as ``run.finish`` with the counts."""
    if status not in TERMINAL_RUN_STATUSES:
        raise ValueError(f"{status} is not a final status")
    run = _load_run(session, run_id, for_update=True)
    reason = f"not started: {message}" if status is not RunStatus.SUCCEEDED else ""
    session.execute(
        update(RunTarget)
        .where(RunTarget.run_id == run.id, RunTarget.state == TargetState.PENDING.value)
        .values(state=TargetState.CANCELLED.value, message=reason, finished_at=at)
    )
    # Still running now means the attempt died (the coordinator waits for live ones): say so.
    session.execute(
        update(RunTarget)
        .where(RunTarget.run_id == run.id, RunTarget.state == TargetState.RUNNING.value)
        .values(
            state=TargetState.CANCELLED.value, message=INTERRUPTED, error_kind="interrupted", finished_at=at
        )
    )
    session.execute(
        update(RunWave)
        .where(
            RunWave.run_id == run.id, RunWave.status.in_([WaveStatus.PENDING.value, WaveStatus.RUNNING.value])
        )
        .values(status=WaveStatus.CANCELLED.value, finished_at=at)
    )
    release_run(session, run.id)  # leftovers of dead attempts; nobody of this run works any more
    counts = _counts(session, [run.id])[run.id]
    _set_status(
        session,
        run,
        status,
        actor=actor,
        action="run.finish",
        at=at,
        message=message,
        counts={state.value: count for state, count in sorted(counts.items())},
    )
    run.status_message = message
    run.finished_at = at
    run.pause_reason = None


def set_wave_status(session: Session, run_id: str, number: int, status: WaveStatus, at: datetime) -> None:
    """Move a wave along: running sets ``started_at`` (first time), a final status ``finished_at``."""
    wave = session.execute(
        select(RunWave).where(RunWave.run_id == run_id, RunWave.number == number).with_for_update()
    ).scalar_one()
    wave.status = status.value
    if status is WaveStatus.RUNNING and wave.started_at is None:
        wave.started_at = at
    if status in {WaveStatus.COMPLETED, WaveStatus.FAILED, WaveStatus.CANCELLED}:
        wave.finished_at = at


def claim_target(session: Session, task: TargetTask, at: datetime) -> bool:
    """Move the task's target to ``running`` for attempt ``task.attempt``: from ``pending``, or from
    ``running`` when ``task.takeover``. Compare-and-set on ``attempts``: False when the target is no
    longer where the task expects it (a duplicate task, or someone else got there first)."""
    allowed = [TargetState.PENDING.value] + ([TargetState.RUNNING.value] if task.takeover else [])
    result = session.execute(
        update(RunTarget)
        .where(
            RunTarget.run_id == task.run_id,
            RunTarget.target == task.target,
            RunTarget.attempts == task.attempt - 1,
            RunTarget.state.in_(allowed),
        )
        .values(
            state=TargetState.RUNNING.value,
            attempts=task.attempt,
            started_at=at,
            finished_at=None,
            message="taking over an interrupted attempt" if task.takeover else "",
            error_kind=None,
        )
        .returning(RunTarget.id)
    )
    return result.scalar_one_or_none() is not None


def record_outcome(session: Session, task: TargetTask, outcome: TargetOutcome, at: datetime) -> bool:
    """Store the outcome of the task's attempt; False (nothing written) when the target is no longer
    ``running`` under this attempt (it was taken over after our lease expired)."""
    check_target_transition(TargetState.RUNNING, outcome.state, target=task.target)
    result = session.execute(
        update(RunTarget)
        .where(
            RunTarget.run_id == task.run_id,
            RunTarget.target == task.target,
            RunTarget.attempts == task.attempt,
            RunTarget.state == TargetState.RUNNING.value,
        )
        .values(
            state=outcome.state.value,
            message=outcome.message,
            error_kind=None if outcome.error_kind is None else outcome.error_kind[:_ERROR_KIND_LENGTH],
            detail=_json_value(outcome.detail),
            finished_at=at,
        )
        .returning(RunTarget.id)
    )
    return result.scalar_one_or_none() is not None


def skip_target(session: Session, task: TargetTask, reason: str, at: datetime) -> bool:
    """A pending target that will not run in this run (e.g. its host is locked by another run)
    becomes ``skipped`` with ``reason``; also from ``running`` for a takeover. False when the target
    is not where the task expects it."""
    allowed = [TargetState.PENDING.value] + ([TargetState.RUNNING.value] if task.takeover else [])
    result = session.execute(
        update(RunTarget)
        .where(
            RunTarget.run_id == task.run_id,
            RunTarget.target == task.target,
            RunTarget.attempts == task.attempt - 1,
            RunTarget.state.in_(allowed),
        )
        .values(state=TargetState.SKIPPED.value, message=reason, error_kind="locked", finished_at=at)
        .returning(RunTarget.id)
    )
    return result.scalar_one_or_none() is not None


# --- the coordinator's claim on a run -----------------------------------------------------------


def claim_coordinator(store: Store, run_id: str, holder: str, ttl: timedelta, now: datetime) -> RunView:
    """Become the run's coordinator until ``now + ttl``: refused with RunBusyError while another
    holder's claim is live. Returns the run as it stands."""
    with write_transaction(store) as session:
        run = _load_run(session, run_id, for_update=True)
        live = run.coordinator_expires is not None and run.coordinator_expires > now
        if run.coordinator not in (None, holder) and live:
            until = run.coordinator_expires.isoformat(timespec="seconds") if run.coordinator_expires else "?"
            raise RunBusyError(
                f"run {run_id} is being advanced by {run.coordinator} (claim until {until})",
                run_id=run_id,
                holder=run.coordinator,
            )
        run.coordinator = holder
        run.coordinator_expires = now + ttl
        return read_run(session, run_id)


def renew_coordinator(store: Store, run_id: str, holder: str, ttl: timedelta, now: datetime) -> bool:
    """Extend our claim; False when it is no longer ours."""
    with write_transaction(store) as session:
        result = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.coordinator == holder)
            .values(coordinator_expires=now + ttl)
            .returning(Run.id)
        )
        return result.scalar_one_or_none() is not None


def release_coordinator(store: Store, run_id: str, holder: str) -> None:
    with write_transaction(store) as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.coordinator == holder)
            .values(coordinator=None, coordinator_expires=None)
        )


def cancel_requested(store: Store, run_id: str) -> bool:
    """Whether someone asked to cancel the run (a primary-key read, cheap enough per target)."""
    with store_errors(store.engine.url), store.sessions() as session:
        return bool(
            session.execute(select(Run.cancel_requested).where(Run.id == run_id)).scalar_one_or_none()
        )


__all__ = [
    "RunOptions",
    "RunView",
    "TargetView",
    "WaveView",
    "approve",
    "cancel_requested",
    "claim_coordinator",
    "claim_target",
    "create_run",
    "finish_run",
    "get_run",
    "list_runs",
    "pause_run",
    "read_run",
    "record_outcome",
    "release_coordinator",
    "renew_coordinator",
    "request_cancel",
    "run_status",
    "set_pause_reason",
    "set_wave_status",
    "skip_target",
    "start_run",
    "submit_planned",
    "write_transaction",
]
