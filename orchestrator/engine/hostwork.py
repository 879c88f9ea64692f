"""The work a playbook does on one target: observe, plan, claim, apply, verify, roll back.

The engine decides *which* targets run *when* (waves, windows, budget, leases); this module is
what happens once a target's turn comes, the same under the local and the Celery executor:

1. **observe**: the target's facts afresh, judged by the checks in the fleet's context;
2. for each step (tenant steps on ``intune``, host steps on hosts), in order:
   a step the journal already holds as done is not repeated (a resumed run, a redelivered task);
   conditions (``when``, ``when_changed``) are evaluated; the action **plans** from the fresh
   facts; a saved plan (``--plan FILE``) must match the fresh one, or the target is *refused*
   (it drifted since planning); an empty plan is journaled ``unchanged``; otherwise the step is
   **claimed** in the journal (committed) before the action **applies** it, and its before/after
   land in the journal and the audit log in one transaction;
3. **verify**: look again (polling, the playbook's timeout) until the checks pass;
4. on a failed verification (or a failed step), **roll back** the reversible steps that changed,
   newest first, from the ``before`` values the journal captured.

A step found ``claimed`` by an attempt that died is *half-done*: the host was re-read in step 1,
and the action's apply reads the current state before acting, so re-applying is safe.

Nothing here raises for a host's problem: the outcome says what happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from orchestrator.actions import get_action
from orchestrator.actions.connection import IntuneOpener, LiveConnection
from orchestrator.actions.model import TENANT_TARGET, Action, ActionPlan, ApplyResult, PlanContext
from orchestrator.checks.model import Finding, FrozenJson, thaw
from orchestrator.engine.model import TargetOutcome, TargetState, TargetTask
from orchestrator.errors import FleetfixError
from orchestrator.facts.fleet import FleetFacts
from orchestrator.inventory.models import Host
from orchestrator.playbook.model import Playbook, Step
from orchestrator.playbook.refs import resolve_args, resolve_value
from orchestrator.store import Store, append_audit
from orchestrator.store.journal import (
    JournalRecord,
    claim_step,
    finish_step,
    journal_of,
    reclaim_step,
)
from orchestrator.store.models import StepState
from orchestrator.sweep.collect import ProbeSession
from orchestrator.sweep.observe import Observation, observe
from orchestrator.sweep.plan import CollectOptions
from orchestrator.sweep.service import SweepIO

log = logging.getLogger("fleetfix.engine")

AUDIT_APPLY = "action.apply"
AUDIT_ROLLBACK = "action.rollback"


@dataclass(frozen=True)
class WorkSetup:
    """Everything the work on one target needs, shared by every target of a run."""

    store: Store
    run_id: str
    playbook: Playbook
    params: Mapping[str, FrozenJson]
    hosts: Mapping[str, Host]
    base: FleetFacts
    io: SweepIO
    options: CollectOptions
    open_session: Callable[[Host], AbstractContextManager[ProbeSession]]
    open_intune: IntuneOpener | None
    actor: str
    approver: str | None = None
    holder: str | None = None
    verify_timeout_s: float | None = None
    """overrides the playbook's verification timeout (``fleetfix run --verify-timeout``)"""
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    def host(self, name: str) -> Host | None:
        return self.hosts.get(name.casefold())


@dataclass(frozen=True)
class StepPlan:
    """One step's plan on one target (what ``--check`` prints and ``--plan FILE`` replays)."""

    step: str
    plan: ActionPlan | None
    skipped: str = ""

    @property
    def digest(self) -> str | None:
        """The plan's digest; None when the step has nothing to do (skipped or already right)."""
        return self.plan.digest() if self.plan is not None and not self.plan.noop else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "skipped": self.skipped or None,
            "plan": self.plan.to_dict() if self.plan is not None else None,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class TargetPlan:
    """A target's plan: every step's, or why it could not be planned."""

    target: str
    role: str
    steps: tuple[StepPlan, ...] = ()
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    error_kind: str | None = None

    @property
    def changes(self) -> int:
        return sum(len(step.plan.changes) for step in self.steps if step.plan is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "role": self.role,
            "changes": self.changes,
            "findings": [f"{finding.check_id} {finding.subject}" for finding in self.findings],
            "steps": [step.to_dict() for step in self.steps],
            "error": self.error,
            "error_kind": self.error_kind,
        }


