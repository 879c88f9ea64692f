"""The runs repository: creating runs with waves and targets, reading, approving, cancelling,
guarded target updates; audit entries where an admin wants them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orchestrator.engine import (
    FailureBudget,
    RolloutOptions,
    RunStatus,
    TargetOutcome,
    TargetRole,
    TargetState,
    TargetTask,
    WaveKind,
    approve,
    create_run,
    get_run,
    list_runs,
    request_cancel,
    submit_planned,
)
from orchestrator.engine.runs import claim_target, record_outcome, write_transaction
from orchestrator.errors import IllegalTransitionError, InputError
from orchestrator.store import RunKind, Store, list_audit, verify_audit
from orchestrator.store.models import Run
from orchestrator.store.sweeps import start_sweep
from tests.engine.conftest import START, FakeClock, hosts, new_run


def test_create_run_with_waves_targets_and_options(store: Store) -> None:
    run_id = create_run(
        store,
        playbook_id="rras-auth",
        targets=[*hosts(5), ("contoso", "tenant")],
        rollout=RolloutOptions(canary=1, wave_size=2, max_fail=FailureBudget.parse("10%")),
        window_text="Sat-Sun 22:00-04:00 Europe/Amsterdam",
        requested_by="alice",
        needs_approval=False,
        parameters={"params": {"protocol": "ikev2"}},
        plans={"h02": {"steps": [{"digest": "abc"}]}},
        selector="role:endpoint",
        concurrency=4,
        now=START,
    )
    view = get_run(store, run_id)
    assert view.status is RunStatus.PENDING
    assert (view.playbook_id, view.requested_by, view.selector, view.created_at) == (
        "rras-auth",
        "alice",
        "role:endpoint",
        START,
    )
    assert view.parameters == {"params": {"protocol": "ikev2"}}
    assert [(wave.number, wave.kind) for wave in view.waves] == [
        (1, WaveKind.TENANT),
        (2, WaveKind.CANARY),
        (3, WaveKind.WAVE),
        (4, WaveKind.WAVE),
    ]
    assert [(target.wave, target.name) for target in view.targets] == [
        (1, "contoso"),
        (2, "h01"),
        (3, "h02"),
        (3, "h03"),
        (4, "h04"),
        (4, "h05"),
    ]
    assert all(target.state is TargetState.PENDING and target.attempts == 0 for target in view.targets)
    assert view.target("h02").planned == {"steps": [{"digest": "abc"}]}
    assert view.target("h03").planned is None
    assert view.options.rollout.max_fail == FailureBudget.parse("10%")
    assert view.options.concurrency == 4
    assert view.window is not None
    assert view.window.spec == "Sat,Sun 22:00-04:00 Europe/Amsterdam"
    assert view.counts == {TargetState.PENDING: 6}
    (entry,) = list_audit(store.engine, action="run.create")
    assert (entry.actor, entry.target, entry.details["targets"], entry.details["waves"]) == (
        "alice",
        run_id,
        6,
        4,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"targets": []}, "targets"),
        ({"targets": [("h1", "endpoint"), ("h1", "endpoint")]}, "targets"),
        ({"plans": {"nope": {}}}, "plans"),
        ({"window_text": "whenever"}, "--window"),
        ({"concurrency": 0}, "--concurrency"),
    ],
)
def test_invalid_runs_write_nothing(store: Store, kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "playbook_id": "p",
        "targets": hosts(2),
        "rollout": RolloutOptions(),
        "requested_by": "alice",
        **kwargs,
    }
    with pytest.raises(InputError) as raised:
        create_run(store, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert list_runs(store, kind=None) == ()


def test_unknown_run_is_an_input_error(store: Store) -> None:
    with pytest.raises(InputError, match="no run nope"):
        get_run(store, "nope")


def test_approval_needs_a_second_person(store: Store) -> None:
    run_id = new_run(store, hosts(2), needs_approval=True, requested_by="alice@corp")
    assert get_run(store, run_id).status is RunStatus.AWAITING_APPROVAL
    with pytest.raises(InputError, match="cannot approve it too"):
        approve(store, run_id, approver="Alice@corp ")
    assert get_run(store, run_id).status is RunStatus.AWAITING_APPROVAL
    view = approve(store, run_id, approver="bob@corp", now=START)
    assert (view.status, view.approved_by, view.approved_at) == (RunStatus.PENDING, "bob@corp", START)
    (entry,) = list_audit(store.engine, action="run.approve")
    assert (entry.actor, entry.target, entry.details["from"], entry.details["to"]) == (
        "bob@corp",
        run_id,
        "awaiting_approval",
        "pending",
    )
    with pytest.raises(InputError, match="does not await approval"):
        approve(store, run_id, approver="carol@corp")


def test_planned_run_is_submitted(store: Store) -> None:
    run_id = create_run(
        store,
        playbook_id="p",
        targets=hosts(1),
        rollout=RolloutOptions(),
        requested_by="alice",
        planned_only=True,
    )
    assert get_run(store, run_id).status is RunStatus.PLANNED
    assert (
        submit_planned(store, run_id, actor="alice", needs_approval=True).status
        is RunStatus.AWAITING_APPROVAL
    )
    with pytest.raises(InputError, match="not a saved plan"):
        submit_planned(store, run_id, actor="alice", needs_approval=False)


def test_cancel_of_an_idle_run_is_immediate(store: Store) -> None:
    run_id = new_run(store, hosts(3))
    view = request_cancel(store, run_id, actor="carol")
    assert view.status is RunStatus.CANCELLED
    assert view.status_message == "cancelled by carol"
    assert all(target.state is TargetState.CANCELLED for target in view.targets)
    assert all(target.message == "not started: cancelled by carol" for target in view.targets)
    assert [entry.action for entry in list_audit(store.engine)][-2:] == ["run.cancel", "run.finish"]
    # a finished run stays as it is
    assert request_cancel(store, run_id, actor="dave").status_message == "cancelled by carol"
    assert verify_audit(store.engine).failure is None


def test_cancel_of_a_run_awaiting_approval(store: Store) -> None:
    run_id = new_run(store, hosts(1), needs_approval=True)
    assert request_cancel(store, run_id, actor="alice").status is RunStatus.CANCELLED


def test_target_claims_are_compare_and_set(store: Store) -> None:
    run_id = new_run(store, hosts(1))
    task = TargetTask(run_id, "h01", TargetRole.ENDPOINT, 1, attempt=1)
    with write_transaction(store) as session:
        assert claim_target(session, task, START)
        assert not claim_target(session, task, START)  # the same task again: a duplicate delivery
        assert not claim_target(session, TargetTask(run_id, "h01", TargetRole.ENDPOINT, 1, attempt=2), START)
    with write_transaction(store) as session:
        with pytest.raises(IllegalTransitionError):
            record_outcome(session, task, TargetOutcome(TargetState.PENDING), START)
        stale = TargetTask(run_id, "h01", TargetRole.ENDPOINT, 1, attempt=2)
        assert not record_outcome(session, stale, TargetOutcome(TargetState.SUCCEEDED), START)
        assert record_outcome(
            session, task, TargetOutcome(TargetState.SUCCEEDED, "done", detail={"n": 1}), START
        )
    target = get_run(store, run_id).target("h01")
    assert (target.state, target.attempts, target.message, target.detail) == (
        TargetState.SUCCEEDED,
        1,
        "done",
        {"n": 1},
    )


def test_list_runs_newest_first_with_counts_and_sweeps_apart(store: Store) -> None:
    earlier, later = FakeClock(START), FakeClock(START + timedelta(hours=1))
    first = new_run(store, hosts(2), clock=earlier)
    second = new_run(store, hosts(3), clock=earlier)
    with write_transaction(store) as session:
        session.execute(select(Run).where(Run.id == second)).scalar_one().created_at = later()
        start_sweep(session, requested_by="x", selector=None, parameters={}, started_at=START)
    runs = list_runs(store)
    assert [view.id for view in runs] == [second, first]
    assert runs[0].counts == {TargetState.PENDING: 3}
    assert runs[0].targets == ()
    assert runs[0].to_dict(targets=False)["counts"] == {"pending": 3}
    assert {view.kind for view in list_runs(store, kind=None)} == {RunKind.PLAYBOOK, RunKind.SWEEP}
    assert list_runs(store, statuses={RunStatus.SUCCEEDED}) == ()
    assert [view.id for view in list_runs(store, limit=1)] == [second]
