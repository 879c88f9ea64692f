"""The engine's vocabulary: states and their guarded transitions, what host work receives and
returns, rollout options and the failure budget.

Pure: no I/O. The state enums live in :mod:`orchestrator.store.models` (the store's CHECK
constraints are built from them) and are re-exported here together with the transition tables
that say which change is legal. An illegal change is a bug in fleetfix, so it raises
:class:`~orchestrator.errors.IllegalTransitionError`, never an input error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from orchestrator.errors import IllegalTransitionError, InputError
from orchestrator.store.models import RunStatus, TargetRole, TargetState, WaveKind, WaveStatus

# --- target states ------------------------------------------------------------------------------

TERMINAL_TARGET_STATES: frozenset[TargetState] = frozenset(TargetState) - {
    TargetState.PENDING,
    TargetState.RUNNING,
}
"""A target in one of these states is finished for this run."""

FAILURE_STATES: frozenset[TargetState] = frozenset(
    {TargetState.FAILED, TargetState.VERIFY_FAILED, TargetState.ROLLED_BACK}
)
"""What counts against the failure budget and stops a canary: the change did not hold on the host.
``refused`` (drift from the saved plan) and ``skipped`` (host locked by another run) changed nothing
and are reported, but do not count."""

TARGET_TRANSITIONS: Mapping[TargetState, frozenset[TargetState]] = MappingProxyType(
    {
        TargetState.PENDING: frozenset({TargetState.RUNNING, TargetState.SKIPPED, TargetState.CANCELLED}),
        # running -> running is a takeover: a resumed run re-attempts a target whose earlier
        # attempt died half-way (the work re-reads the host before it re-applies)
        TargetState.RUNNING: frozenset({TargetState.RUNNING, *TERMINAL_TARGET_STATES}),
        **{state: frozenset() for state in TERMINAL_TARGET_STATES},
    }
)


def check_target_transition(current: TargetState | str, new: TargetState | str, *, target: str = "") -> None:
    """Raise IllegalTransitionError unless a target may go from ``current`` to ``new``."""
    current, new = TargetState(current), TargetState(new)
    if new not in TARGET_TRANSITIONS[current]:
        where = f" of target {target}" if target else ""
        raise IllegalTransitionError(f"illegal transition{where}: {current} -> {new}")


# --- run states ---------------------------------------------------------------------------------

TERMINAL_RUN_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
)

RUN_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = MappingProxyType(
    {
        # a --check run with saved plans is submitted (with or without approval) or dropped
        RunStatus.PLANNED: frozenset({RunStatus.PENDING, RunStatus.AWAITING_APPROVAL, RunStatus.CANCELLED}),
        RunStatus.AWAITING_APPROVAL: frozenset({RunStatus.PENDING, RunStatus.CANCELLED}),
        # pending -> paused: the first advance found the change window closed
        RunStatus.PENDING: frozenset({RunStatus.RUNNING, RunStatus.PAUSED, RunStatus.CANCELLED}),
        RunStatus.RUNNING: frozenset(
            {RunStatus.PAUSED, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
        ),
        RunStatus.PAUSED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED}),
        **{status: frozenset() for status in TERMINAL_RUN_STATUSES},
    }
)


def check_run_transition(current: RunStatus | str, new: RunStatus | str, *, run_id: str = "") -> None:
    """Raise IllegalTransitionError unless a run may go from ``current`` to ``new``."""
    current, new = RunStatus(current), RunStatus(new)
    if new not in RUN_TRANSITIONS[current]:
        where = f" of run {run_id}" if run_id else ""
        raise IllegalTransitionError(f"illegal transition{where}: {current} -> {new}")


# --- what host work gets and gives --------------------------------------------------------------


@dataclass(frozen=True)
class TargetOutcome:
    """What a TargetWork returns for one target: a final state and why.

    ``error_kind`` is a short machine word (``unreachable``, ``auth_failed``, ``internal``; the
    ``kind`` of a FleetfixError fits); ``detail`` is JSON-compatible data for reports (changes made,
    verification results). Never put secret values in either.
    """

    state: TargetState
    message: str = ""
    error_kind: str | None = None
    detail: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TargetState(self.state))

    @property
    def is_failure(self) -> bool:
        return self.state in FAILURE_STATES


@dataclass(frozen=True)
class TargetTask:
    """One target to work on, as an executor hands it to a worker.

    JSON-serialisable (:meth:`to_json` / :meth:`from_json`) so that the Celery executor can send
    batches of them; it carries no secret, only names.

    ``attempt`` is the attempt this task is for (1 for the first); the worker claims the target only
    if the store still shows ``attempt - 1`` attempts, so a duplicate delivery does nothing.
    ``takeover`` is True when the target was found ``running`` from an earlier attempt that died:
    the host may be half-changed, so the work must re-read the host before it re-applies.
    ``planned`` is the saved plan for this target (from a --check run), or None.
    """

    run_id: str
    target: str
    role: TargetRole
    wave: int
    attempt: int
    takeover: bool = False
    planned: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", TargetRole(self.role))

    def to_json(self) -> dict[str, Any]:
        """A plain dict for JSON messages."""
        return {
            "run_id": self.run_id,
            "target": self.target,
            "role": self.role.value,
            "wave": self.wave,
            "attempt": self.attempt,
            "takeover": self.takeover,
            "planned": None if self.planned is None else dict(self.planned),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetTask:
        return cls(
            run_id=str(data["run_id"]),
            target=str(data["target"]),
            role=TargetRole(data["role"]),
            wave=int(data["wave"]),
            attempt=int(data["attempt"]),
            takeover=bool(data.get("takeover", False)),
            planned=data.get("planned"),
        )


TargetWork = Callable[[TargetTask], TargetOutcome]
"""The domain work on one target (collect facts, plan, apply, verify), injected into the engine.