def is_tenant(target: str) -> bool:
    return target.casefold() == TENANT_TARGET


# --- observing ---------------------------------------------------------------------------------------


def observe_target(setup: WorkSetup, target: str) -> Observation:
    """Fresh facts of ``target`` (a host, or the tenant) judged in the fleet's context."""
    if is_tenant(target):
        return observe(setup.io, (), base=setup.base, options=setup.options, tenant=True)
    host = setup.host(target)
    if host is None:
        raise _TargetError("inventory", f"{target} is no longer in the inventory")
    return observe(
        setup.io,
        (host,),
        base=setup.base,
        options=setup.options,
        refetch_crls=host.role.value == "ca",
    )


def _facts_of(obs: Observation, target: str) -> Any:
    if is_tenant(target):
        if obs.fleet.tenant is None:
            error = obs.errors.get(TENANT_TARGET) or obs.fleet.tenant_error
            raise _TargetError(error.kind if error else "config", _reason(error, "the tenant was not read"))
        return obs.fleet.tenant
    host = obs.facts_of(target)
    if host is None or host.facts is None:
        error = obs.errors.get(target) or (host.error if host else None)
        raise _TargetError(error.kind if error else "internal", _reason(error, "no facts"))
    return host.facts


def _reason(error: Any, default: str) -> str:
    return str(error.message) if error is not None else default


class _TargetError(Exception):
    """A target-level problem (not a step's): its facts cannot be had, it drifted."""

    def __init__(self, kind: str, message: str, state: TargetState = TargetState.FAILED) -> None:
        super().__init__(message)
        self.kind = kind
        self.state = state


# --- planning ----------------------------------------------------------------------------------------


def steps_for(playbook: Playbook, target: str) -> tuple[Step, ...]:
    return tuple(playbook.tenant_steps if is_tenant(target) else playbook.steps)


def plan_step(
    setup: WorkSetup,
    step: Step,
    obs: Observation,
    target: str,
    prior: Mapping[str, ApplyResult],
) -> StepPlan:
    """One step's plan from the observation (pure but for the action's own reads of ``obs``)."""
    facts = _facts_of(obs, target)
    facts_data = facts.model_dump(mode="json")
    if step.when is not None and not resolve_value(step.when, setup.params, facts_data):
        return StepPlan(step.id, None, skipped="condition 'when' is false")
    if step.when_changed and not any(prior.get(name, _UNCHANGED).changed for name in step.when_changed):
        return StepPlan(step.id, None, skipped=f"no change by {', '.join(step.when_changed)}")
    action = get_action(step.action)
    ctx = PlanContext(
        target=target,
        facts=facts,
        fleet=obs.fleet,
        findings=obs.findings_on(target, setup.playbook.fixes),
        at=obs.at,
        host=None if is_tenant(target) else setup.host(target),
        params=setup.params,
        prior=prior,
    )
    return StepPlan(step.id, action.plan(ctx, resolve_args(step, setup.params, facts_data)))


_UNCHANGED = ApplyResult(changed=False)
_WOULD_CHANGE = ApplyResult(changed=True)
_TAKEOVER_NOTE = "taken over from an attempt that died: found in the wanted state"
_TAKEN_OVER = ApplyResult(changed=True, message=_TAKEOVER_NOTE)


def plan_target(setup: WorkSetup, target: str, role: str) -> TargetPlan:
    """What the playbook would do on ``target`` now (``--check``): nothing is changed.

    A step that would change something counts as changed for the steps after it (``when_changed``).
    """
    try:
        obs = observe_target(setup, target)
        prior: dict[str, ApplyResult] = {}
        steps: list[StepPlan] = []
        for step in steps_for(setup.playbook, target):
            planned = plan_step(setup, step, obs, target, prior)
            steps.append(planned)
            prior[step.id] = _WOULD_CHANGE if planned.plan and not planned.plan.noop else _UNCHANGED
    except _TargetError as exc:
        return TargetPlan(target, role, error=str(exc), error_kind=exc.kind)
    except FleetfixError as exc:
        return TargetPlan(target, role, error=str(exc), error_kind=exc.kind)
    return TargetPlan(target, role, tuple(steps), obs.findings_on(target, setup.playbook.fixes))


