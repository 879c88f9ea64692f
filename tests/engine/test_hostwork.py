"""A playbook's work on one target (orchestrator.engine.hostwork) with every edge faked but the store.

The "host" is a value in a dict; a test action reads and sets it, the fake collector reports it as
facts, and the fake checks fire while it is wrong.  What is real: the journal and audit log in the
store (SQLite and PostgreSQL), the playbook loader, and the runner's own logic: claim before apply,
no second apply of a done step, the takeover of a half-done step, drift against a saved plan,
verification with polling, rollback from the journal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from orchestrator.actions import actions, register
from orchestrator.actions.model import (
    ActionPlan,
    ApplyResult,
    ArgSpec,
    ArgType,
    Change,
    Connection,
    PlanContext,
    TargetKind,
)
from orchestrator.checks import REGISTRY
from orchestrator.checks.model import Finding, FrozenJson, Severity
from orchestrator.engine.hostwork import TargetRunner, WorkSetup, plan_target
from orchestrator.engine.model import TargetRole, TargetState, TargetTask
from orchestrator.errors import ActionFailedError
from orchestrator.facts.fleet import FleetFacts
from orchestrator.inventory.models import Role
from orchestrator.playbook import Registries, load_playbook
from orchestrator.store import Store, claim_step
from orchestrator.store.journal import journal_of
from orchestrator.sweep.collect import HostOutcome
from orchestrator.sweep.plan import CollectOptions, HostJob
from orchestrator.sweep.service import SweepIO
from orchestrator.sweep.summary import TenantOutcome
from tests.sweep.support import facts_document, inventory_host

HOST = "ep-0001"
CHECK = "EP-ROUTE-01"  # any real check id: the fake checks below decide when it fires
RUN = "00000000-0000-4000-8000-000000000001"


class World:
    """The simulated host: setting values by host, what every apply did, a failure switch."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {HOST: "wrong"}
        self.wanted = "right"
        self.applied: list[tuple[str, str, str]] = []
        self.fail_apply: set[str] = set()
        self.stuck = False  # the check keeps firing whatever the value (a fix that does not take)


WORLD = World()


class SetValue:
    """``test.set-value``: set the host's value to ``wanted``; reversible."""

    name: ClassVar[str] = "test.set-value"
    summary: ClassVar[str] = "set the value"
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = (
        ArgSpec("wanted", ArgType.STRING, "the value", default="right"),
    )
    reversible: ClassVar[bool] = True

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        wanted = str(args.get("wanted") or WORLD.wanted)
        now = WORLD.values[ctx.target]
        changes = () if now == wanted else (Change("Value", now, wanted),)
        return ActionPlan(self.name, ctx.target, {"wanted": wanted}, changes)

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        if self.name in WORLD.fail_apply:
            raise ActionFailedError("the host refused", host=conn.target)
        before, wanted = WORLD.values[conn.target], str(plan.arguments["wanted"])
        if before == wanted:  # reads first: already right
            return ApplyResult(changed=False, before={"value": before}, after={"value": before})
        WORLD.values[conn.target] = wanted
        WORLD.applied.append((conn.target, self.name, wanted))
        return ApplyResult(changed=True, before={"value": before}, after={"value": wanted})

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        previous, now = str(before["value"]), WORLD.values[conn.target]
        WORLD.values[conn.target] = previous
        WORLD.applied.append((conn.target, "rollback", previous))
        return ApplyResult(changed=True, before={"value": now}, after={"value": previous})


class Bounce:
    """``test.bounce``: a service restart that follows a change (``when_changed``); not reversible."""

    name: ClassVar[str] = "test.bounce"
    summary: ClassVar[str] = "restart"
    target_kind: ClassVar[TargetKind] = TargetKind.HOST
    arguments: ClassVar[tuple[ArgSpec, ...]] = ()
    reversible: ClassVar[bool] = False

    def plan(self, ctx: PlanContext, args: Mapping[str, FrozenJson]) -> ActionPlan:
        return ActionPlan(self.name, ctx.target, {}, (Change("Service", "running", "restarted"),))

    def apply(self, conn: Connection, plan: ActionPlan) -> ApplyResult:
        if self.name in WORLD.fail_apply:
            raise ActionFailedError("the service did not start", host=conn.target)
        WORLD.applied.append((conn.target, self.name, ""))
        return ApplyResult(changed=True, before={}, after={"restarted": True})

    def rollback(self, conn: Connection, before: Mapping[str, FrozenJson]) -> ApplyResult:
        raise AssertionError("not reversible: never called")


for _action in (SetValue(), Bounce()):
    if _action.name not in actions():
        register(_action)

