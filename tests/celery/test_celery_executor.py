"""The Celery executor's protocol with a scripted broker: batches out, outcomes read back from the
store, lost messages and dead workers, the gate, a broker that refuses to take a message.

The "broker" keeps sent messages in a list and the "workers" run them with the real worker-side
code (:class:`BatchRun` and :class:`StoredGate`) whenever the executor sleeps between looks, so every
interleaving is deterministic. The real broker and worker processes are in the other modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from orchestrator.engine import (
    RunStatus,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    advance,
    get_run,
)
from orchestrator.engine.celery_executor import APPLY_BATCH_TASK, BatchRun, CeleryExecutor, deadline_gate
from orchestrator.engine.leases import acquire
from orchestrator.engine.runs import claim_target, start_run, write_transaction
from orchestrator.engine.targets import StoredGate
from orchestrator.store import Store
from tests.engine.conftest import LEASES, POLICY, FakeClock, ScriptedWork, hosts, new_run


class ScriptedBroker:
    """``send_task`` appends to a queue; :meth:`deliver` runs what is queued as workers would."""

    def __init__(self, store: Store, work: ScriptedWork, clock: FakeClock) -> None:
        self.store = store
        self.work = work
        self.clock = clock
        self.queue: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.sent: list[list[str]] = []
        self.refuse = 0  # sends to refuse (the broker is away)
        self.lose = 0  # messages to lose (a broker that restarted without persistence)
        self.on_deliver: Callable[[list[TargetTask]], bool] | None = None  # True: handled (a crash)

    def send_task(self, name: str, *, args: tuple[Any, ...], kwargs: dict[str, Any], **options: Any) -> None:
        if self.refuse:
            self.refuse -= 1
            raise ConnectionError("broker away")
        self.queue.append((name, args, kwargs))
        self.sent.append([item["target"] for item in args[1]])

    def deliver(self) -> None:
        queued, self.queue = self.queue, []
        for name, (run_id, tasks_json, _deadline), kwargs in queued:
            assert name == APPLY_BATCH_TASK
            if self.lose:
                self.lose -= 1
                continue
            tasks = [TargetTask.from_json(item) for item in tasks_json]
            if self.on_deliver is not None and self.on_deliver(tasks):
                continue
            gate = StoredGate(self.store, run_id, self.clock, ignore_window=kwargs["ignore_window"])
            BatchRun(
                self.store,
                tasks,
                self.work,
                holder="worker-1",
                gate=deadline_gate(gate, None, self.clock),
                concurrency=2,
                clock=self.clock,
                policy=LEASES,
                sleep=self.clock.sleep,
            ).run()


class Ticks:
    """The executor's monotonic clock and sleep: sleeping lets the workers run, then time moves."""

    def __init__(self, broker: ScriptedBroker, clock: FakeClock) -> None:
        self.broker = broker
        self.clock = clock
        self.now = 0.0
        self.sleeps = 0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        assert self.sleeps < 1000, "the executor never stopped waiting"
        self.broker.deliver()
        self.now += seconds
        self.clock.advance(seconds)


def executor(store: Store, broker: ScriptedBroker, ticks: Ticks, **options: Any) -> CeleryExecutor:
    return CeleryExecutor(
        store,
        broker,
        options.pop("batch_size", 2),
        "coordinator-1",
        clock=ticks.clock,
        poll_s=1.0,
        redispatch_after_s=options.pop("redispatch_after_s", 30.0),
        sleep=ticks.sleep,
        monotonic=ticks.monotonic,
        **options,
    )


def setup(store: Store, clock: FakeClock, count: int = 5) -> tuple[str, ScriptedWork, ScriptedBroker, Ticks]:
    run_id = new_run(store, hosts(count))
    with write_transaction(store) as session:
        start_run(session, run_id, actor="test", at=clock())
    work = ScriptedWork({"h02": TargetState.FAILED})
    broker = ScriptedBroker(store, work, clock)
    return run_id, work, broker, Ticks(broker, clock)


def tasks_of(run_id: str, count: int) -> list[TargetTask]:
    return [TargetTask(run_id, f"h{n:02d}", TargetRole.ENDPOINT, 1, 1) for n in range(1, count + 1)]


