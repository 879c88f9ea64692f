"""Engine fixtures: a migrated store on each backend, a fake clock, scripted host work."""

from __future__ import annotations

import logging
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


# --- the coordinator's tests over both executors ---------------------------------------------------
#
# test_engine_coordinator.py runs once with the local executor and once with the Celery executor.
# Its tests build executors through ``executor(...)`` above; for the ``celery`` case that name is
# replaced, in the test module, by a factory making a CeleryExecutor whose batches go through the
# real Redis (127.0.0.1:6379, this session's own queues) to a Celery worker *in this process* (a
# thread, ``celery.contrib.testing``): the tests' host work, fake clock and sleep are Python objects
# that must reach the worker, which a worker process cannot receive. Killed workers, redelivery and
# the real host work are tested with worker processes in tests/celery.

CELERY_EXECUTOR_MODULES = frozenset({"tests.engine.test_engine_coordinator"})

# Tests whose subject is in-process behaviour; with ``celery`` they are skipped with the reason.
IN_PROCESS_ONLY: dict[tuple[str, tuple[tuple[str, object], ...]], str] = {
    ("test_a_dead_attempt_is_taken_over_exactly_once", (("lease", "same-run"),)): (
        "a live lease of the same run marks a dead attempt only for an in-process executor; a remote "
        "executor waits for it to expire (test_remote_work_in_progress_is_waited_for_until_its_lease_expires)"
    ),
    ("test_second_run_gets_the_host_once_the_first_releases_it", ()): (
        "drives LocalExecutor's own sleep to let the first run finish"
    ),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__ in CELERY_EXECUTOR_MODULES and "engine_executor" in metafunc.fixturenames:
        metafunc.parametrize("engine_executor", ["local", "celery"], indirect=True)


def _in_process_only(request: pytest.FixtureRequest) -> str | None:
    node = request.node
    name = getattr(node, "originalname", node.name)
    params = getattr(getattr(node, "callspec", None), "params", {})
    for (test, wanted), reason in IN_PROCESS_ONLY.items():
        if test == name and all(params.get(key) == value for key, value in wanted):
            return reason
    return None


@pytest.fixture(autouse=True)
def engine_executor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``local`` or ``celery`` (parametrized for CELERY_EXECUTOR_MODULES, else ``local``)."""
    kind: str = getattr(request, "param", "local")
    if kind == "celery":
        reason = _in_process_only(request)
        if reason is not None:
            pytest.skip(f"in-process only: {reason}")
        factory = request.getfixturevalue("celery_executor_factory")
        monkeypatch.setattr(request.module, "executor", factory)
    return kind


@pytest.fixture(scope="session")
def celery_engine_worker() -> Iterator[tuple[object, dict[str, object]]]:
    """A Celery app on the real Redis and a worker thread serving its batch queues; batches find their
    environment (store, host work, clock) in the returned registry, by run id."""
    import secrets  # noqa: PLC0415

    from celery.contrib.testing.worker import start_worker  # noqa: PLC0415

    from orchestrator.config import CelerySettings, Settings  # noqa: PLC0415
    from tasks.app import Queues, make_app  # noqa: PLC0415
    from tasks.runs import set_environment_provider  # noqa: PLC0415
    from tests.celery.support import REDIS_URL, delete_redis_queues  # noqa: PLC0415

    prefix = f"fleetfix-test-engine-{secrets.token_hex(4)}"
    settings = Settings(
        store_url="postgresql+psycopg://unused",  # batches use the registered store
        broker_url=REDIS_URL,
        celery=CelerySettings(queue_prefix=prefix, batch_size=100, poll_s=0.02),
    )
    app = make_app(settings, concurrency=4)
    registry: dict[str, object] = {}

    def provider(_settings: object, run_id: str) -> object:
        return registry[run_id]

    previous = set_environment_provider(provider)  # type: ignore[arg-type]
    # start_worker sets up Celery's logging: the root logger's level drops to ERROR, which would
    # hide warnings from every later test's caplog; put it back when the worker is gone.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        with start_worker(
            app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            queues=list(Queues.of(settings.celery).all()),
        ):
            yield app, registry
    finally:
        set_environment_provider(previous)
        delete_redis_queues(REDIS_URL, prefix)
        root.setLevel(level)
        root.handlers[:] = handlers


@pytest.fixture
def celery_executor_factory(celery_engine_worker: tuple[object, dict[str, object]]) -> object:
    """``executor(store, work, clock, concurrency=1, holder=...)`` for the Celery executor."""
    import time  # noqa: PLC0415

    from orchestrator.engine.celery_executor import CeleryExecutor  # noqa: PLC0415
    from tasks.runs import BatchEnvironment  # noqa: PLC0415

    app, registry = celery_engine_worker

    class RegisteringExecutor(CeleryExecutor):
        """Tells the in-process worker what this run's batches work with, then sends them."""

        def __init__(self, environment: BatchEnvironment, **options: object) -> None:
            super().__init__(environment.store, app, 100, environment.holder, **options)  # type: ignore[arg-type]
            self.environment = environment

        def execute(self, run_id: str, *args: object, **kwargs: object) -> None:
            registry[run_id] = self.environment
            super().execute(run_id, *args, **kwargs)  # type: ignore[arg-type]

    def factory(
        store: Store,
        work: ScriptedWork,
        clock: FakeClock,
        *,
        concurrency: int = 1,
        holder: str = "test-holder",
    ) -> CeleryExecutor:
        environment = BatchEnvironment(
            store=store, work=work, concurrency=concurrency, holder=holder, clock=clock, policy=LEASES,
            sleep=clock.sleep,
        )  # fmt: skip
        # the executor polls the store in real time (the worker is a real thread); leases and the
        # window are judged on the tests' clock, so the broker's `expires` (real time) is left out
        started = time.monotonic()

        def poll(seconds: float) -> None:
            assert time.monotonic() - started < 120, "the Celery executor waited for more than 2 minutes"
            time.sleep(seconds)

        return RegisteringExecutor(
            environment, clock=clock, poll_s=0.02, redispatch_after_s=3600.0, expires=False, sleep=poll
        )

    return factory