PLAYBOOK = """\
id: test-fix
description: sets the value, then restarts
fixes: [EP-ROUTE-01]
target: endpoint
risk: none
steps:
  - id: set
    action: test.set-value
  - id: bounce
    action: test.bounce
    when_changed: [set]
verify:
  checks: [EP-ROUTE-01]
  timeout_s: 3
  interval_s: 1
rollback:
  on_verify_failure: true
rollout:
  canary: 1
  wave_size: 5
"""


@pytest.fixture(autouse=True)
def world() -> World:
    WORLD.__init__()  # type: ignore[misc]  # a fresh world per test
    return WORLD


def finding(host: str) -> Finding:
    return Finding(CHECK, host, Severity.MEDIUM, "wrong value", "the value is wrong", f"value:{host}")


def fake_io() -> SweepIO:
    def collect(jobs: Sequence[HostJob], resolved: Any, options: CollectOptions) -> tuple[HostOutcome, ...]:
        at = datetime(2026, 6, 1, tzinfo=UTC)
        return tuple(
            HostOutcome(
                name=job.name,
                role=Role.ENDPOINT,
                facts=facts_document(Role.ENDPOINT, job.name),
                error=None,
                started_at=at,
                finished_at=at,
                elapsed_s=0.0,
            )
            for job in jobs
        )

    def checks(fleet: FleetFacts, at: datetime) -> list[Finding]:
        names = [host.name for host in fleet.hosts]
        return [finding(name) for name in names if WORLD.stuck or WORLD.values.get(name) != WORLD.wanted]

    return SweepIO(
        resolve=lambda keys: {},
        collect=collect,
        tenant=lambda at: TenantOutcome(configured=False),
        crls=lambda urls: (),
        checks=checks,
        clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
    )


@contextmanager
def no_session(host: Any) -> Iterator[Any]:
    raise AssertionError("the test actions never open a WinRM session")
    yield  # pragma: no cover


@pytest.fixture
def setup(store: Store, tmp_path: Path) -> WorkSetup:
    path = tmp_path / "test-fix.yaml"
    path.write_text(PLAYBOOK, encoding="utf-8")
    registries = Registries(actions=dict(actions()), check_ids={spec.id for spec in REGISTRY.specs()})
    playbook = load_playbook(path, registries=registries)
    host = inventory_host(HOST)
    return WorkSetup(
        store=store,
        run_id=RUN,
        playbook=playbook,
        params=playbook.resolve_params(),
        hosts={HOST: host},
        base=FleetFacts(),
        io=fake_io(),
        options=CollectOptions(),
        open_session=no_session,
        open_intune=None,
        actor="alice@adminhost",
        approver="bob@adminhost",
        holder="test:1",
        sleep=lambda seconds: None,
    )


@pytest.fixture
def store(store: Store) -> Store:
    """The engine's migrated store with the run the journal rows belong to."""
    from orchestrator.engine import FailureBudget, RolloutOptions, create_run  # noqa: PLC0415

    run_id = create_run(
        store,
        playbook_id="test-fix",
        targets=[(HOST, "endpoint")],
        rollout=RolloutOptions(canary=1, wave_size=5, max_fail=FailureBudget.parse("0")),
        requested_by="alice@adminhost",
    )
    global RUN  # noqa: PLW0603 (the id the store gave; every test's setup uses it)
    RUN = run_id
    return store


def task(*, planned: Mapping[str, Any] | None = None) -> TargetTask:
    return TargetTask(run_id=RUN, target=HOST, role=TargetRole.ENDPOINT, wave=1, attempt=1, planned=planned)


def journal(store: Store) -> list[tuple[str, str, int, Any, Any]]:
    with store.transaction() as session:
        return [
            (r.step, r.state.value, r.attempts, r.before, r.after) for r in journal_of(session, RUN, HOST)
        ]


def audited(store: Store, action: str) -> list[dict[str, Any]]:
    from sqlalchemy import text  # noqa: PLC0415

    with store.engine.connect() as connection:
        rows = connection.execute(
            text("select details from audit_log where action = :a order by seq"), {"a": action}
        )
        return [row[0] if isinstance(row[0], dict) else json.loads(row[0]) for row in rows]


def test_applies_journals_audits_and_verifies(setup: WorkSetup, world: World) -> None:
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.SUCCEEDED, outcome.message
    assert world.values[HOST] == "right"
    assert world.applied == [(HOST, "test.set-value", "right"), (HOST, "test.bounce", "")]
    assert journal(setup.store) == [
        ("set", "applied", 1, {"value": "wrong"}, {"value": "right"}),
        ("bounce", "applied", 1, {}, {"restarted": True}),
    ]
    entries = audited(setup.store, "action.apply")
    assert [(e["step"], e["before"], e["after"], e["approver"]) for e in entries] == [
        ("set", {"value": "wrong"}, {"value": "right"}, "bob@adminhost"),
        ("bounce", {}, {"restarted": True}, "bob@adminhost"),
    ]


