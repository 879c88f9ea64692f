"""The Celery pieces without a broker: the app's settings, batching, judging the store, the worker's
batch run (soft-limit abandon), the collection ledger, queue names. Fast, on both store backends
where a store is involved."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.worker import queue_names
from orchestrator.config import CelerySettings, Settings
from orchestrator.engine import TargetRole, TargetState, TargetTask, get_run
from orchestrator.engine.celery_executor import (
    APPLY_BATCH_TASK,
    APPLY_GRAPH_BATCH_TASK,
    BatchRun,
    Progress,
    TargetRow,
    deadline_gate,
    judge,
    split_batches,
)
from orchestrator.engine.leases import Lease, get_lease
from orchestrator.engine.runs import write_transaction
from orchestrator.errors import ConfigError, InputError
from orchestrator.inventory.models import Role
from orchestrator.store import Store
from orchestrator.sweep.collect import HostOutcome
from orchestrator.sweep.distributed import (
    CollectBatch,
    collected_names,
    host_from_json,
    host_to_json,
    options_from_json,
    options_to_json,
    outcome_from_row,
    outcome_row,
    split_hosts,
    write_outcomes,
)
from orchestrator.sweep.plan import CollectOptions
from tasks.app import (
    TASK_ADVANCE_RUN,
    TASK_COLLECT_BATCH,
    Queues,
    broker_kind,
    make_app,
    require_shared_store,
    settings_of,
    transport_options,
)
from tests.engine.conftest import LEASES, START, FakeClock, ScriptedWork, hosts, new_run
from tests.sweep.support import FakeSessions, facts_document, inventory_host


def settings(tmp_path: Path, broker: str | None = "redis://127.0.0.1:6379/12", **celery: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        store_url="postgresql+psycopg://postgres@127.0.0.1:5432/x",
        broker_url=broker,
        celery=CelerySettings(**celery),
    )


# --- the app --------------------------------------------------------------------------------------------


def test_the_app_never_loses_a_batch_and_speaks_json_only(tmp_path: Path) -> None:
    app = make_app(settings(tmp_path, queue_prefix="ff", visibility_timeout_s=1234), concurrency=3)
    conf = app.conf
    assert (conf.task_serializer, conf.accept_content, conf.result_accept_content) == (
        "json",
        ["json"],
        ["json"],
    )
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.task_retry_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.broker_transport_options["visibility_timeout"] == 1234
    assert conf.broker_transport_options["max_connections"] >= 3 + 2
    assert conf.task_ignore_result
    assert conf.result_backend is None
    assert conf.broker_connection_retry_on_startup
    assert conf.task_routes[APPLY_BATCH_TASK] == {"queue": "ff.winrm"}
    assert conf.task_routes[APPLY_GRAPH_BATCH_TASK] == {"queue": "ff.graph"}
    assert conf.task_routes[TASK_COLLECT_BATCH] == {"queue": "ff.winrm"}
    assert conf.task_routes[TASK_ADVANCE_RUN] == {"queue": "ff.control"}
    registered = set(app.tasks)
    assert {APPLY_BATCH_TASK, APPLY_GRAPH_BATCH_TASK, TASK_COLLECT_BATCH, TASK_ADVANCE_RUN} <= registered
    # controllers drive whole runs: acknowledged on receipt, their own (long) limits
    advance = app.tasks[TASK_ADVANCE_RUN]
    assert advance.acks_late is False
    assert advance.time_limit > conf.task_time_limit
    assert settings_of(app).celery.queue_prefix == "ff"


def test_rabbitmq_gets_publisher_confirms_instead_of_a_visibility_timeout(tmp_path: Path) -> None:
    options = transport_options(settings(tmp_path, "amqp://guest:guest@127.0.0.1:5672//"), concurrency=2)
    assert options == {"confirm_publish": True}
    assert broker_kind("amqp://guest:guest@127.0.0.1:5672//") == "amqp"
    assert broker_kind("rediss://h:6380/0") == "redis"


def test_an_unknown_broker_or_none_is_a_config_error_that_never_repeats_the_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported broker scheme 'sqs'") as caught:
        make_app(settings(tmp_path, "sqs://key:s3cret@queue"))
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match="broker_url"):
        make_app(settings(tmp_path, None))


def test_sqlite_is_refused_with_celery(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/12")
    with pytest.raises(ConfigError, match=r"^store_url: Celery workers share the store"):
        require_shared_store(local)
    require_shared_store(settings(tmp_path))  # PostgreSQL is fine


def test_soft_limit_must_be_below_the_hard_one() -> None:
    with pytest.raises(ValueError, match="soft_time_limit_s must be below time_limit_s"):
        CelerySettings(soft_time_limit_s=60, time_limit_s=60)


def test_queue_names_from_kinds_or_full_names() -> None:
    assert queue_names(None, "ff") == ["ff.winrm", "ff.graph", "ff.control"]
    assert queue_names(["winrm,control", "ff.winrm"], "ff") == ["ff.winrm", "ff.control"]
    with pytest.raises(InputError, match="unknown queue 'celery'"):
        queue_names(["celery"], "ff")
    assert Queues.of(CelerySettings(queue_prefix="x")).all() == ("x.winrm", "x.graph", "x.control")


# --- batching and judging ------------------------------------------------------------------------------


def task(target: str, attempt: int = 1, role: TargetRole = TargetRole.ENDPOINT, **kw: Any) -> TargetTask:
    return TargetTask("run-1", target, role, 1, attempt, **kw)


def test_batches_keep_order_and_send_tenant_targets_to_graph() -> None:
    tasks = [task("intune", role=TargetRole.TENANT), *(task(f"h{i}") for i in range(5))]
    batches = split_batches(tasks, 2)
    assert [(name, [t.target for t in members]) for name, members in batches] == [
        (APPLY_GRAPH_BATCH_TASK, ["intune"]),
        (APPLY_BATCH_TASK, ["h0", "h1"]),
        (APPLY_BATCH_TASK, ["h2", "h3"]),
        (APPLY_BATCH_TASK, ["h4"]),
    ]
    with pytest.raises(InputError):
        split_batches(tasks, 0)


def lease(expires_in: float, run_id: str = "run-1") -> Lease:
    return Lease("h1", run_id, "w", START, START + timedelta(seconds=expires_in))


@pytest.mark.parametrize(
    ("row", "lease_", "expected"),
    [
        (None, None, Progress.GONE),
        (TargetRow(TargetState.PENDING, 0), None, Progress.NOT_STARTED),
        (TargetRow(TargetState.RUNNING, 1), lease(60), Progress.IN_PROGRESS),
        (TargetRow(TargetState.RUNNING, 1), lease(-1), Progress.DEAD),
        (TargetRow(TargetState.RUNNING, 1), None, Progress.DEAD),
        (TargetRow(TargetState.RUNNING, 1), lease(60, run_id="other"), Progress.DEAD),
        (TargetRow(TargetState.SUCCEEDED, 1), None, Progress.FINISHED),
        (TargetRow(TargetState.SKIPPED, 0), None, Progress.FINISHED),
        (TargetRow(TargetState.CANCELLED, 0), None, Progress.GONE),
        (TargetRow(TargetState.RUNNING, 2), lease(60), Progress.GONE),  # taken over by someone else
        (TargetRow(TargetState.SUCCEEDED, 2), None, Progress.GONE),
    ],
)
def test_judging_a_first_attempt(row: TargetRow | None, lease_: Lease | None, expected: Progress) -> None:
    assert judge(task("h1"), row, lease_, START) is expected


def test_a_takeover_is_not_started_while_the_dead_attempt_still_shows() -> None:
    takeover = task("h1", attempt=2, takeover=True)
    assert judge(takeover, TargetRow(TargetState.RUNNING, 1), lease(-1), START) is Progress.NOT_STARTED
    assert judge(task("h1", attempt=2), TargetRow(TargetState.RUNNING, 1), None, START) is Progress.GONE


def test_the_deadline_gate_refuses_from_the_deadline_on(clock: FakeClock) -> None:
    gate = deadline_gate(lambda target: True, START + timedelta(minutes=1), clock)
    assert gate("h1")
    clock.advance(60)
    assert not gate("h1")
    assert deadline_gate(lambda target: False, None, clock) is not None


# --- the worker's batch --------------------------------------------------------------------------------


def test_a_batch_records_every_outcome_and_leaves_what_the_gate_refuses(
    store: Store, clock: FakeClock
) -> None:
    run_id = new_run(store, hosts(4))
    tasks = [TargetTask(run_id, f"h0{n}", TargetRole.ENDPOINT, 1, 1) for n in range(1, 5)]
    work = ScriptedWork({"h02": TargetState.FAILED})
    report = BatchRun(
        store,
        tasks,
        work,
        holder="w1",
        gate=lambda target: target != "h04",
        concurrency=2,
        clock=clock,
        policy=LEASES,
    ).run()
    assert set(report.recorded) == {"h01", "h02", "h03"}
    assert [t.target for t in report.left] == ["h04"]
    states = {t.name: t.state for t in get_run(store, run_id).targets}
    assert states == {
        "h01": TargetState.SUCCEEDED,
        "h02": TargetState.FAILED,
        "h03": TargetState.SUCCEEDED,
        "h04": TargetState.PENDING,
    }
    # a second delivery of the same batch does nothing
    again = BatchRun(
        store, tasks, work, holder="w2", gate=lambda t: True, concurrency=2, clock=clock, policy=LEASES
    )
    assert again.run().recorded == ("h04",)
    assert sorted(work.targets()) == ["h01", "h02", "h03", "h04"]


def test_abandon_records_the_stuck_target_as_timed_out_and_returns_the_untouched(
    store: Store, clock: FakeClock
) -> None:
    run_id = new_run(store, hosts(3))
    tasks = [TargetTask(run_id, f"h0{n}", TargetRole.ENDPOINT, 1, 1) for n in range(1, 4)]
    stuck, release = threading.Event(), threading.Event()

    def hang_on_h01(task_: TargetTask) -> None:
        if task_.target == "h01":
            stuck.set()
            release.wait(30)

    work = ScriptedWork(before=hang_on_h01)
    batch = BatchRun(
        store, tasks, work, holder="w1", gate=lambda t: True, concurrency=1, clock=clock, policy=LEASES
    )
    runner = threading.Thread(target=batch.run)
    runner.start()
    assert stuck.wait(30)
    report = batch.abandon("timed out: soft time limit")
    release.set()
    runner.join(30)
    assert report.abandoned == ("h01",)
    assert [t.target for t in report.left] == ["h02", "h03"]
    h01 = get_run(store, run_id).target("h01")
    assert (h01.state, h01.error_kind, h01.message) == (
        TargetState.FAILED,
        "timed_out",
        "timed out: soft time limit",
    )
    with write_transaction(store) as session:
        assert get_lease(session, "h01") is None  # released with the outcome
    # the stuck thread finishing later cannot overwrite the recorded outcome
    assert get_run(store, run_id).target("h01").state is TargetState.FAILED
    assert {t.name: t.state for t in get_run(store, run_id).targets}["h02"] is TargetState.PENDING


# --- the collection ledger -----------------------------------------------------------------------------


def test_hosts_and_options_travel_as_json_without_secrets() -> None:
    host = inventory_host("ep-1", credential="vault:fleet-admin")
    data = host_to_json(host)
    assert data["credential"] == "vault:fleet-admin"
    assert host_from_json(data) == host
    options = CollectOptions(concurrency=7, deadline_s=3.5, event_days=2, max_events=9)
    assert options_from_json(options_to_json(options)) == options
    assert split_hosts([host] * 5, 2) == [[host, host], [host, host], [host]]


def outcome(name: str, role: Role = Role.ENDPOINT, *, error: bool = False) -> HostOutcome:
    from orchestrator.facts.fleet import CollectionError  # noqa: PLC0415

    return HostOutcome(
        name=name,
        role=role,
        facts=None if error else facts_document(role, name),
        error=CollectionError(kind="unreachable", message="no answer") if error else None,
        started_at=START,
        finished_at=START,
        elapsed_s=0.5,
        script_errors=("warning",),
    )


class Row:
    def __init__(self, data: dict[str, Any]):
        self.__dict__.update(data)


def test_an_outcome_survives_the_ledger() -> None:
    for original in (outcome("ep-1"), outcome("ca-1", Role.CA), outcome("ep-2", error=True)):
        assert outcome_from_row(Row(outcome_row(original, "c-1", "w1"))) == original


def test_the_first_result_for_a_host_stands(store: Store) -> None:
    write_outcomes(store, [outcome_row(outcome("ep-1"), "c-1", "w1")])
    write_outcomes(
        store,
        [outcome_row(outcome("ep-1", error=True), "c-1", "w2"), outcome_row(outcome("ep-2"), "c-1", "w2")],
    )
    assert collected_names(store, "c-1", ["ep-1", "ep-2", "ep-3"]) == {"ep-1", "ep-2"}
    assert collected_names(store, "c-2", ["ep-1"]) == set()


def test_a_collection_batch_skips_hosts_an_earlier_delivery_wrote(store: Store) -> None:
    write_outcomes(store, [outcome_row(outcome("ep-1"), "c-1", "w1")])
    sessions = FakeSessions(lambda host, invocation: facts_document(host.role, host.name))
    batch = CollectBatch(
        store,
        "c-1",
        [inventory_host("ep-1"), inventory_host("ep-2"), inventory_host("rras-1", Role.RRAS)],
        CollectOptions(concurrency=2),
        resolve=lambda keys: {key: _credential() for key in keys},
        holder="w2",
        session_factory=sessions,
    )
    report = batch.run()
    assert report.already == ("ep-1",)
    assert sorted(report.collected) == ["ep-2", "rras-1"]
    assert sorted(sessions.opened) == ["ep-2", "rras-1"]
    assert collected_names(store, "c-1", ["ep-1", "ep-2", "rras-1"]) == {"ep-1", "ep-2", "rras-1"}


def _credential() -> Any:
    from orchestrator.credentials.secret import Credential, Secret  # noqa: PLC0415

    return Credential("admin", Secret("not-a-real-password"))


# --- the task wrappers, called as a worker calls them ---------------------------------------------------


class FakeTask:
    """What a bound task gives the function: its app, its request, retry()."""

    def __init__(self, app: Any) -> None:
        from types import SimpleNamespace  # noqa: PLC0415

        self.app = app
        self.name = APPLY_BATCH_TASK
        self.request = SimpleNamespace(retries=1, delivery_info={"redelivered": True})
        self.retried: dict[str, Any] | None = None

    def retry(self, **options: Any) -> Exception:
        self.retried = options
        return RuntimeError("retry scheduled")


@pytest.fixture
def worker_app(tmp_path: Path, db_url: str) -> Any:
    from tasks.worker import reset_worker_context  # noqa: PLC0415

    app = make_app(
        Settings(data_dir=tmp_path / "data", store_url=db_url, broker_url="redis://127.0.0.1:6379/12"),
    )
    yield app
    reset_worker_context()


def _provider(outcome: Exception) -> Any:
    def provide(settings: Settings, run_id: str) -> Any:
        raise outcome

    return provide


def test_a_store_error_retries_the_batch_with_backoff(store: Store, worker_app: Any) -> None:
    from orchestrator.errors import StoreError  # noqa: PLC0415
    from tasks.runs import apply_batch, set_environment_provider  # noqa: PLC0415

    task_ = FakeTask(worker_app)
    previous = set_environment_provider(_provider(StoreError("database is away")))
    try:
        with pytest.raises(RuntimeError, match="retry scheduled"):
            apply_batch(task_, "run-1", [task("h01").to_json()], None)
    finally:
        set_environment_provider(previous)
    assert task_.retried is not None
    assert isinstance(task_.retried["exc"], StoreError)
    assert 0 < task_.retried["countdown"] <= settings_of(worker_app).celery.retry_backoff_max_s
    assert task_.retried["max_retries"] == settings_of(worker_app).celery.retry_max


def test_a_worker_that_cannot_build_the_work_fails_the_targets_saying_why(
    store: Store, clock: FakeClock, worker_app: Any
) -> None:
    from orchestrator.engine.runs import start_run  # noqa: PLC0415
    from orchestrator.errors import PlaybookError  # noqa: PLC0415
    from tasks.runs import apply_batch, set_environment_provider  # noqa: PLC0415

    run_id = new_run(store, hosts(2))
    with write_transaction(store) as session:
        start_run(session, run_id, actor="test", at=clock())
    tasks = [TargetTask(run_id, f"h0{n}", TargetRole.ENDPOINT, 1, 1).to_json() for n in (1, 2)]
    previous = set_environment_provider(_provider(PlaybookError("no playbook 'test-playbook'")))
    try:
        counts = apply_batch(FakeTask(worker_app), run_id, tasks, None)
    finally:
        set_environment_provider(previous)
    assert counts == {"recorded": 2, "abandoned": 0, "left": 0}
    for target in get_run(store, run_id).targets:
        assert target.state is TargetState.FAILED
        assert target.error_kind == "playbook"
        assert "cannot run this playbook: no playbook 'test-playbook'" in target.message