It must not raise for host problems (those are outcomes: ``failed`` with an ``error_kind``); if it
raises anyway, the engine records ``failed`` with error_kind ``internal`` and the exception's text.
It may be called from several threads at once, each with its own target.
"""

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware. Injected everywhere so tests can move time."""


# --- rollout ------------------------------------------------------------------------------------

_BUDGET = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*")


@dataclass(frozen=True)
class FailureBudget:
    """How many failed targets a run tolerates, fleet-wide: a count (``"3"``) or a percentage of
    all the run's targets (``"10%"``).

    ``exceeded(failures, total)`` is True when ``failures > allowed(total)``; a percentage allows
    ``floor(percent * total / 100)`` failures, rounding down so that the budget never tolerates more
    than asked (10 % of 15 targets allows 1, not 1.5 or 2). ``0`` (or ``0%``) stops at the first
    failure.
    """

    count: int | None = None
    percent: Fraction | None = None

    def __post_init__(self) -> None:
        if (self.count is None) == (self.percent is None):
            raise InputError("give either a count or a percentage", field="--max-fail")
        if self.count is not None and self.count < 0:
            raise InputError("must not be negative", field="--max-fail")
        if self.percent is not None and not 0 <= self.percent <= 100:
            raise InputError("a percentage must be between 0% and 100%", field="--max-fail")

    @classmethod
    def parse(cls, text: str) -> FailureBudget:
        """``"3"`` (failed targets) or ``"10%"`` / ``"2.5%"`` (of all targets); InputError otherwise."""
        match = _BUDGET.fullmatch(text)
        if match is None:
            raise InputError(
                f"{text!r} is not a failure budget: give a number of targets (3) or a percentage (10%)",
                field="--max-fail",
            )
        number, percent = match.groups()
        if percent:
            return cls(percent=Fraction(number))
        if "." in number:
            raise InputError(f"{text!r}: a count of targets is a whole number", field="--max-fail")
        return cls(count=int(number))

    def allowed(self, total: int) -> int:
        """How many failures a run of ``total`` targets tolerates."""
        if self.count is not None:
            return self.count
        assert self.percent is not None
        return math.floor(self.percent * total / 100)

    def exceeded(self, failures: int, total: int) -> bool:
        return failures > self.allowed(total)

    def __str__(self) -> str:
        if self.count is not None:
            return str(self.count)
        assert self.percent is not None
        value = self.percent
        shown = str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
        return f"{shown}%"


@dataclass(frozen=True)
class RolloutOptions:
    """How a run rolls out: ``canary`` hosts first (0 = no canary wave), then waves of
    ``wave_size``; ``serial`` makes every wave one target; ``max_fail`` is the fleet-wide budget."""

    canary: int = 1
    wave_size: int = 50
    serial: bool = False
    max_fail: FailureBudget = field(default_factory=lambda: FailureBudget(count=0))

    def __post_init__(self) -> None:
        if self.canary < 0:
            raise InputError("must not be negative", field="--canary")
        if self.wave_size < 1:
            raise InputError("must be at least 1", field="--wave-size")

    def to_json(self) -> dict[str, Any]:
        return {
            "canary": self.canary,
            "wave_size": self.wave_size,
            "serial": self.serial,
            "max_fail": str(self.max_fail),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolloutOptions:
        return cls(
            canary=int(data["canary"]),
            wave_size=int(data["wave_size"]),
            serial=bool(data["serial"]),
            max_fail=FailureBudget.parse(str(data["max_fail"])),
        )


# --- progress events ----------------------------------------------------------------------------


class EventKind(StrEnum):
    RUN_STARTED = "run_started"
    RUN_RESUMED = "run_resumed"
    WAVE_STARTED = "wave_started"
    TARGET_FINISHED = "target_finished"
    WAVE_FINISHED = "wave_finished"
    RUN_WAITING = "run_waiting"  # waiting for the change window to open (wait_for_window)
    RUN_PAUSED = "run_paused"
    RUN_FINISHED = "run_finished"


@dataclass(frozen=True)
class RunEvent:
    """A progress event for live display. ``state`` is a target state (target events), a wave
    status (wave events) or a run status (run events)."""

    kind: EventKind
    run_id: str
    at: datetime
    wave: int | None = None
    target: str | None = None
    state: str | None = None
    message: str = ""

    @property
    def text(self) -> str:
        """One human line for live progress: ``wave 2: ams-ep-07 succeeded: fixed 3 routes``."""
        if self.target is not None:
            head = f"wave {self.wave}: {self.target} {self.state}"
        elif self.wave is not None:
            head = f"wave {self.wave} {self.kind.value.removeprefix('wave_')}"
        else:
            head = f"run {self.run_id} {self.kind.value.removeprefix('run_')}"
        return f"{head}: {self.message}" if self.message else head


EventSink = Callable[[RunEvent], None]


__all__ = [
    "FAILURE_STATES",
    "RUN_TRANSITIONS",
    "TARGET_TRANSITIONS",
    "TERMINAL_RUN_STATUSES",
    "TERMINAL_TARGET_STATES",
    "Clock",
    "EventKind",
    "EventSink",
    "FailureBudget",
    "RolloutOptions",
    "RunEvent",
    "RunStatus",
    "TargetOutcome",
    "TargetRole",
    "TargetState",
    "TargetTask",
    "TargetWork",
    "WaveKind",
    "WaveStatus",
    "check_run_transition",
    "check_target_transition",
]
