"""advance(): waves, canary, failure budget, change windows, approvals, leases between runs,
takeover after a crash, cancel, re-entrancy. Fake host work, fake clock, both store backends."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.engine import (
    EventKind,
    RunEvent,
    RunStatus,
    RunView,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    WaveStatus,
    advance,
    approve,
    get_run,
    request_cancel,
)
from orchestrator.engine.coordinator import CoordinatorPolicy
from orchestrator.engine.executors import Executor, LocalExecutor, OnFinished
from orchestrator.engine.leases import acquire
from orchestrator.engine.runs import claim_coordinator, claim_target, start_run, write_transaction
from orchestrator.engine.targets import ShouldStart
from orchestrator.errors import InputError, RunBusyError
from orchestrator.store import Store, list_audit, verify_audit
from tests.engine.conftest import LEASES, POLICY, FakeClock, ScriptedWork, executor, hosts, new_run


def drive(
    store: Store,
    run_id: str,
    work: ScriptedWork,
    clock: FakeClock,
    *,
    events: list[RunEvent] | None = None,
    executor_: Executor | None = None,
    policy: CoordinatorPolicy = POLICY,
    wait_for_window: bool = False,
    ignore_window: bool = False,
) -> RunView:
    sink = [] if events is None else events
    return advance(
        store,
        run_id,
        executor_ or executor(store, work, clock),
        clock=clock,
        sleep=clock.sleep,
        on_event=sink.append,
        actor="engine-test",
        policy=policy,
        wait_for_window=wait_for_window,
        ignore_window=ignore_window,
    )


def states(store: Store, run_id: str) -> dict[str, TargetState]:
    return {target.name: target.state for target in get_run(store, run_id).targets}


# --- the happy path -----------------------------------------------------------------------------


def test_all_waves_run_in_order_and_the_run_succeeds(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, [("contoso", "tenant"), *hosts(5)], canary=1, wave_size=2)
    work = ScriptedWork({"h03": TargetState.UNCHANGED})
    events: list[RunEvent] = []
    view = advance(
        store,
        run_id,
        executor(store, work, clock),
        clock=clock,
        on_event=events.append,
        actor="me",
        policy=POLICY,
    )
    assert view.status is RunStatus.SUCCEEDED
    assert view.status_message == "6 targets: 5 succeeded, 1 unchanged"
    assert work.targets() == ["contoso", "h01", "h02", "h03", "h04", "h05"]
    assert all(task.attempt == 1 and not task.takeover for task in work.calls)
    assert [wave.status for wave in view.waves] == [WaveStatus.COMPLETED] * 4
    assert all(target.attempts == 1 and target.started_at == clock() for target in view.targets)
    assert [event.kind for event in events if event.kind is not EventKind.TARGET_FINISHED] == [
        EventKind.RUN_STARTED,
        *[EventKind.WAVE_STARTED, EventKind.WAVE_FINISHED] * 4,
        EventKind.RUN_FINISHED,
    ]
    finished = [(event.target, event.state) for event in events if event.kind is EventKind.TARGET_FINISHED]
    assert finished[2] == ("h02", TargetState.SUCCEEDED)
    assert ("h03", TargetState.UNCHANGED) in finished
    assert [entry.action for entry in list_audit(store.engine)] == ["run.create", "run.start", "run.finish"]
    assert verify_audit(store.engine).failure is None


def test_concurrency_runs_a_wave_in_parallel(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(4), wave_size=4)
    barrier = threading.Barrier(4, timeout=10)  # only passes when all four targets run at once

    def all_at_once(task: TargetTask) -> None:
        barrier.wait()

    work = ScriptedWork(before=all_at_once)
    view = drive(store, run_id, work, clock, executor_=executor(store, work, clock, concurrency=4))
    assert view.status is RunStatus.SUCCEEDED
    assert sorted(work.targets()) == ["h01", "h02", "h03", "h04"]
    # a broken barrier (fewer than four at once) would have made the work raise: failed targets
    assert set(states(store, run_id).values()) == {TargetState.SUCCEEDED}


def test_work_that_raises_is_a_failed_target_not_a_failed_run(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(3))

    def explode(task: TargetTask) -> None:
        if task.target == "h02":
            raise RuntimeError("bug in host work")

    view = drive(store, run_id, ScriptedWork(before=explode), clock)
    assert view.status is RunStatus.SUCCEEDED
    target = get_run(store, run_id).target("h02")
    assert (target.state, target.error_kind, target.message) == (
        TargetState.FAILED,
        "internal",
        "RuntimeError: bug in host work",
    )


# --- canary and failure budget ------------------------------------------------------------------


def test_canary_failure_stops_the_rollout(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(8), canary=2, wave_size=3)
    work = ScriptedWork({"h01": TargetOutcome(TargetState.FAILED, "WinRM said no", "unreachable")})
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.FAILED
    assert view.status_message == "canary failed on h01: WinRM said no"
    # the second canary never started (gate), later waves never started
    assert work.targets() == ["h01"]
    after = get_run(store, run_id)
    assert after.target("h01").state is TargetState.FAILED
    for name in ("h02", "h03", "h08"):
        target = after.target(name)
        assert (target.state, target.attempts) == (TargetState.CANCELLED, 0)
        assert target.message == "not started: canary failed on h01: WinRM said no"
    assert [wave.status for wave in after.waves] == [
        WaveStatus.FAILED,
        WaveStatus.CANCELLED,
        WaveStatus.CANCELLED,
    ]
    finish = list_audit(store.engine, action="run.finish")[-1]
    assert (finish.details["to"], finish.details["counts"]) == ("failed", {"cancelled": 7, "failed": 1})


def test_tenant_failure_stops_before_any_host(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, [("contoso", "tenant"), *hosts(2)])
    work = ScriptedWork({"contoso": TargetOutcome(TargetState.ROLLED_BACK, "Graph refused the patch")})
    view = drive(store, run_id, work, clock)
    assert view.status_message == "tenant change failed on contoso: Graph refused the patch"
    assert work.targets() == ["contoso"]


def test_failure_budget_stops_mid_run(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(9), wave_size=4, max_fail="1")
    work = ScriptedWork({"h02": TargetState.FAILED, "h06": TargetState.FAILED})
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.FAILED
    assert view.status_message == "failure budget exceeded: 2 of 9 targets failed (max 1)"
    # one failure is within the budget; the second stops the wave at once: h07, h08 never start
    assert work.targets() == ["h01", "h02", "h03", "h04", "h05", "h06"]
    assert states(store, run_id)["h07"] is TargetState.CANCELLED
    assert [wave.status for wave in get_run(store, run_id).waves] == [
        WaveStatus.COMPLETED,
        WaveStatus.FAILED,
        WaveStatus.CANCELLED,
    ]


@pytest.mark.parametrize("failure", [TargetState.VERIFY_FAILED, TargetState.ROLLED_BACK])
def test_verification_failures_count(store: Store, clock: FakeClock, failure: TargetState) -> None:
    run_id = new_run(store, hosts(4), max_fail="0")
    work = ScriptedWork({"h02": failure})
    view = drive(store, run_id, work, clock)
    assert view.status_message == "failure budget exceeded: 1 of 4 targets failed (max 0)"
    assert work.targets() == ["h01", "h02"]


def test_refused_and_skipped_targets_do_not_count(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(3), max_fail="0", canary=1)
    work = ScriptedWork({"h01": TargetState.REFUSED, "h02": TargetState.SKIPPED})
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.SUCCEEDED
    assert view.status_message == "3 targets: 1 refused, 1 skipped, 1 succeeded"


def test_percentage_budget_of_the_whole_fleet(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(20), wave_size=5, max_fail="10%")  # 2 of 20 allowed
    work = ScriptedWork({"h01": TargetState.FAILED, "h07": TargetState.FAILED, "h12": TargetState.FAILED})
    view = drive(store, run_id, work, clock)
    assert view.status_message == "failure budget exceeded: 3 of 20 targets failed (max 2)"
    assert work.targets()[-1] == "h12"


# --- change windows -----------------------------------------------------------------------------

# the fake clock starts on Monday 2026-06-01 12:00 UTC


def test_window_end_pauses_mid_wave_and_the_next_window_continues(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(6), window="10:00-13:00 UTC")

    def twenty_minutes(task: TargetTask) -> None:
        clock.advance(20 * 60)  # each target takes 20 minutes

    work = ScriptedWork(before=twenty_minutes)
    events: list[RunEvent] = []
    view = drive(store, run_id, work, clock, events=events)
    # 12:00, 12:20, 12:40 start; at 13:00 the window is closed: no new host starts
    assert work.targets() == ["h01", "h02", "h03"]
    assert view.status is RunStatus.PAUSED
    assert view.pause_reason == "outside change window; next opens at 2026-06-02T10:00+00:00"
    assert [target.state for target in get_run(store, run_id).targets] == [TargetState.SUCCEEDED] * 3 + [
        TargetState.PENDING
    ] * 3
    assert events[-1].kind is EventKind.RUN_PAUSED
    # still closed: advancing again does nothing but keep it paused
    clock.set(datetime(2026, 6, 2, 9, 0, tzinfo=UTC))
    assert drive(store, run_id, work, clock).status is RunStatus.PAUSED
    assert len(work.calls) == 3
    # the next window: exactly the remaining targets, each once
    clock.set(datetime(2026, 6, 2, 10, 30, tzinfo=UTC))
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.SUCCEEDED
    assert work.targets() == ["h01", "h02", "h03", "h04", "h05", "h06"]
    assert all(target.attempts == 1 for target in get_run(store, run_id).targets)
    actions = [entry.action for entry in list_audit(store.engine)]
    assert actions == ["run.create", "run.start", "run.pause", "run.resume", "run.finish"]


def test_closed_window_pauses_before_anything_starts(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(2), window="Sat-Sun 22:00-04:00 Europe/Amsterdam")
    work = ScriptedWork()
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.PAUSED
    assert view.pause_reason == "outside change window; next opens at 2026-06-06T22:00+02:00"
    assert view.started_at is None
    assert work.calls == []


def test_wait_for_window_sleeps_until_it_opens(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(2), window="14:00-15:00 UTC")
    started: list[datetime] = []
    work = ScriptedWork(before=lambda task: started.append(clock()))
    events: list[RunEvent] = []
    view = drive(store, run_id, work, clock, wait_for_window=True, events=events)
    assert view.status is RunStatus.SUCCEEDED
    assert sum(clock.sleeps) == 2 * 3600  # from 12:00 to 14:00, in slices
    assert max(clock.sleeps) <= POLICY.max_sleep.total_seconds()
    assert started == [datetime(2026, 6, 1, 14, 0, tzinfo=UTC)] * 2
    assert EventKind.RUN_WAITING in [event.kind for event in events]
    assert [entry.action for entry in list_audit(store.engine)] == [
        "run.create",
        "run.pause",
        "run.start",
        "run.finish",
    ]


def test_ignore_window_is_audited(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1), window="14:00-15:00 UTC")
    view = drive(store, run_id, ScriptedWork(), clock, ignore_window=True)
    assert view.status is RunStatus.SUCCEEDED
    (entry,) = list_audit(store.engine, action="run.ignore_window")
    assert entry.details == {"window": "14:00-15:00 UTC"}


# --- approvals ----------------------------------------------------------------------------------


def test_risky_run_waits_for_a_second_person(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(2), needs_approval=True, requested_by="alice")
    work = ScriptedWork()
    with pytest.raises(InputError, match="awaits approval"):
        drive(store, run_id, work, clock)
    with pytest.raises(InputError, match="cannot approve"):
        approve(store, run_id, approver="alice")
    approve(store, run_id, approver="bob")
    view = drive(store, run_id, work, clock)
    assert (view.status, view.approved_by) == (RunStatus.SUCCEEDED, "bob")
    assert work.targets() == ["h01", "h02"]
    approval = list_audit(store.engine, action="run.approve")
    assert [(entry.actor, entry.target) for entry in approval] == [("bob", run_id)]


# --- leases between runs ------------------------------------------------------------------------


def _blocked_run(
    store: Store, clock: FakeClock
) -> tuple[str, threading.Event, threading.Thread, ScriptedWork]:
    """Run A working on h01 and blocked there until the returned event is set."""
    run_a = new_run(store, [("h01", "endpoint")])
    started, release = threading.Event(), threading.Event()

    def block(task: TargetTask) -> None:
        started.set()
        assert release.wait(60)

    work_a = ScriptedWork(before=block)
    thread = threading.Thread(
        target=drive,
        args=(store, run_a, work_a, clock),
        kwargs={"executor_": executor(store, work_a, clock, holder="holder-a")},
    )
    thread.start()
    assert started.wait(60)
    return run_a, release, thread, work_a


def test_second_run_waits_then_skips_a_locked_host(store: Store, clock: FakeClock) -> None:
    run_a, release, thread, _work_a = _blocked_run(store, clock)
    run_b = new_run(store, [("h01", "endpoint"), ("h02", "endpoint")])
    work_b = ScriptedWork()
    try:
        view = drive(store, run_b, work_b, clock, executor_=executor(store, work_b, clock, holder="holder-b"))
    finally:
        release.set()
        thread.join(60)
    assert work_b.targets() == ["h02"]
    skipped = get_run(store, run_b).target("h01")
    assert skipped.state is TargetState.SKIPPED
    assert skipped.message.startswith(f"host h01 is locked by run {run_a} (holder-a, until ")
    assert skipped.error_kind == "locked"
    assert sum(clock.sleeps) >= LEASES.wait.total_seconds()  # it waited before giving up
    assert view.status is RunStatus.SUCCEEDED
    assert states(store, run_a) == {"h01": TargetState.SUCCEEDED}


def test_second_run_gets_the_host_once_the_first_releases_it(store: Store, clock: FakeClock) -> None:
    run_a, release, thread, _work_a = _blocked_run(store, clock)
    run_b = new_run(store, [("h01", "endpoint")])

    def first_finishes(seconds: float) -> None:  # run B's first wait lets run A finish
        release.set()
        thread.join(60)
        clock.sleep(seconds)

    work_b = ScriptedWork()
    executor_b = LocalExecutor(store, work_b, 1, "holder-b", policy=LEASES, clock=clock, sleep=first_finishes)
    try:
        view = drive(store, run_b, work_b, clock, executor_=executor_b)
    finally:
        release.set()
        thread.join(60)
    assert view.status is RunStatus.SUCCEEDED
    assert work_b.targets() == ["h01"]
    assert states(store, run_a) == {"h01": TargetState.SUCCEEDED}
    assert states(store, run_b) == {"h01": TargetState.SUCCEEDED}


# --- re-entrancy: crashes, takeovers, no-ops ----------------------------------------------------


def _crashed_mid_wave(store: Store, clock: FakeClock, lease: str) -> str:
    """A run whose process died while h02 was running: h01 done, h02 running, h03 pending."""
    run_id = new_run(store, hosts(3))
    now = clock()
    with write_transaction(store) as session:
        start_run(session, run_id, actor="dead", at=now)
        first = TargetTask(run_id, "h01", TargetRole.ENDPOINT, 1, 1)
        claim_target(session, first, now)
        from orchestrator.engine.runs import record_outcome  # noqa: PLC0415

        record_outcome(session, first, TargetOutcome(TargetState.SUCCEEDED), now)
        claim_target(session, TargetTask(run_id, "h02", TargetRole.ENDPOINT, 1, 1), now)
        if lease == "same-run":  # live, but its holder is gone
            acquire(session, "h02", run_id, "dead-holder", timedelta(hours=1), now)
        elif lease == "expired":
            acquire(session, "h02", run_id, "dead-holder", timedelta(minutes=1), now - timedelta(hours=1))
    return run_id


@pytest.mark.parametrize("lease", ["same-run", "expired", "none"])
def test_a_dead_attempt_is_taken_over_exactly_once(store: Store, clock: FakeClock, lease: str) -> None:
    run_id = _crashed_mid_wave(store, clock, lease)
    work = ScriptedWork()
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.SUCCEEDED
    assert [(task.target, task.attempt, task.takeover) for task in work.calls] == [
        ("h02", 2, True),
        ("h03", 1, False),
    ]
    assert {target.name: target.attempts for target in get_run(store, run_id).targets} == {
        "h01": 1,
        "h02": 2,
        "h03": 1,
    }
    assert list_audit(store.engine, action="run.resume")  # the run was running: this is a resume


def test_advance_on_a_finished_run_is_a_no_op(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(2))
    work = ScriptedWork()
    first = drive(store, run_id, work, clock)
    entries = len(list_audit(store.engine, limit=100))
    clock.advance(3600)
    again = drive(store, run_id, work, clock)
    assert again == first
    assert len(work.calls) == 2
    assert len(list_audit(store.engine, limit=100)) == entries


class RemoteExecutor:
    """Like a Celery executor: targets may be in progress on workers the coordinator cannot see."""

    in_process = False

    def __init__(self, inner: LocalExecutor):
        self.inner = inner

    def execute(
        self,
        run_id: str,
        tasks: Sequence[TargetTask],
        should_start: ShouldStart,
        on_finished: OnFinished | None = None,
    ) -> None:
        self.inner.execute(run_id, tasks, should_start, on_finished)


def test_remote_work_in_progress_is_waited_for_until_its_lease_expires(
    store: Store, clock: FakeClock
) -> None:
    run_id = _crashed_mid_wave(store, clock, "none")
    with write_transaction(store) as session:  # a worker holds h02, renewing for 10 more minutes
        acquire(session, "h02", run_id, "worker-9", timedelta(minutes=10), clock())
    work = ScriptedWork()
    policy = CoordinatorPolicy(claim_ttl=timedelta(hours=1), poll=timedelta(minutes=1))
    view = drive(
        store, run_id, work, clock, executor_=RemoteExecutor(executor(store, work, clock)), policy=policy
    )
    assert view.status is RunStatus.SUCCEEDED
    assert [(task.target, task.takeover) for task in work.calls] == [("h03", False), ("h02", True)]
    assert sum(clock.sleeps) >= 600  # it waited for the lease to expire


def test_a_second_coordinator_is_refused_while_the_first_is_alive(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(1))
    claim_coordinator(store, run_id, "other-process", timedelta(minutes=1), clock())
    work = ScriptedWork()
    with pytest.raises(RunBusyError, match="being advanced by other-process"):
        drive(store, run_id, work, clock)
    assert work.calls == []
    clock.advance(61)  # its claim expired: the process is gone
    assert drive(store, run_id, work, clock).status is RunStatus.SUCCEEDED
    assert get_run(store, run_id).coordinator is None  # released at the end


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_mid_run_lets_the_current_target_finish(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(5), wave_size=2)

    def cancel_at_h02(task: TargetTask) -> None:
        if task.target == "h02":
            view = request_cancel(store, run_id, actor="carol", now=clock())
            assert view.status is RunStatus.RUNNING  # the coordinator is alive: it stops the run

    work = ScriptedWork(before=cancel_at_h02)
    view = drive(store, run_id, work, clock)
    assert view.status is RunStatus.CANCELLED
    assert view.status_message == "cancelled on request"
    assert work.targets() == ["h01", "h02"]
    assert states(store, run_id) == {
        "h01": TargetState.SUCCEEDED,
        "h02": TargetState.SUCCEEDED,
        "h03": TargetState.CANCELLED,
        "h04": TargetState.CANCELLED,
        "h05": TargetState.CANCELLED,
    }
    assert [entry.actor for entry in list_audit(store.engine, action="run.cancel")] == ["carol"]


def test_a_broken_progress_display_does_not_stop_the_run(store: Store, clock: FakeClock) -> None:
    run_id = new_run(store, hosts(2))

    def broken(event: RunEvent) -> None:
        raise ValueError("terminal went away")

    view = advance(
        store, run_id, executor(store, ScriptedWork(), clock), clock=clock, on_event=broken, policy=POLICY
    )
    assert view.status is RunStatus.SUCCEEDED
