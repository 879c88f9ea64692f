"""process_target, the per-target function every executor runs: lease and claim together, duplicates
do nothing, bad host work is a failed target, the lease lives exactly as long as the work; the
store-backed gate for remote workers; lease heartbeats."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from orchestrator.engine import (
    RunStatus,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    get_run,
    process_target,
    request_cancel,
)
from orchestrator.engine.leases import acquire, get_lease
from orchestrator.engine.runs import claim_target, record_outcome, start_run, write_transaction
from orchestrator.engine.targets import Heartbeat, LeasePolicy, StoredGate, lease_heartbeat
from orchestrator.store import Store
from tests.engine.conftest import LEASES, START, FakeClock, ScriptedWork, hosts, new_run


def task_for(run_id: str, target: str = "h01", attempt: int = 1, *, takeover: bool = False) -> TargetTask:
    return TargetTask(run_id, target, TargetRole.ENDPOINT, 1, attempt, takeover=takeover)


def lease_of(store: Store, host: str) -> tuple[str, str] | None:
    with write_transaction(store) as session:
        lease = get_lease(session, host)
    return None if lease is None else (lease.run_id, lease.holder)


def test_lease_is_held_while_working_and_released_with_the_outcome(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))
    seen: list[object] = []
    work = ScriptedWork(before=lambda task: seen.append(lease_of(store, task.target)))
    outcome = process_target(store, task_for(run_id), work, "w1", clock, policy=LEASES)
    assert outcome is not None
    assert outcome.state is TargetState.SUCCEEDED
    assert seen == [(run_id, "w1")]
    assert lease_of(store, "h01") is None
    target = get_run(store, run_id).target("h01")
    assert (target.state, target.attempts, target.started_at, target.finished_at) == (
        TargetState.SUCCEEDED,
        1,
        START,
        START,
    )


def test_a_duplicate_task_does_nothing(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))
    work = ScriptedWork()
    assert process_target(store, task_for(run_id), work, "w1", clock, policy=LEASES) is not None
    assert process_target(store, task_for(run_id), work, "w2", clock, policy=LEASES) is None
    assert len(work.calls) == 1
    assert lease_of(store, "h01") is None


def test_the_gate_leaves_the_target_pending(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))
    work = ScriptedWork()
    assert (
        process_target(store, task_for(run_id), work, "w1", clock, should_start=lambda target: False) is None
    )
    assert work.calls == []
    assert get_run(store, run_id).target("h01").state is TargetState.PENDING
    assert lease_of(store, "h01") is None


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (TargetOutcome(TargetState.PENDING), "host work returned the state pending"),
        (TargetOutcome(TargetState.RUNNING), "host work returned the state running"),
        ("done", "host work returned str"),
    ],
)
def test_a_non_final_answer_is_an_internal_failure(
    store: Store, clock: FakeClock, answer: object, message: str
) -> None:
    run_id = new_run(store, hosts(1))
    outcome = process_target(store, task_for(run_id), lambda task: answer, "w1", clock)  # type: ignore[arg-type,return-value]
    assert outcome == TargetOutcome(TargetState.FAILED, message, "internal")
    assert get_run(store, run_id).target("h01").error_kind == "internal"


def test_an_attempt_that_was_taken_over_cannot_record(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))

    def taken_over_meanwhile(task: TargetTask) -> None:  # our lease lapsed; a resumed run took over
        with write_transaction(store) as session:
            assert claim_target(session, task_for(run_id, attempt=2, takeover=True), clock())
            acquire(session, "h01", run_id, "w2", timedelta(hours=1), clock())

    outcome = process_target(store, task_for(run_id), ScriptedWork(before=taken_over_meanwhile), "w1", clock)
    assert outcome is None
    target = get_run(store, run_id).target("h01")
    assert (target.state, target.attempts) == (TargetState.RUNNING, 2)
    assert lease_of(store, "h01") == (run_id, "w2")  # not ours to release any more


# --- the store-backed gate ----------------------------------------------------------------------


def test_stored_gate(store: Store, clock: FakeClock) -> None:
    run_id = new_run(
        store, hosts(5), canary=1, wave_size=2, max_fail="1", window="10:00-13:00 UTC", clock=clock
    )
    gate = StoredGate(store, run_id, clock)
    assert not gate("h02")  # not running yet
    with write_transaction(store) as session:
        start_run(session, run_id, actor="t", at=clock())
    assert gate("h02")
    clock.advance(2 * 3600)  # 14:00: outside the window
    assert not gate("h02")
    assert StoredGate(store, run_id, clock, ignore_window=True)("h02")
    clock.advance(-2 * 3600)

    def finish(target: str, wave: int, state: TargetState) -> None:
        task = TargetTask(run_id, target, TargetRole.ENDPOINT, wave, 1)
        with write_transaction(store) as session:
            assert claim_target(session, task, clock())
            record_outcome(session, task, TargetOutcome(state), clock())

    finish("h02", 2, TargetState.FAILED)
    assert gate("h03")  # one failure is within the budget of 1
    finish("h03", 2, TargetState.VERIFY_FAILED)
    assert not gate("h04")  # two are not


def test_stored_gate_stops_after_a_canary_failure_and_on_cancel(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(3), canary=1, max_fail="100%", clock=clock)
    with write_transaction(store) as session:
        start_run(session, run_id, actor="t", at=clock())
        task = TargetTask(run_id, "h01", TargetRole.ENDPOINT, 1, 1)
        claim_target(session, task, clock())
        record_outcome(session, task, TargetOutcome(TargetState.ROLLED_BACK), clock())
    assert not StoredGate(store, run_id, clock)("h02")
    other = new_run(store, hosts(2, "x"), clock=clock)
    with write_transaction(store) as session:
        start_run(session, other, actor="t", at=clock())
    gate = StoredGate(store, other, clock)
    assert gate("x01")
    view = request_cancel(store, other, actor="carol", now=clock())
    assert view.status is RunStatus.CANCELLED  # nobody was advancing it
    assert not gate("x01")


# --- heartbeats ---------------------------------------------------------------------------------


def test_heartbeat_beats_until_the_block_ends() -> None:
    beats = threading.Semaphore(0)
    with Heartbeat(0.001, beats.release):
        assert beats.acquire(timeout=10)
        assert beats.acquire(timeout=10)
    while beats.acquire(blocking=False):  # drain what came before the block ended
        pass
    time.sleep(0.01)
    assert not beats.acquire(blocking=False)


def test_lease_heartbeat_renews_the_holders_leases(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))
    policy = LeasePolicy(ttl=timedelta(milliseconds=30))
    with write_transaction(store) as session:
        acquire(session, "h01", run_id, "w1", policy.ttl, clock())
    clock.advance(3600)
    expected = clock() + policy.ttl
    with lease_heartbeat(store, run_id, "w1", clock, policy):
        for _ in range(1000):
            with write_transaction(store) as session:
                lease = get_lease(session, "h01")
            if lease is not None and lease.expires_at == expected:
                break
            time.sleep(0.005)
        else:
            pytest.fail("the lease was never renewed")
