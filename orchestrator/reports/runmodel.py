"""The playbook-run report as a value: :func:`build_run_report` turns a stored run -- its row, waves,
targets, action journal and audit entries -- into a frozen :class:`RunReport` that every renderer
(HTML, CSV, JSON) reads.  Pure: no store, no clock.

What a change ticket needs from a run (docs/reports.md, "Run reports"):

* the run: playbook, parameters, selection, rollout, window, who requested and who approved it and
  when, its times, its status and why;
* what was **planned**: the saved plan when the run applied one (``fleetfix run --plan FILE``),
  else the changes as they were applied;
* per wave and target: the state, each step with its changes (field, before, after), the
  verification (checks verified, findings remaining), rollbacks with the restored values,
  failures with their error kind and message, refusals and skips with their reasons;
* the audit entries that name the run, with the chain's seq numbers and hashes.

Where the facts come from: a target's ``detail`` (what the host work recorded: steps with their
changes, ``verified``, ``remaining``, ``rolled_back``) is the primary source; the action journal
adds what the detail cannot say (a rollback, a step an interrupted attempt left claimed, the
values a rollback restored), and the audit log's ``action.apply`` entries the changes of a step
that a resumed attempt found already done.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from orchestrator.checks.model import FrozenJson, freeze, thaw
from orchestrator.engine.model import FAILURE_STATES
from orchestrator.store.chain import AuditEntry, ChainHead
from orchestrator.store.journal import JournalRecord
from orchestrator.store.models import StepState, TargetState

RUN_REPORT_SCHEMA_VERSION = 1
"""Version of the run report's data shape: the ``schema_version`` of its CSV and JSON exports."""

TARGET_STATES: tuple[str, ...] = tuple(state.value for state in TargetState)
FAILURES: frozenset[str] = frozenset(state.value for state in FAILURE_STATES)
NOT_DONE: frozenset[str] = frozenset({"refused", "skipped", "cancelled"})
"""States of targets that changed nothing and are still to do (with their reason)."""
AUDIT_APPLY = "action.apply"
AUDIT_ROLLBACK = "action.rollback"
INTERRUPTED_STEP = "interrupted"
"""A step's state when an attempt claimed it in the journal and died before it finished."""


class PlanSource(StrEnum):
    """Where the report's "planned" section comes from."""

    SAVED_PLAN = "saved_plan"  # the run applied a saved plan (fleetfix run --plan FILE)
    AS_APPLIED = "as_applied"  # no saved plan: the changes as the steps applied them
    NONE = "none"  # no saved plan and nothing applied (yet)


class Verification(StrEnum):
    PASSED = "passed"  # the playbook's checks no longer report the target
    FAILED = "failed"  # still reported after the verification timeout
    NOT_RUN = "not_run"  # the target did not get that far


class Approval(StrEnum):
    APPROVED = "approved"  # a second person approved it (fleetfix runs approve)
    SELF_APPROVED = "self_approved"  # the requester approved it with --yes
    AWAITING = "awaiting"  # a risky run waiting for a second person
    NOT_NEEDED = "not_needed"  # the playbook's risk is none


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepInfo:
    id: str
    action: str


@dataclass(frozen=True)
class PlaybookInfo:
    """What the report shows of the playbook (from the catalogue at report time)."""

    id: str
    description: str
    risk: str
    target: str
    fixes: tuple[str, ...]
    verify_checks: tuple[str, ...]
    steps: tuple[StepInfo, ...]
    tenant_steps: tuple[StepInfo, ...] = ()
    rollback_on_verify_failure: bool = False
    source: str = "shipped"


@dataclass(frozen=True)
class RunRecord:
    """The ``runs`` row of a playbook run."""

    id: str
    playbook_id: str | None
    status: str
    selector: str | None
    parameters: Mapping[str, Any]
    options: Mapping[str, Any]
    requested_by: str
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pause_reason: str | None
    status_message: str | None
    cancel_requested: bool = False
    executor: str = "local"


