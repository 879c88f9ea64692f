"""Engine fixtures: a migrated store on each backend, a fake clock, scripted host work."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.engine import (
    FailureBudget,
    LeasePolicy,
    LocalExecutor,
    RolloutOptions,
    TargetOutcome,
    TargetState,
    TargetTask,
    create_run,
)
from orchestrator.engine.coordinator import CoordinatorPolicy
from orchestrator.store import Store, create_store_engine, upgrade

START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """Time that moves only when told to; ``sleep`` moves it instead of waiting."""

    def __init__(self, now: datetime = START):
        self._now = now
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, now: datetime) -> None:
        with self._lock:
            self._now = now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


class ScriptedWork:
    """A TargetWork whose outcomes come from a dict (default: succeeded); it records every call.

    ``before`` runs at the start of each call (to move the clock, block, or cancel mid-run).
    """

    def __init__(
        self,
        outcomes: Mapping[str, TargetOutcome | TargetState] | None = None,
        before: Callable[[TargetTask], None] | None = None,
    ):
        self.outcomes = dict(outcomes or {})
        self.before = before
        self.calls: list[TargetTask] = []
        self._lock = threading.Lock()

    def __call__(self, task: TargetTask) -> TargetOutcome:
        with self._lock:
            self.calls.append(task)
        if self.before is not None:
            self.before(task)
        outcome = self.outcomes.get(task.target, TargetState.SUCCEEDED)
        if isinstance(outcome, TargetOutcome):
            return outcome
        return TargetOutcome(outcome, f"{outcome.value} on {task.target}")

    def targets(self) -> list[str]:
        return [task.target for task in self.calls]


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    upgrade(db_url)
    opened = Store.from_engine(create_store_engine(db_url))
    yield opened
    opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Generous lease and claim lifetimes: tests move the fake clock by minutes and must not expire them
# by accident; tests about expiry set their own.
LEASES = LeasePolicy(ttl=timedelta(hours=1), wait=timedelta(seconds=30), poll=timedelta(seconds=5))
POLICY = CoordinatorPolicy(claim_ttl=timedelta(hours=1), poll=timedelta(seconds=5))


def executor(
    store: Store, work: ScriptedWork, clock: FakeClock, *, concurrency: int = 1, holder: str = "test-holder"
) -> LocalExecutor:
    return LocalExecutor(store, work, concurrency, holder, policy=LEASES, clock=clock, sleep=clock.sleep)


def hosts(count: int, prefix: str = "h") -> list[tuple[str, str]]:
    return [(f"{prefix}{number:02d}", "endpoint") for number in range(1, count + 1)]


def new_run(
    store: Store,
    targets: Sequence[tuple[str, str]],
    *,
    canary: int = 0,
    wave_size: int = 10,
    max_fail: str = "100%",
    window: str | None = None,
    needs_approval: bool = False,
    requested_by: str = "alice",
    serial: bool = False,
    clock: FakeClock | None = None,
) -> str:
    return create_run(
        store,
        playbook_id="test-playbook",
        targets=targets,
        rollout=RolloutOptions(
            canary=canary, wave_size=wave_size, serial=serial, max_fail=FailureBudget.parse(max_fail)
        ),
        window_text=window,
        requested_by=requested_by,
        needs_approval=needs_approval,
        parameters={"param": 1},
        now=clock() if clock is not None else None,
    )