def test_targets_go_out_in_batches_and_every_outcome_comes_back_from_the_store(
    store: Store, clock: FakeClock
) -> None:
    run_id, work, broker, ticks = setup(store, clock)
    finished: list[tuple[str, TargetState]] = []
    runner = executor(store, broker, ticks)
    runner.execute(
        run_id, tasks_of(run_id, 5), lambda target: True, lambda t, o: finished.append((t.target, o.state))
    )
    assert broker.sent == [["h01", "h02"], ["h03", "h04"], ["h05"]]
    assert sorted(finished) == [
        ("h01", TargetState.SUCCEEDED),
        ("h02", TargetState.FAILED),
        ("h03", TargetState.SUCCEEDED),
        ("h04", TargetState.SUCCEEDED),
        ("h05", TargetState.SUCCEEDED),
    ]
    assert sorted(work.targets()) == ["h01", "h02", "h03", "h04", "h05"]
    assert runner.in_process is False


def test_a_lost_batch_is_sent_again_once_nothing_happened_to_it_for_a_while(
    store: Store, clock: FakeClock
) -> None:
    run_id, work, broker, ticks = setup(store, clock)
    broker.lose = 1
    runner = executor(store, broker, ticks, redispatch_after_s=10.0)
    runner.execute(run_id, tasks_of(run_id, 5), lambda target: True)
    assert broker.sent[:3] == [["h01", "h02"], ["h03", "h04"], ["h05"]]
    assert broker.sent[3:] == [["h01", "h02"]]  # the lost one, once
    assert ticks.now >= 10.0
    assert sorted(work.targets()) == ["h01", "h02", "h03", "h04", "h05"]  # each worked on once


def test_a_send_the_broker_refuses_is_tried_again(store: Store, clock: FakeClock) -> None:
    run_id, work, broker, ticks = setup(store, clock, count=2)
    broker.refuse = 2
    executor(store, broker, ticks).execute(run_id, tasks_of(run_id, 2), lambda target: True)
    assert broker.sent == [["h01", "h02"]]
    assert sorted(work.targets()) == ["h01", "h02"]


def test_when_the_gate_says_no_the_executor_stops_waiting_for_targets_nobody_started(
    store: Store, clock: FakeClock
) -> None:
    run_id, work, broker, ticks = setup(store, clock)
    broker.on_deliver = lambda tasks: True  # the workers refuse too (the same gate): nothing starts
    executor(store, broker, ticks).execute(run_id, tasks_of(run_id, 5), lambda target: False)
    assert work.calls == []
    assert {t.state for t in get_run(store, run_id).targets} == {TargetState.PENDING}


def test_a_worker_that_died_mid_target_leaves_it_to_the_coordinator_and_its_batch_is_sent_again(
    store: Store, clock: FakeClock
) -> None:
    run_id = new_run(store, hosts(3))
    work = ScriptedWork()
    broker = ScriptedBroker(store, work, clock)
    ticks = Ticks(broker, clock)
    crashed: list[str] = []

    def crash_on_first_delivery(tasks: list[TargetTask]) -> bool:
        if crashed:
            return False
        first = tasks[0]  # claimed under a lease, then the worker is gone
        with write_transaction(store) as session:
            claim_target(session, first, clock())
            acquire(session, first.target, first.run_id, "worker-dead", timedelta(seconds=5), clock())
        crashed.append(first.target)
        return True

    broker.on_deliver = crash_on_first_delivery
    events: list[tuple[str, int, bool]] = []

    def record(task: TargetTask) -> None:
        events.append((task.target, task.attempt, task.takeover))

    work.before = record
    view = advance(
        store,
        run_id,
        executor(store, broker, ticks, batch_size=3, redispatch_after_s=3600.0),
        clock=clock,
        sleep=ticks.sleep,
        policy=POLICY,
    )
    assert view.status is RunStatus.SUCCEEDED
    assert crashed == ["h01"]
    # the untouched targets of the dead worker's batch went out again at once (not after an hour);
    # the target it was working on was taken over by the coordinator as attempt 2
    assert ticks.now < 3600
    assert sorted(events) == [("h01", 2, True), ("h02", 1, False), ("h03", 1, False)]
    assert {t.name: (t.state, t.attempts) for t in view.targets} == {
        "h01": (TargetState.SUCCEEDED, 2),
        "h02": (TargetState.SUCCEEDED, 1),
        "h03": (TargetState.SUCCEEDED, 1),
    }


def test_outcomes_carry_their_detail(store: Store, clock: FakeClock) -> None:
    run_id, work, broker, ticks = setup(store, clock, count=1)
    work.outcomes["h01"] = TargetOutcome(TargetState.SUCCEEDED, "fixed", None, {"changes": 2})
    seen: list[TargetOutcome] = []
    executor(store, broker, ticks).execute(
        run_id, tasks_of(run_id, 1), lambda t: True, lambda t, o: seen.append(o)
    )
    assert seen == [TargetOutcome(TargetState.SUCCEEDED, "fixed", None, {"changes": 2})]