@dataclass(frozen=True)
class WaveRecord:
    number: int
    kind: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class TargetRecord:
    """A ``run_targets`` row: the outcome of the target's latest attempt."""

    name: str
    role: str
    wave: int
    state: str
    attempts: int
    message: str
    error_kind: str | None
    detail: Mapping[str, Any]
    planned: Mapping[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class RunData:
    """Everything :func:`build_run_report` reads (:mod:`orchestrator.reports.runsource` loads it)."""

    run: RunRecord
    waves: tuple[WaveRecord, ...]
    targets: tuple[TargetRecord, ...]
    """in wave order, then the order they were created in"""
    journal: tuple[JournalRecord, ...]
    audit: tuple[AuditEntry, ...]
    """the entries that name the run (``target`` or ``details.run_id``), in seq order"""
    audit_head: ChainHead | None
    playbook: PlaybookInfo | None
    generated_at: datetime
    notes: tuple[str, ...] = ()


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One setting a step changes: as Windows or Graph names it, before and after."""

    field: str
    before: FrozenJson
    after: FrozenJson


@dataclass(frozen=True)
class StepReport:
    """One step on one target: what it did, and whether it was undone."""

    step: str
    action: str | None
    state: str
    """``applied``, ``unchanged``, ``skipped``, ``failed``, ``rolled_back``, ``interrupted``"""
    changes: tuple[Change, ...] = ()
    note: str = ""
    """why a step was skipped, or the action's note on an unchanged step"""
    error: str | None = None
    error_kind: str | None = None
    resumed: bool = False
    """a resumed attempt found it done by an earlier attempt of the same run"""
    restored: Mapping[str, FrozenJson] | None = None
    """for a rolled-back step: the values the rollback restored (the journal's captured before)"""
    attempts: int = 0

    @property
    def rolled_back(self) -> bool:
        return self.state == StepState.ROLLED_BACK.value

    @property
    def applied(self) -> bool:
        """The step changed the target (and the change may since have been rolled back)."""
        return self.state in {StepState.APPLIED.value, StepState.ROLLED_BACK.value}


@dataclass(frozen=True)
class TargetReport:
    name: str
    role: str
    wave: int
    state: str
    attempts: int
    message: str
    error_kind: str | None
    planned: bool
    """the target came with a saved plan"""
    started_at: datetime | None
    finished_at: datetime | None
    steps: tuple[StepReport, ...]
    verification: Verification
    verified: tuple[str, ...]
    """the checks that no longer report the target"""
    remaining: tuple[str, ...]
    """``CHECK subject`` of the findings still reported after the change"""
    rolled_back: tuple[str, ...]
    rollback_errors: tuple[str, ...]

    @property
    def failure(self) -> bool:
        """The change did not hold (counts against the failure budget)."""
        return self.state in FAILURES

    @property
    def attention(self) -> bool:
        """Someone should look at it: a failure, a refusal, a skip, an interrupted attempt."""
        return (
            self.failure
            or self.state in {"refused", "skipped"}
            or self.error_kind == "interrupted"
            or bool(self.rollback_errors)
        )

    @property
    def changes_kept(self) -> int:
        """Changes applied and not rolled back."""
        return sum(len(step.changes) for step in self.steps if step.state == StepState.APPLIED.value)


@dataclass(frozen=True)
class WaveReport:
    number: int
    kind: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    counts: Mapping[str, int]
    """targets by state, every state (zeros included)"""
    targets: tuple[TargetReport, ...]

    @property
    def total(self) -> int:
        return len(self.targets)

    @property
    def failures(self) -> int:
        return sum(1 for target in self.targets if target.failure)


@dataclass(frozen=True)
class PlannedStep:
    """One step of one target as planned (or, without a saved plan, as applied)."""

    target: str
    role: str
    step: str
    action: str | None
    skipped: str | None
    changes: tuple[Change, ...]
    digest: str | None = None


@dataclass(frozen=True)
class PlannedChange:
    """One distinct change of the plan and the targets it is planned for."""

    step: str
    action: str | None
    field: str
    before: FrozenJson
    after: FrozenJson
    targets: tuple[str, ...]


@dataclass(frozen=True)
class PlanSection:
    source: PlanSource
    steps: tuple[PlannedStep, ...]
    distinct: tuple[PlannedChange, ...]
    """the same changes grouped: one line per (step, field, before, after), with its targets"""
    refused: tuple[str, ...] = ()
    """targets of a saved plan refused because they drifted"""

    @property
    def changes(self) -> int:
        return sum(len(step.changes) for step in self.steps)

    @property
    def targets(self) -> int:
        return len({step.target for step in self.steps})


@dataclass(frozen=True)
class AuditLine:
    """One audit entry naming the run, as the chain holds it."""

    seq: int
    ts: datetime
    actor: str
    action: str
    target: str | None
    details: Mapping[str, FrozenJson]
    prev_hash: str
    hash: str
    hash_ok: bool
    """the entry's fields still hash to ``hash`` (``fleetfix audit verify`` checks the whole chain)"""
    summary: str


@dataclass(frozen=True)
class RunHeader:
    id: str
    playbook_id: str | None
    status: str
    status_message: str | None
    pause_reason: str | None
    selector: str | None
    params: Mapping[str, FrozenJson]
    sweep_id: str | None
    """the sweep whose findings chose the targets"""
    canary: int | None
    wave_size: int | None
    serial: bool | None
    max_fail: str | None
    window: str | None
    window_name: str | None
    concurrency: int | None
    verify_timeout_s: float | None
    requested_by: str
    approval: Approval
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested: bool
    executor: str

    @property
    def elapsed_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)