# --- applying ----------------------------------------------------------------------------------------


@dataclass
class _Progress:
    """What happened on one target so far (mutable inside one call of :class:`TargetRunner`)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    changed: bool = False

    def detail(self, **more: Any) -> dict[str, Any]:
        return {"steps": self.steps, **more}


class TargetRunner:
    """The :data:`~orchestrator.engine.model.TargetWork` of a playbook run."""

    def __init__(self, setup: WorkSetup) -> None:
        self.setup = setup

    def __call__(self, task: TargetTask) -> TargetOutcome:
        setup, target = self.setup, task.target
        progress = _Progress()
        try:
            with LiveConnection(
                target,
                None if is_tenant(target) else setup.host(target),
                open_session=self._session_opener(target),
                open_intune=setup.open_intune,
                clock=setup.io.clock,
            ) as conn:
                return self._run(task, conn, progress)
        except _TargetError as exc:
            return TargetOutcome(exc.state, str(exc), error_kind=exc.kind, detail=progress.detail())
        except FleetfixError as exc:
            return TargetOutcome(TargetState.FAILED, str(exc), error_kind=exc.kind, detail=progress.detail())

    def _session_opener(self, target: str) -> Callable[[], AbstractContextManager[ProbeSession]] | None:
        host = None if is_tenant(target) else self.setup.host(target)
        if host is None:
            return None
        return lambda: self.setup.open_session(host)

    def _run(self, task: TargetTask, conn: LiveConnection, progress: _Progress) -> TargetOutcome:
        setup, target = self.setup, task.target
        obs = observe_target(setup, target)
        done = {record.step: record for record in self._journal(target)}
        prior = {name: _result_of(record) for name, record in done.items() if record.done}
        saved = _saved_digests(task.planned)
        for step in steps_for(setup.playbook, target):
            record = done.get(step.id)
            if record is not None and record.done:
                progress.steps.append({"step": step.id, "state": record.state.value, "resumed": True})
                progress.changed |= record.state is StepState.APPLIED
                continue
            planned = plan_step(setup, step, obs, target, prior)
            self._check_drift(step, planned, saved)
            if planned.plan is None:
                progress.steps.append({"step": step.id, "state": "skipped", "reason": planned.skipped})
                prior[step.id] = _UNCHANGED
                continue
            failure = self._apply_step(
                task, step=step, plan=planned.plan, record=record, conn=conn, progress=progress, prior=prior
            )
            if failure is not None:
                return self._after_failure(task, conn, progress, failure)
        return self._verify(task, conn, progress)

    def _journal(self, target: str) -> tuple[JournalRecord, ...]:
        with self.setup.store.transaction() as session:
            return journal_of(session, self.setup.run_id, target)

    def _check_drift(self, step: Step, planned: StepPlan, saved: Mapping[str, str | None] | None) -> None:
        # A step that acts only after another changed something (a restart after a setting) plans
        # from that step's live result (the host's time of the change), which no saved plan can
        # know: the step it follows was checked for drift, and that decides.
        if saved is None or step.when_changed:
            return
        fresh = planned.digest
        if saved.get(step.id) != fresh:
            raise _TargetError(
                "drifted",
                f"step {step.id}: the target changed since the plan was made "
                f"(planned {_short(saved.get(step.id))}, now {_short(fresh)}); re-plan with --check",
                TargetState.REFUSED,
            )

    def _apply_step(
        self,
        task: TargetTask,
        *,
        step: Step,
        plan: ActionPlan,
        record: JournalRecord | None,
        conn: LiveConnection,
        progress: _Progress,
        prior: dict[str, ApplyResult],
    ) -> str | None:
        """Claim, apply, journal and audit one step; the failure message, or None."""
        action = get_action(step.action)
        entry_id = self._claim(task, step, record)
        if entry_id is None:  # another attempt holds it right now: leave the host alone
            raise _TargetError("claimed", f"step {step.id} is being applied by another worker")
        # Taking over a step an attempt died in: the change may have been made just before the
        # death, so "already right" now may be that attempt's work, and what follows it (a
        # restart that puts the setting into effect) must still happen.  Its before-value went
        # with the dead attempt: such a step cannot be rolled back (see _rollback).
        taken_over = record is not None and record.state is StepState.CLAIMED
        if plan.noop and not taken_over:
            self._finish(entry_id, StepState.UNCHANGED, None, step, plan)
            progress.steps.append({"step": step.id, "state": "unchanged", "note": plan.note})
            prior[step.id] = _UNCHANGED
            return None
        try:
            result = _TAKEN_OVER if plan.noop else action.apply(conn, plan)
        except FleetfixError as exc:
            self._finish(entry_id, StepState.FAILED, None, step, plan, error=str(exc))
            progress.steps.append({"step": step.id, "state": "failed", "error": str(exc), "kind": exc.kind})
            return f"step {step.id} ({step.action}) failed: {exc}"
        if taken_over and not result.changed:
            result = ApplyResult(
                changed=True, before=result.before, after=result.after, message=_TAKEOVER_NOTE
            )
        state = StepState.APPLIED if result.changed else StepState.UNCHANGED
        self._finish(entry_id, state, result, step, plan)
        progress.steps.append(
            {"step": step.id, "state": state.value, "changes": [c.to_dict() for c in plan.changes]}
        )
        progress.changed |= result.changed
        prior[step.id] = result
        return None

    def _claim(self, task: TargetTask, step: Step, record: JournalRecord | None) -> int | None:
        setup = self.setup
        with setup.store.transaction() as session:
            if record is None:
                return claim_step(
                    session,
                    run_id=setup.run_id,
                    host=task.target,
                    step=step.id,
                    action=step.action,
                    claimed_by=setup.holder,
                )
            # half-done (claimed by a dead attempt) or failed before: one more attempt
            if reclaim_step(session, record.id, claimed_by=setup.holder, from_state=record.state):
                return record.id
            return None

    def _finish(
        self,
        entry_id: int,
        state: StepState,
        result: ApplyResult | None,
        step: Step,
        plan: ActionPlan,
        *,
        error: str | None = None,
    ) -> None:
        setup = self.setup
        before = thaw(result.before) if result is not None else None
        after = thaw(result.after) if result is not None else None
        with setup.store.transaction() as session:
            if state is StepState.APPLIED:  # on SQLite the audit append goes first (it locks)
                append_audit(
                    session,
                    setup.actor,
                    AUDIT_APPLY,
                    plan.target,
                    {
                        "run_id": setup.run_id,
                        "playbook": setup.playbook.id,
                        "step": step.id,
                        "action": step.action,
                        "before": before,
                        "after": after,
                        "changes": [change.to_dict() for change in plan.changes],
                        "approver": setup.approver,
                    },
                )
            finish_step(session, entry_id, state=state, before=before, after=after, error=error)

    # --- verification and rollback ------------------------------------------------------------------

    def _verify(self, task: TargetTask, conn: LiveConnection, progress: _Progress) -> TargetOutcome:
        setup, target = self.setup, task.target
        checks = setup.playbook.fixes if is_tenant(target) else setup.playbook.verify.checks
        conn.reset_session()  # verification may take minutes; a rollback after it gets a fresh session
        remaining = self._poll(target, checks, wait=progress.changed)
        if not remaining:
            state = TargetState.SUCCEEDED if progress.changed else TargetState.UNCHANGED
            return TargetOutcome(state, _summary(progress), detail=progress.detail(verified=list(checks)))
        names = sorted({f"{finding.check_id} {finding.subject}" for finding in remaining})
        if not progress.changed:
            message = f"nothing to change, yet still reported: {'; '.join(names)}"
            return TargetOutcome(
                TargetState.FAILED, message, "unremediated", progress.detail(remaining=names)
            )
        message = f"verification failed: still reported: {'; '.join(names)}"
        return self._after_failure(
            task, conn, progress, message, state=TargetState.VERIFY_FAILED, remaining=names
        )

    def _poll(self, target: str, checks: Sequence[str], *, wait: bool) -> tuple[Finding, ...]:
        """The verify checks' findings on ``target``, looked at until they are gone or time is up.

        Without a change there is nothing to wait for: one look decides.
        """
        policy = self.setup.playbook.verify
        timeout = self.setup.verify_timeout_s if self.setup.verify_timeout_s is not None else policy.timeout_s
        deadline = self.setup.monotonic() + (timeout if wait else 0.0)
        while True:
            obs = observe_target(self.setup, target)
            if target in obs.errors:
                error = obs.errors[target]
                remaining: tuple[Finding, ...] = ()
                last_error = error.message
            else:
                remaining, last_error = obs.findings_on(target, checks), ""
                if not remaining:
                    return ()
            if self.setup.monotonic() + policy.interval_s > deadline:
                if last_error:
                    raise _TargetError("verify", f"verification could not read the target: {last_error}")
                return remaining
            self.setup.sleep(policy.interval_s)

    def _after_failure(
        self,
        task: TargetTask,
        conn: LiveConnection,
        progress: _Progress,
        message: str,
        *,
        state: TargetState = TargetState.FAILED,
        remaining: Sequence[str] = (),
    ) -> TargetOutcome:
        if not self.setup.playbook.rollback.on_verify_failure or not progress.changed:
            return TargetOutcome(state, message, _kind(state), progress.detail(remaining=list(remaining)))
        undone, problems = self._rollback(task, conn)
        detail = progress.detail(remaining=list(remaining), rolled_back=undone, rollback_errors=problems)
        if problems:
            return TargetOutcome(
                state, f"{message}; rollback incomplete: {'; '.join(problems)}", _kind(state), detail
            )
        return TargetOutcome(
            TargetState.ROLLED_BACK, f"{message}; rolled back {', '.join(undone)}", _kind(state), detail
        )

    def _rollback(self, task: TargetTask, conn: LiveConnection) -> tuple[list[str], list[str]]:
        """Restore the journal's ``before`` of each reversible applied step, newest first."""
        undone: list[str] = []
        problems: list[str] = []
        for record in reversed(self._journal(task.target)):
            if record.state is not StepState.APPLIED:
                continue
            action: Action = get_action(record.action)
            if not action.reversible:
                continue
            if not record.before:
                problems.append(
                    f"{record.step}: its value before the change was lost with the attempt that made it"
                )
                continue
            try:
                result = action.rollback(conn, record.before or {})
            except FleetfixError as exc:
                problems.append(f"{record.step}: {exc}")
                continue
            self._record_rollback(record, result)
            undone.append(record.step)
        return undone, problems

    def _record_rollback(self, record: JournalRecord, result: ApplyResult) -> None:
        setup = self.setup
        with setup.store.transaction() as session:
            append_audit(
                session,
                setup.actor,
                AUDIT_ROLLBACK,
                record.host,
                {
                    "run_id": setup.run_id,
                    "playbook": setup.playbook.id,
                    "step": record.step,
                    "action": record.action,
                    "before": thaw(result.before),
                    "after": thaw(result.after),
                    "approver": setup.approver,
                },
            )
            finish_step(session, record.id, state=StepState.ROLLED_BACK)


def _kind(state: TargetState) -> str:
    return "verification" if state is TargetState.VERIFY_FAILED else "action"


def _summary(progress: _Progress) -> str:
    changed = [step["step"] for step in progress.steps if step.get("state") == "applied"]
    return f"changed by {', '.join(changed)}; verified" if changed else "already right"


def _result_of(record: JournalRecord) -> ApplyResult:
    return ApplyResult(
        changed=record.state is StepState.APPLIED, before=record.before or {}, after=record.after or {}
    )


def _saved_digests(planned: Mapping[str, Any] | None) -> Mapping[str, str | None] | None:
    """``step -> digest`` of a saved plan (None digest: the plan said nothing to do)."""
    if planned is None:
        return None
    return {str(step["step"]): step.get("digest") for step in planned.get("steps", ())}


def _short(digest: str | None) -> str:
    return "no change" if digest is None else digest[:12]


__all__ = [
    "AUDIT_APPLY",
    "AUDIT_ROLLBACK",
    "StepPlan",
    "TargetPlan",
    "TargetRunner",
    "WorkSetup",
    "is_tenant",
    "observe_target",
    "plan_step",
    "plan_target",
    "steps_for",
]
