"""The coordinator: :func:`advance` drives a run from whatever state the store shows.

It is re-entrant. Each pass reads the run, decides what is next and does it: refuse a run that
awaits approval, pause (or wait) outside the change window, dispatch the current wave's pending
targets (and take over targets left ``running`` by a dead attempt), judge the wave (canary,
failure budget), move on to the next wave, finish. Nothing is kept in memory between passes that
the store does not also hold, so a killed process loses nothing: ``advance`` again continues where
the store says the run is.

Only one ``advance`` works on a run at a time: it first claims the run (``runs.coordinator``, a
lease renewed by a heartbeat while it works); a second caller gets RunBusyError until the claim is
released or expires.

The gate asked before *each* target starts stops new targets when the change window closes, a
cancel is requested, a canary (or tenant) target failed, or the failure budget is exceeded; the
targets in progress finish, the rest stay ``pending`` for the next ``advance`` (window) or become
``cancelled`` when the run ends (cancel, canary, budget).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from orchestrator.engine.executors import Executor
from orchestrator.engine.leases import leases_of
from orchestrator.engine.model import (
    TERMINAL_RUN_STATUSES,
    Clock,
    EventKind,
    EventSink,
    RunEvent,
    RunStatus,
    TargetOutcome,
    TargetState,
    TargetTask,
    WaveKind,
    WaveStatus,
)
from orchestrator.engine.runs import (
    RunView,
    WaveView,
    cancel_requested,
    claim_coordinator,
    finish_run,
    get_run,
    pause_run,
    release_coordinator,
    renew_coordinator,
    run_status,
    set_pause_reason,
    set_wave_status,
    start_run,
    write_transaction,
)
from orchestrator.engine.targets import Heartbeat
from orchestrator.engine.windows import ChangeWindow
from orchestrator.errors import FleetfixError, InputError, InternalError
from orchestrator.store.audit import append_audit, local_actor
from orchestrator.store.db import Store
from orchestrator.store.engine import store_errors
from orchestrator.store.types import utcnow

if TYPE_CHECKING:
    from orchestrator.config import Settings

log = logging.getLogger(__name__)

_STALLED_PASSES = 3
"""Passes in a row in which nothing changed and nothing stopped; more means a bug, not a wait."""


@dataclass(frozen=True)
class CoordinatorPolicy:
    """``claim_ttl``: how long the coordinator's claim on a run lives unless renewed (renewed every
    third of it), i.e. how soon a run whose process died can be resumed elsewhere.
    ``poll``: how often to look again while a target is in progress on another worker.
    ``max_sleep``: the longest single sleep while waiting for a window (cancel is checked between).
    """

    claim_ttl: timedelta = timedelta(seconds=60)
    poll: timedelta = timedelta(seconds=2)
    max_sleep: timedelta = timedelta(minutes=1)


def _coordinator_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _local(at: datetime, window: ChangeWindow) -> str:
    return at.astimezone(window.tz).isoformat(timespec="minutes")


class _Gate:
    """``should_start`` for one dispatch: the window, cancel, canary and budget checks, plus the
    failure counts kept current by ``finished`` (no store query per target for the budget)."""

    def __init__(self, drive: _Drive, view: RunView, wave: WaveView):
        self._drive = drive
        self._wave = wave
        self._lock = threading.Lock()
        self.failures = view.failures
        self.total = view.total
        self.wave_failures = sum(1 for target in view.wave_targets(wave.number) if target.is_failure)
        self.stopped: str | None = None

    def _reason(self) -> str | None:
        drive = self._drive
        window = drive.window
        if window is not None and not drive.ignore_window and not window.is_open(drive.clock()):
            return "window"
        if cancel_requested(drive.store, drive.run_id):
            return "cancel"
        with self._lock:
            if self._wave.kind is not WaveKind.WAVE and self.wave_failures:
                return "canary"
            if drive.budget.exceeded(self.failures, self.total):
                return "budget"
        return None

    def __call__(self, target: str) -> bool:
        if self.stopped is not None:
            return False
        reason = self._reason()
        if reason is not None:
            with self._lock:
                self.stopped = self.stopped or reason
            return False
        return True

    def finished(self, task: TargetTask, outcome: TargetOutcome) -> None:
        with self._lock:
            if outcome.is_failure:
                self.failures += 1
                if task.wave == self._wave.number:
                    self.wave_failures += 1
        self._drive.emit(
            EventKind.TARGET_FINISHED,
            wave=task.wave,
            target=task.target,
            state=outcome.state,
            message=outcome.message,
        )


class _Drive:
    """One ``advance`` call's state: the inputs, and helpers that each do one store transaction."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        executor: Executor,
        *,
        clock: Clock,
        sleep: Callable[[float], None],
        on_event: EventSink | None,
        wait_for_window: bool,
        ignore_window: bool,
        actor: str,
        policy: CoordinatorPolicy,
        view: RunView,
    ):
        self.store = store
        self.run_id = run_id
        self.executor = executor
        self.clock = clock
        self.sleep = sleep
        self.on_event = on_event
        self.wait_for_window = wait_for_window
        self.ignore_window = ignore_window
        self.actor = actor
        self.policy = policy
        self.window = view.window
        self.budget = view.options.rollout.max_fail
        self._event_lock = threading.Lock()

    # --- small steps ----------------------------------------------------------------------------

    def emit(
        self,
        kind: EventKind,
        *,
        wave: int | None = None,
        target: str | None = None,
        state: str | None = None,
        message: str = "",
    ) -> None:
        if self.on_event is None:
            return
        event = RunEvent(
            kind, self.run_id, self.clock(), wave=wave, target=target, state=state, message=message
        )
        with self._event_lock:  # executors call from several threads; sinks need not care
            try:
                self.on_event(event)
            except Exception:  # a display problem must not stop a run that is changing hosts
                log.exception("progress event handler failed on %s", event.kind)

    def view(self) -> RunView:
        return get_run(self.store, self.run_id)

    def finish(self, status: RunStatus, message: str, *, failed_wave: int | None = None) -> RunView:
        at = self.clock()
        with write_transaction(self.store) as session:
            # someone may have ended it meanwhile (a cancel after our claim had lapsed): theirs stands
            if run_status(session, self.run_id) in TERMINAL_RUN_STATUSES:
                return self.view()
            if failed_wave is not None:
                set_wave_status(session, self.run_id, failed_wave, WaveStatus.FAILED, at)
            finish_run(session, self.run_id, status, message, actor=self.actor, at=at)
        self.emit(EventKind.RUN_FINISHED, state=status, message=message)
        return self.view()

    def pause(self, view: RunView, reason: str) -> RunView:
        at = self.clock()
        with write_transaction(self.store) as session:
            if view.status is RunStatus.PAUSED:
                set_pause_reason(session, self.run_id, reason)
            else:
                pause_run(session, self.run_id, reason, actor=self.actor, at=at)
        self.emit(EventKind.RUN_PAUSED, state=RunStatus.PAUSED, message=reason)
        return self.view()

    def start(self, view: RunView) -> None:
        at = self.clock()
        with write_transaction(self.store) as session:
            start_run(session, self.run_id, actor=self.actor, at=at)
            if self.ignore_window and self.window is not None and not self.window.is_open(at):
                append_audit(
                    session, self.actor, "run.ignore_window", self.run_id, {"window": self.window.spec}
                )
        kind = EventKind.RUN_STARTED if view.started_at is None else EventKind.RUN_RESUMED
        self.emit(kind, state=RunStatus.RUNNING)

    def recover(self, interrupted: str | None) -> None:
        """A run found ``running`` was interrupted (its coordinator died): audit that it goes on."""
        with write_transaction(self.store) as session:
            append_audit(
                session,
                self.actor,
                "run.resume",
                self.run_id,
                {"from": "running", "to": "running", "interrupted_coordinator": interrupted},
            )
        self.emit(EventKind.RUN_RESUMED, state=RunStatus.RUNNING, message="after an interruption")

    def wave_status(self, number: int, status: WaveStatus) -> None:
        with write_transaction(self.store) as session:
            set_wave_status(session, self.run_id, number, status, self.clock())

    # --- decisions ------------------------------------------------------------------------------

    def closed_window(self, now: datetime) -> datetime | None:
        """When the window next opens, if it is closed now and not ignored; else None."""
        if self.window is None or self.ignore_window or self.window.is_open(now):
            return None
        return self.window.next_open(now)

    def wait_for(self, opens: datetime) -> None:
        """Sleep until ``opens`` in slices, looking for a cancel between them."""
        while True:
            now = self.clock()
            if now >= opens or cancel_requested(self.store, self.run_id):
                return
            self.sleep(min((opens - now).total_seconds(), self.policy.max_sleep.total_seconds()))

    def tasks(self, view: RunView, wave: int) -> tuple[list[TargetTask], list[str]]:
        """The wave's dispatchable tasks, and the targets in progress elsewhere (to wait for)."""
        now = self.clock()
        with store_errors(self.store.engine.url), self.store.sessions() as session:
            leases = leases_of(session, self.run_id)
        tasks: list[TargetTask] = []
        elsewhere: list[str] = []
        for target in view.wave_targets(wave):
            if target.state is TargetState.PENDING:
                takeover = False
            elif target.state is TargetState.RUNNING:
                lease = leases.get(target.name)
                dead = lease is None or lease.expires_at <= now or self.executor.in_process
                if not dead:
                    elsewhere.append(target.name)
                    continue
                takeover = True
            else:
                continue
            tasks.append(
                TargetTask(
                    run_id=self.run_id,
                    target=target.name,
                    role=target.role,
                    wave=wave,
                    attempt=target.attempts + 1,
                    takeover=takeover,
                    planned=target.planned,
                )
            )
        return tasks, elsewhere

    def verdict(self, view: RunView, wave: WaveView) -> str | None:
        """Why the run must stop after (part of) this wave, or None."""
        if wave.kind is not WaveKind.WAVE:
            for target in view.wave_targets(wave.number):
                if target.is_failure:
                    what = "canary" if wave.kind is WaveKind.CANARY else "tenant change"
                    return f"{what} failed on {target.name}: {target.message}"
        if self.budget.exceeded(view.failures, view.total):
            return (
                f"failure budget exceeded: {view.failures} of {view.total} targets failed "
                f"(max {self.budget.allowed(view.total)})"
            )
        return None

    # --- the loop -------------------------------------------------------------------------------

    def run(self, interrupted: str | None) -> RunView:
        if self.view().status is RunStatus.RUNNING:
            self.recover(interrupted)
        stalled = 0
        while True:
            view = self.view()
            if view.finished:
                return view
            if view.cancel_requested:
                return self.finish(RunStatus.CANCELLED, "cancelled on request")
            opens = self.closed_window(self.clock())
            if opens is not None:
                assert self.window is not None
                view = self.pause(view, f"outside change window; next opens at {_local(opens, self.window)}")
                if not self.wait_for_window:
                    return view
                self.emit(
                    EventKind.RUN_WAITING,
                    message=f"waiting for the change window ({_local(opens, self.window)})",
                )
                self.wait_for(opens)
                continue
            wave = next((wave for wave in view.waves if _unfinished(view, wave)), None)
            if wave is None:
                return self.finish(RunStatus.SUCCEEDED, _summary(view))
            if view.status is not RunStatus.RUNNING:
                self.start(view)
            passed = self._pass(view, wave, stalled)
            if passed is None:
                return self.view()
            stalled = passed

    def _pass(self, view: RunView, wave: WaveView, stalled: int) -> int | None:
        """One dispatch of ``wave``; the new stall count, or None when the run ended."""
        if wave.status is WaveStatus.PENDING:
            self.wave_status(wave.number, WaveStatus.RUNNING)
            self.emit(
                EventKind.WAVE_STARTED, wave=wave.number, state=WaveStatus.RUNNING, message=wave.kind.value
            )
        tasks, elsewhere = self.tasks(view, wave.number)
        gate = _Gate(self, view, wave)
        if tasks:
            self.executor.execute(self.run_id, tasks, gate, gate.finished)
        elif elsewhere:
            self.sleep(self.policy.poll.total_seconds())
        after = self.view()
        reason = self.verdict(after, wave)
        if reason is not None:
            self.finish(RunStatus.FAILED, reason, failed_wave=wave.number)
            return None
        current = next(w for w in after.waves if w.number == wave.number)
        if not _unfinished(after, current):
            self.wave_status(wave.number, WaveStatus.COMPLETED)
            self.emit(
                EventKind.WAVE_FINISHED,
                wave=wave.number,
                state=WaveStatus.COMPLETED,
                message=_summary(after, wave.number),
            )
            return 0
        if gate.stopped is not None or elsewhere:
            return 0  # the next pass pauses, cancels or waits
        if _snapshot(after, wave.number) == _snapshot(view, wave.number):
            stalled += 1
            if stalled >= _STALLED_PASSES:
                raise InternalError(f"run {self.run_id}: wave {wave.number} makes no progress")
        return stalled