@dataclass(frozen=True)
class ExportRow:
    """One row of the CSV export (one object of the JSON export's ``changes``): one change of one
    step on one target; a step without changes, or a target without steps, is one row too."""

    run_id: str
    playbook: str | None
    run_status: str
    wave: int
    wave_kind: str
    target: str
    role: str
    target_state: str
    attempts: int
    planned: bool
    step: str | None
    action: str | None
    step_state: str | None
    field: str | None
    before: FrozenJson
    after: FrozenJson
    verified: bool | None
    rolled_back: bool
    error_kind: str | None
    message: str
    requested_by: str
    approved_by: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class RunReport:
    """A stored playbook run as a report; every renderer reads this and nothing else."""

    schema_version: int
    generated_at: datetime
    run: RunHeader
    playbook: PlaybookInfo | None
    counts: Mapping[str, int]
    """targets by state, every state (zeros included)"""
    plan: PlanSection
    waves: tuple[WaveReport, ...]
    audit: tuple[AuditLine, ...]
    audit_head: ChainHead | None
    notes: tuple[str, ...]

    @property
    def targets(self) -> Iterator[TargetReport]:
        for wave in self.waves:
            yield from wave.targets

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failures(self) -> int:
        return sum(count for state, count in self.counts.items() if state in FAILURES)

    @property
    def changes_applied(self) -> int:
        """Changes made and kept (rolled-back ones are not counted)."""
        return sum(target.changes_kept for target in self.targets)

    @property
    def rolled_back_steps(self) -> int:
        return sum(1 for target in self.targets for step in target.steps if step.rolled_back)

    @property
    def attention(self) -> tuple[TargetReport, ...]:
        return tuple(target for target in self.targets if target.attention)

    @property
    def audit_mismatches(self) -> int:
        return sum(1 for line in self.audit if not line.hash_ok)

    def rows(self) -> Iterator[ExportRow]:
        """The export rows, target by target in wave order, steps in the order they ran."""
        kinds = {wave.number: wave.kind for wave in self.waves}
        for target in self.targets:
            yield from _target_rows(self, target, kinds.get(target.wave, ""))


# --- building -----------------------------------------------------------------------------------