def test_a_host_already_right_is_unchanged_and_nothing_is_audited(setup: WorkSetup, world: World) -> None:
    world.values[HOST] = "right"
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.UNCHANGED
    assert world.applied == []
    assert [(step, state) for step, state, *_ in journal(setup.store)] == [("set", "unchanged")]
    assert audited(setup.store, "action.apply") == []


def test_a_done_step_is_not_applied_again_when_the_run_resumes(setup: WorkSetup, world: World) -> None:
    assert TargetRunner(setup)(task()).state is TargetState.SUCCEEDED
    world.applied.clear()
    again = TargetRunner(setup)(task())
    assert again.state is TargetState.SUCCEEDED
    assert world.applied == []
    assert [step["resumed"] for step in again.detail["steps"]] == [True, True]


def test_a_half_done_step_is_taken_over_and_what_follows_it_still_happens(
    setup: WorkSetup, world: World
) -> None:
    # an attempt claimed "set", changed the host, and died before recording it
    with setup.store.transaction() as session:
        claim_step(session, run_id=RUN, host=HOST, step="set", action="test.set-value", claimed_by="dead:9")
    world.values[HOST] = "right"
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.SUCCEEDED, outcome.message
    assert world.applied == [(HOST, "test.bounce", "")]  # the restart the dead attempt never made
    assert [(step, state, attempts) for step, state, attempts, *_ in journal(setup.store)] == [
        ("set", "applied", 2),
        ("bounce", "applied", 1),
    ]


def test_a_failed_verification_restores_the_journaled_value(setup: WorkSetup, world: World) -> None:
    world.stuck = True
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.ROLLED_BACK, outcome.message
    assert "verification failed" in outcome.message
    assert world.values[HOST] == "wrong"
    assert world.applied[-1] == (HOST, "rollback", "wrong")
    states = {step: state for step, state, *_ in journal(setup.store)}
    assert states == {"set": "rolled_back", "bounce": "applied"}
    assert [e["step"] for e in audited(setup.store, "action.rollback")] == ["set"]


def test_a_failed_step_rolls_back_the_steps_before_it(setup: WorkSetup, world: World) -> None:
    world.fail_apply.add("test.bounce")
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.ROLLED_BACK
    assert "step bounce (test.bounce) failed: ep-0001: the service did not start" in outcome.message
    assert world.values[HOST] == "wrong"
    states = {step: state for step, state, *_ in journal(setup.store)}
    assert states == {"set": "rolled_back", "bounce": "failed"}


def test_check_mode_plans_every_step_and_changes_nothing(setup: WorkSetup, world: World) -> None:
    plan = plan_target(setup, HOST, "endpoint")
    assert plan.error is None
    assert [
        (step.step, [c.to_dict() for c in step.plan.changes] if step.plan else None) for step in plan.steps
    ] == [
        ("set", [{"field": "Value", "before": "wrong", "after": "right"}]),
        ("bounce", [{"field": "Service", "before": "running", "after": "restarted"}]),
    ]
    assert [f.check_id for f in plan.findings] == [CHECK]
    assert world.applied == []
    assert journal(setup.store) == []


def test_a_saved_plan_applies_as_planned_and_refuses_a_drifted_host(setup: WorkSetup, world: World) -> None:
    saved = plan_target(setup, HOST, "endpoint").to_dict()
    world.values[HOST] = "something else"  # drifted since planning: the fresh plan differs
    refused = TargetRunner(setup)(task(planned=saved))
    assert refused.state is TargetState.REFUSED
    assert "changed since the plan was made" in refused.message
    assert world.applied == []

    world.values[HOST] = "wrong"  # back as planned
    applied = TargetRunner(setup)(task(planned=saved))
    assert applied.state is TargetState.SUCCEEDED


def test_a_taken_over_change_without_its_before_value_is_not_rolled_back_blindly(
    setup: WorkSetup, world: World
) -> None:
    with setup.store.transaction() as session:
        claim_step(session, run_id=RUN, host=HOST, step="set", action="test.set-value", claimed_by="dead:9")
    world.values[HOST] = "right"
    world.stuck = True
    outcome = TargetRunner(setup)(task())
    assert outcome.state is TargetState.VERIFY_FAILED
    assert "rollback incomplete: set: its value before the change was lost" in outcome.message
    assert world.values[HOST] == "right"  # nothing was "restored" to a guess