def _unfinished(view: RunView, wave: WaveView) -> bool:
    return any(
        target.state in (TargetState.PENDING, TargetState.RUNNING)
        for target in view.wave_targets(wave.number)
    )


def _snapshot(view: RunView, wave: int) -> Sequence[tuple[str, TargetState, int]]:
    return [(target.name, target.state, target.attempts) for target in view.wave_targets(wave)]


def _summary(view: RunView, wave: int | None = None) -> str:
    targets = view.targets if wave is None else view.wave_targets(wave)
    counts: dict[str, int] = {}
    for target in targets:
        counts[target.state.value] = counts.get(target.state.value, 0) + 1
    parts = ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))
    return f"{len(targets)} targets: {parts}"


def _check_startable(view: RunView) -> None:
    if view.status is RunStatus.AWAITING_APPROVAL:
        raise InputError(
            f"run {view.id} awaits approval by a second person: `fleetfix runs approve {view.id}`",
            field="RUN_ID",
        )
    if view.status is RunStatus.PLANNED:
        raise InputError(f"run {view.id} is a saved plan; submit it before it can run", field="RUN_ID")


def advance(
    store: Store,
    run_id: str,
    executor: Executor,
    *,
    clock: Clock = utcnow,
    sleep: Callable[[float], None] = time.sleep,
    settings: Settings | None = None,
    on_event: EventSink | None = None,
    wait_for_window: bool = False,
    ignore_window: bool = False,
    actor: str | None = None,
    policy: CoordinatorPolicy | None = None,
) -> RunView:
    """Drive the run until it finishes, pauses or waits; returns the run as it then stands.

    * A finished run is returned as it is (no-op). A run awaiting approval, or a saved plan, is an
      InputError. Another live ``advance`` on the same run is a RunBusyError.
    * Outside the run's change window the run is paused with the reason "outside change window;
      next opens at T"; with ``wait_for_window`` it stays paused while ``sleep`` waits for the window,
      then goes on. ``ignore_window`` goes on regardless (audited as ``run.ignore_window``).
    * Waves run in order through ``executor``; a failure in the canary (or tenant) wave fails the
      run ("canary failed on H: message"), as does exceeding the fleet-wide failure budget
      ("failure budget exceeded: 3 of 40 targets failed (max 2)"); a requested cancel ends it
      ``cancelled``. Targets that never started then become ``cancelled``.
    * ``on_event`` receives progress events (one at a time, from any thread).

    Audit entries (start, resume, pause, finish) name ``actor`` (default: the local user).
    ``settings`` is accepted for engine settings to come; the run's own options decide today.
    """
    del settings  # the run's options (stored at creation) are authoritative
    view = get_run(store, run_id)
    if view.finished:
        return view
    _check_startable(view)
    policy = policy or CoordinatorPolicy()
    holder = _coordinator_id()
    interrupted = view.coordinator
    view = claim_coordinator(store, run_id, holder, policy.claim_ttl, clock())
    drive = _Drive(
        store,
        run_id,
        executor,
        clock=clock,
        sleep=sleep,
        on_event=on_event,
        wait_for_window=wait_for_window,
        ignore_window=ignore_window,
        actor=actor or local_actor(),
        policy=policy,
        view=view,
    )

    def renew() -> None:
        if not renew_coordinator(store, run_id, holder, policy.claim_ttl, clock()):
            log.warning("run %s: lost the coordinator claim", run_id)

    try:
        with Heartbeat((policy.claim_ttl / 3).total_seconds(), renew, name=f"fleetfix-run-{run_id[:8]}"):
            drive.run(interrupted)
    finally:
        with contextlib.suppress(FleetfixError):
            release_coordinator(store, run_id, holder)
    return get_run(store, run_id)  # as others now see it: without our claim


__all__ = ["CoordinatorPolicy", "advance"]