def build_run_report(data: RunData) -> RunReport:
    """The report of one stored playbook run (see the module docstring for what it holds)."""
    actions = _step_actions(data.playbook)
    journal = _journal_by_target(data.journal)
    applied = _applied_changes(data.audit)
    targets = [_target_report(t, journal.get(t.name.casefold(), {}), applied, actions) for t in data.targets]
    by_wave: dict[int, list[TargetReport]] = defaultdict(list)
    for target in targets:
        by_wave[target.wave].append(target)
    waves = [
        WaveReport(
            number=wave.number,
            kind=wave.kind,
            status=wave.status,
            started_at=wave.started_at,
            finished_at=wave.finished_at,
            counts=_state_counts(by_wave.get(wave.number, ())),
            targets=tuple(by_wave.pop(wave.number, ())),
        )
        for wave in sorted(data.waves, key=lambda w: w.number)
    ]
    for number, orphans in sorted(by_wave.items()):  # targets of a wave with no row: keep them visible
        counts = _state_counts(orphans)
        waves.append(WaveReport(number, "wave", "unknown", None, None, counts, tuple(orphans)))
    audit = tuple(_audit_line(entry) for entry in data.audit)
    notes = list(data.notes)
    mismatched = sum(1 for line in audit if not line.hash_ok)
    if mismatched:
        notes.append(
            f"{mismatched} audit entr{'y does' if mismatched == 1 else 'ies do'} not match "
            "its hash: run `fleetfix audit verify`"
        )
    return RunReport(
        schema_version=RUN_REPORT_SCHEMA_VERSION,
        generated_at=data.generated_at,
        run=_header(data.run, data.playbook),
        playbook=data.playbook,
        counts=_state_counts(targets),
        plan=_plan(targets, data.targets, actions),
        waves=tuple(waves),
        audit=audit,
        audit_head=data.audit_head,
        notes=tuple(notes),
    )


def _state_counts(targets: Iterable[TargetReport]) -> Mapping[str, int]:
    counts = Counter(target.state for target in targets)
    ordered = {state: counts.get(state, 0) for state in TARGET_STATES}
    ordered.update((state, count) for state, count in sorted(counts.items()) if state not in ordered)
    return MappingProxyType(ordered)


def _step_actions(playbook: PlaybookInfo | None) -> Mapping[str, str]:
    if playbook is None:
        return {}
    return {step.id: step.action for step in (*playbook.tenant_steps, *playbook.steps)}


def _journal_by_target(journal: Sequence[JournalRecord]) -> dict[str, dict[str, JournalRecord]]:
    by_target: dict[str, dict[str, JournalRecord]] = defaultdict(dict)
    for record in journal:
        by_target[record.host.casefold()][record.step] = record
    return by_target


def _applied_changes(audit: Sequence[AuditEntry]) -> dict[tuple[str, str], tuple[Change, ...]]:
    """(target, step) -> the changes its ``action.apply`` entry recorded (the latest wins)."""
    changes: dict[tuple[str, str], tuple[Change, ...]] = {}
    for entry in audit:
        if entry.action != AUDIT_APPLY or entry.target is None:
            continue
        step = entry.details.get("step")
        listed = entry.details.get("changes")
        if isinstance(step, str) and isinstance(listed, list):
            changes[(entry.target.casefold(), step)] = _changes(listed)
    return changes


def _changes(items: Any) -> tuple[Change, ...]:
    if not isinstance(items, list | tuple):
        return ()
    return tuple(
        Change(str(item.get("field", "")), freeze(item.get("before")), freeze(item.get("after")))
        for item in items
        if isinstance(item, Mapping)
    )


def _journal_changes(record: JournalRecord) -> tuple[Change, ...]:
    """What a journaled step changed, from its captured before and after (the keys the action
    keeps), when nothing better recorded it."""
    before, after = record.before or {}, record.after or {}
    return tuple(
        Change(key, freeze(before.get(key)), freeze(after.get(key)))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def _text_list(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list | tuple) else ()


def _step_report(
    entry: Mapping[str, Any] | None,
    name: str,
    record: JournalRecord | None,
    *,
    applied: Mapping[tuple[str, str], tuple[Change, ...]],
    target: str,
    actions: Mapping[str, str],
    rolled: set[str],
) -> StepReport:
    entry = entry or {}
    state = str(entry.get("state") or (record.state.value if record is not None else "unknown"))
    if record is not None and record.state is StepState.CLAIMED and not entry:
        state = INTERRUPTED_STEP
    rolled_back = name in rolled or (record is not None and record.state is StepState.ROLLED_BACK)
    changes = _changes(entry.get("changes"))
    if not changes and state in {"applied", "rolled_back"}:
        changes = applied.get((target.casefold(), name)) or (
            _journal_changes(record) if record is not None else ()
        )
    restored = None
    if rolled_back and record is not None and record.before is not None:
        frozen = freeze(record.before)
        restored = frozen if isinstance(frozen, Mapping) else None
    error = entry.get("error") or (record.error if record is not None else None)
    return StepReport(
        step=name,
        action=record.action if record is not None else actions.get(name),
        state=StepState.ROLLED_BACK.value if rolled_back else state,
        changes=changes,
        note=str(entry.get("reason") or entry.get("note") or ""),
        error=str(error) if error else None,
        error_kind=str(entry["kind"]) if entry.get("kind") else None,
        resumed=bool(entry.get("resumed")),
        restored=restored,
        attempts=record.attempts if record is not None else 0,
    )


def _target_report(
    target: TargetRecord,
    journal: Mapping[str, JournalRecord],
    applied: Mapping[tuple[str, str], tuple[Change, ...]],
    actions: Mapping[str, str],
) -> TargetReport:
    detail = target.detail or {}
    rolled = set(_text_list(detail.get("rolled_back")))
    context: dict[str, Any] = {
        "applied": applied,
        "target": target.name,
        "actions": actions,
        "rolled": rolled,
    }
    steps: list[StepReport] = []
    seen: set[str] = set()
    listed = detail.get("steps")
    for entry in listed if isinstance(listed, list) else ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("step"), str):
            continue
        name = entry["step"]
        seen.add(name)
        steps.append(_step_report(entry, name, journal.get(name), **context))
    # journaled steps the detail does not list: an attempt that died (its outcome never recorded)
    for name, record in journal.items():
        if name not in seen:
            steps.append(_step_report(None, name, record, **context))
    verified, remaining = _text_list(detail.get("verified")), _text_list(detail.get("remaining"))
    if remaining:
        verification = Verification.FAILED
    elif "verified" in detail and target.state in {"succeeded", "unchanged"}:
        verification = Verification.PASSED
    else:
        verification = Verification.NOT_RUN
    return TargetReport(
        name=target.name,
        role=target.role,
        wave=target.wave,
        state=target.state,
        attempts=target.attempts,
        message=target.message,
        error_kind=target.error_kind,
        planned=target.planned is not None,
        started_at=target.started_at,
        finished_at=target.finished_at,
        steps=tuple(steps),
        verification=verification,
        verified=verified,
        remaining=remaining,
        rolled_back=tuple(sorted(rolled)),
        rollback_errors=_text_list(detail.get("rollback_errors")),
    )


def _plan(
    targets: Sequence[TargetReport], records: Sequence[TargetRecord], actions: Mapping[str, str]
) -> PlanSection:
    saved = [record for record in records if record.planned is not None]
    steps: list[PlannedStep] = []
    if saved:
        for record in saved:
            assert record.planned is not None
            for item in record.planned.get("steps") or ():
                if not isinstance(item, Mapping):
                    continue
                found = item.get("plan")
                plan: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
                name = str(item.get("step", ""))
                steps.append(
                    PlannedStep(
                        target=record.name,
                        role=record.role,
                        step=name,
                        action=str(plan["action"]) if plan.get("action") else actions.get(name),
                        skipped=str(item["skipped"]) if item.get("skipped") else None,
                        changes=_changes(plan.get("changes")),
                        digest=str(item["digest"]) if item.get("digest") else None,
                    )
                )
        source = PlanSource.SAVED_PLAN
        refused = tuple(target.name for target in targets if target.planned and target.state == "refused")
    else:
        for target in targets:
            steps.extend(
                PlannedStep(target.name, target.role, step.step, step.action, None, step.changes)
                for step in target.steps
                if step.applied and step.changes
            )
        source = PlanSource.AS_APPLIED if steps else PlanSource.NONE
        refused = ()
    return PlanSection(source, tuple(steps), _distinct(steps), refused)


def _key(value: FrozenJson) -> str:
    return json.dumps(thaw(value), sort_keys=True, default=str)


def _distinct(steps: Sequence[PlannedStep]) -> tuple[PlannedChange, ...]:
    grouped: dict[tuple[str, str, str, str], list[str]] = {}
    first: dict[tuple[str, str, str, str], tuple[PlannedStep, Change]] = {}
    for planned in steps:
        for change in planned.changes:
            key = (planned.step, change.field, _key(change.before), _key(change.after))
            grouped.setdefault(key, []).append(planned.target)
            first.setdefault(key, (planned, change))
    order = {name: index for index, name in enumerate(dict.fromkeys(step.step for step in steps))}
    rows = [
        PlannedChange(
            step=planned.step,
            action=planned.action,
            field=change.field,
            before=change.before,
            after=change.after,
            targets=tuple(dict.fromkeys(grouped[key])),
        )
        for key, (planned, change) in first.items()
    ]
    return tuple(sorted(rows, key=lambda row: (order.get(row.step, 0), row.field, -len(row.targets))))


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return kind(value)


def _header(run: RunRecord, playbook: PlaybookInfo | None) -> RunHeader:
    options, parameters = run.options or {}, run.parameters or {}
    params = freeze(parameters.get("params") or {})
    if run.approved_by:
        approval = Approval.APPROVED
    elif parameters.get("approved_with_yes"):
        approval = Approval.SELF_APPROVED
    elif run.status == "awaiting_approval":
        approval = Approval.AWAITING
    else:
        approval = Approval.NOT_NEEDED
    window = options.get("window")
    return RunHeader(
        id=run.id,
        playbook_id=run.playbook_id or (playbook.id if playbook else None),
        status=run.status,
        status_message=run.status_message,
        pause_reason=run.pause_reason,
        selector=run.selector,
        params=params if isinstance(params, Mapping) else MappingProxyType({}),
        sweep_id=str(parameters["sweep_id"]) if parameters.get("sweep_id") else None,
        canary=_number(options.get("canary"), int),
        wave_size=_number(options.get("wave_size"), int),
        serial=bool(options["serial"]) if "serial" in options else None,
        max_fail=str(options["max_fail"]) if options.get("max_fail") is not None else None,
        window=str(window) if window else None,
        window_name=str(options["window_name"]) if options.get("window_name") else None,
        concurrency=_number(options.get("concurrency"), int),
        verify_timeout_s=_number(parameters.get("verify_timeout_s"), float),
        requested_by=run.requested_by,
        approval=approval,
        approved_by=run.approved_by,
        approved_at=run.approved_at,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        cancel_requested=run.cancel_requested,
        executor=run.executor,
    )


# --- the audit trail ----------------------------------------------------------------------------


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _count(number: Any, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _apply_summary(details: Mapping[str, Any]) -> str:
    listed = details.get("changes")
    said = "; ".join(
        f"{c.get('field')}: {_short(c.get('before'), 60)} \u2192 {_short(c.get('after'), 60)}"
        for c in (listed if isinstance(listed, list) else ())
        if isinstance(c, Mapping)
    )
    return f"step {details.get('step')} ({details.get('action')}) applied" + (f": {said}" if said else "")


def _transition_summary(details: Mapping[str, Any]) -> str:
    extra = details.get("message") or details.get("reason") or details.get("interrupted_coordinator")
    return f"{details['from']} \u2192 {details['to']}" + (f": {_short(extra, 200)}" if extra else "")


_SUMMARIES: Mapping[str, Any] = {
    AUDIT_APPLY: _apply_summary,
    AUDIT_ROLLBACK: lambda d: (
        f"step {d.get('step')} ({d.get('action')}) rolled back, restored {_short(d.get('after'))}"
    ),
    "run.create": lambda d: (
        f"created with {_count(d.get('targets'), 'target')} in {_count(d.get('waves'), 'wave')} "
        f"({d.get('status')})"
    ),
    "run.cancel": lambda d: f"cancel requested (the run was {d.get('status')})",
    "run.ignore_window": lambda d: f"went on outside the change window {d.get('window')}",
}


def audit_summary(action: str, target: str | None, details: Mapping[str, Any]) -> str:
    """One line saying what an audit entry records (the JSON export carries the details)."""
    where = f"{target}: " if target and action in {AUDIT_APPLY, AUDIT_ROLLBACK} else ""
    summarise = _SUMMARIES.get(action)
    if summarise is None and "from" in details and "to" in details:
        summarise = _transition_summary
    if summarise is None:
        return (f"{target}: " if target else "") + _short(dict(details), 200)
    return where + str(summarise(details))


def _audit_line(entry: AuditEntry) -> AuditLine:
    try:
        hash_ok = entry.expected_hash() == entry.hash
    except Exception:  # an entry whose details no longer hash at all was edited
        hash_ok = False
    frozen = freeze(dict(entry.details))
    return AuditLine(
        seq=entry.seq,
        ts=entry.ts,
        actor=entry.actor,
        action=entry.action,
        target=entry.target,
        details=frozen if isinstance(frozen, Mapping) else MappingProxyType({}),
        prev_hash=entry.prev_hash,
        hash=entry.hash,
        hash_ok=hash_ok,
        summary=audit_summary(entry.action, entry.target, entry.details),
    )


# --- export rows --------------------------------------------------------------------------------


def _verified(target: TargetReport) -> bool | None:
    if target.verification is Verification.NOT_RUN:
        return None
    return target.verification is Verification.PASSED


def _target_rows(report: RunReport, target: TargetReport, wave_kind: str) -> Iterator[ExportRow]:
    run = report.run

    def row(step: StepReport | None, change: Change | None) -> ExportRow:
        failed_step = step is not None and step.error is not None
        return ExportRow(
            run_id=run.id,
            playbook=run.playbook_id,
            run_status=run.status,
            wave=target.wave,
            wave_kind=wave_kind,
            target=target.name,
            role=target.role,
            target_state=target.state,
            attempts=target.attempts,
            planned=target.planned,
            step=step.step if step else None,
            action=step.action if step else None,
            step_state=step.state if step else None,
            field=change.field if change else None,
            before=change.before if change else None,
            after=change.after if change else None,
            verified=_verified(target),
            rolled_back=bool(step and step.rolled_back),
            error_kind=(step.error_kind or target.error_kind) if failed_step and step else target.error_kind,
            message=(step.error or "") if failed_step and step else target.message,
            requested_by=run.requested_by,
            approved_by=run.approved_by,
            started_at=target.started_at,
            finished_at=target.finished_at,
        )

    if not target.steps:
        yield row(None, None)
        return
    for step in target.steps:
        if not step.changes:
            yield row(step, None)
        for change in step.changes:
            yield row(step, change)


__all__ = [
    "AUDIT_APPLY",
    "AUDIT_ROLLBACK",
    "FAILURES",
    "INTERRUPTED_STEP",
    "RUN_REPORT_SCHEMA_VERSION",
    "TARGET_STATES",
    "Approval",
    "AuditLine",
    "Change",
    "ExportRow",
    "PlanSection",
    "PlanSource",
    "PlannedChange",
    "PlannedStep",
    "PlaybookInfo",
    "RunData",
    "RunHeader",
    "RunRecord",
    "RunReport",
    "StepInfo",
    "StepReport",
    "TargetRecord",
    "TargetReport",
    "Verification",
    "WaveRecord",
    "WaveReport",
    "audit_summary",
    "build_run_report",
]
