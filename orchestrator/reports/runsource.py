"""What the playbook-run report reads from the store, in a fixed number of queries whatever the
run's size.

A run report is: the run's row, its waves, its targets (streamed), its action journal (streamed,
one query for all targets), the audit entries that name it (one scan of the audit log) and the
audit head -- never a query per target or per step.  Everything returned is an immutable value;
the building itself is :func:`orchestrator.reports.runmodel.build_run_report` (pure).  The
metrics' "targets by state of each playbook's last run" is one more aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, Text, cast, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from orchestrator.errors import InputError
from orchestrator.reports.runmodel import (
    PlaybookInfo,
    RunData,
    RunRecord,
    StepInfo,
    TargetRecord,
    WaveRecord,
)
from orchestrator.store.audit import parse_details, parse_ts
from orchestrator.store.chain import AuditEntry, ChainHead
from orchestrator.store.journal import JournalRecord
from orchestrator.store.models import (
    AuditHead,
    AuditLogRow,
    JournalEntry,
    Run,
    RunKind,
    RunTarget,
    RunWave,
    StepState,
)

if TYPE_CHECKING:
    from orchestrator.playbook.model import Playbook

STREAM_ROWS = 2000
"""Rows fetched at a time from the database cursor (``yield_per``)."""
RUN_FIELD = "ID"

_RUN_FIELDS = (
    "id",
    "kind",
    "playbook_id",
    "status",
    "selector",
    "parameters",
    "options",
    "requested_by",
    "approved_by",
    "approved_at",
    "created_at",
    "started_at",
    "finished_at",
    "pause_reason",
    "status_message",
    "cancel_requested",
    "executor",
)
_TARGET_FIELDS = (
    "target",
    "role",
    "wave",
    "state",
    "attempts",
    "message",
    "error_kind",
    "detail",
    "planned",
    "started_at",
    "finished_at",
)
_JOURNAL_FIELDS = (
    "id",
    "run_id",
    "host",
    "step",
    "action",
    "state",
    "attempts",
    "before",
    "after",
    "error",
    "claimed_by",
    "claimed_at",
    "finished_at",
)
_UNREADABLE_TS = datetime(1970, 1, 1, tzinfo=UTC)


def report_run(session: Session, run_id: str) -> RunRecord:
    """The playbook run to report; InputError (``ID``) when there is no such run, or it is a sweep."""
    row = session.execute(
        select(*(getattr(Run, name) for name in _RUN_FIELDS)).where(Run.id == run_id.strip())
    ).one_or_none()
    if row is None:
        raise InputError(
            f"there is no run {run_id}: `fleetfix runs list` shows playbook runs", field=RUN_FIELD
        )
    if row.kind != RunKind.PLAYBOOK.value:
        raise InputError(
            f"run {run_id} is a sweep, not a playbook run: `fleetfix report sweep --run {run_id}` reports it",
            field=RUN_FIELD,
        )
    values = row._asdict()
    del values["kind"]
    return RunRecord(
        **{
            **values,
            "parameters": MappingProxyType(dict(row.parameters or {})),
            "options": MappingProxyType(dict(row.options or {})),
            "cancel_requested": bool(row.cancel_requested),
            "executor": row.executor or "local",
        }
    )


def load_run_data(
    session: Session,
    run: RunRecord,
    *,
    playbook: PlaybookInfo | None,
    generated_at: datetime,
    notes: tuple[str, ...] = (),
) -> RunData:
    """Everything the report of ``run`` needs (six queries, whatever the number of targets)."""
    return RunData(
        run=run,
        waves=run_waves(session, run.id),
        targets=stream_targets(session, run.id),
        journal=stream_journal(session, run.id),
        audit=run_audit(session, run.id),
        audit_head=audit_head(session),
        playbook=playbook,
        generated_at=generated_at,
        notes=notes,
    )


def run_waves(session: Session, run_id: str) -> tuple[WaveRecord, ...]:
    query = (
        select(RunWave.number, RunWave.kind, RunWave.status, RunWave.started_at, RunWave.finished_at)
        .where(RunWave.run_id == run_id)
        .order_by(RunWave.number)
    )
    return tuple(WaveRecord(**row._asdict()) for row in session.execute(query))


def stream_targets(session: Session, run_id: str) -> tuple[TargetRecord, ...]:
    """The run's targets in wave order, then creation order, read in chunks."""
    query = (
        select(*(getattr(RunTarget, name) for name in _TARGET_FIELDS))
        .where(RunTarget.run_id == run_id)
        .order_by(RunTarget.wave, RunTarget.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    return tuple(
        TargetRecord(
            name=row.target,
            role=row.role,
            wave=row.wave,
            state=row.state,
            attempts=row.attempts,
            message=row.message or "",
            error_kind=row.error_kind,
            detail=MappingProxyType(dict(row.detail or {})),
            planned=None if row.planned is None else MappingProxyType(dict(row.planned)),
            started_at=row.started_at,
            finished_at=row.finished_at,
        )
        for row in session.execute(query)
    )


def stream_journal(session: Session, run_id: str) -> tuple[JournalRecord, ...]:
    """Every journal row of the run (all targets, one query), in the order they were claimed."""
    query = (
        select(*(getattr(JournalEntry, name) for name in _JOURNAL_FIELDS))
        .where(JournalEntry.run_id == run_id)
        .order_by(JournalEntry.id)
        .execution_options(yield_per=STREAM_ROWS)
    )
    return tuple(
        JournalRecord(**{**row._asdict(), "state": StepState(row.state)}) for row in session.execute(query)
    )


# --- the audit trail ----------------------------------------------------------------------------


def _names(run_id: str, target: str | None, details: Mapping[str, Any] | None, raw: object) -> bool:
    if target == run_id:
        return True
    if details is None:  # unreadable (edited): keep it if its text names the run
        return run_id in str(raw)
    return details.get("run_id") == run_id


def run_audit(session: Session, run_id: str) -> tuple[AuditEntry, ...]:
    """The audit entries that name the run -- its ``target`` is the run id (``run.create``,
    ``run.approve``, ``run.finish`` ...) or its details' ``run_id`` is (``action.apply``,
    ``action.rollback``, ``schedule.done``) -- in seq order, as stored: one scan of the log.

    On SQLite the timestamp and details are read as the stored text and parsed here, as
    ``fleetfix audit verify`` does, so an entry someone edited into garbage is reported (its hash
    no longer matches) instead of failing the report.
    """
    raw = session.get_bind().dialect.name == "sqlite"
    ts = type_coerce(AuditLogRow.ts, String()).label("ts") if raw else AuditLogRow.ts
    details = type_coerce(AuditLogRow.details, String()).label("details") if raw else AuditLogRow.details
    query = (
        select(
            AuditLogRow.seq,
            ts,
            AuditLogRow.actor,
            AuditLogRow.action,
            AuditLogRow.target,
            details,
            AuditLogRow.prev_hash,
            AuditLogRow.hash,
        )
        .where(or_(AuditLogRow.target == run_id, cast(AuditLogRow.details, Text).contains(run_id)))
        .order_by(AuditLogRow.seq)
        .execution_options(yield_per=STREAM_ROWS)
    )
    entries = []
    for row in session.execute(query):
        parsed, moment = parse_details(row.details), parse_ts(row.ts)
        if not _names(run_id, row.target, parsed, row.details):
            continue
        if parsed is None or moment is None:
            moment, parsed = _UNREADABLE_TS, {"_unreadable": {"ts": str(row.ts), "details": str(row.details)}}
        entries.append(
            AuditEntry(
                seq=row.seq,
                ts=moment,
                actor=row.actor,
                action=row.action,
                target=row.target,
                details=MappingProxyType(parsed),
                prev_hash=row.prev_hash,
                hash=row.hash,
            )
        )
    return tuple(entries)


def audit_head(session: Session) -> ChainHead | None:
    """The audit chain's head now: an auditor records it and verifies against it later
    (``fleetfix audit verify --expect-head SEQ:HASH``)."""
    row = session.execute(select(AuditHead.last_seq, AuditHead.last_hash)).first()
    return None if row is None else ChainHead(seq=row.last_seq, hash=row.last_hash)


# --- metrics ------------------------------------------------------------------------------------


def last_run_targets(session: Session) -> dict[tuple[str, str], int]:
    """(playbook, target state) -> targets of the newest run of each playbook (one aggregate over a
    window function; runs still ``planned`` are not runs yet and are left out)."""
    newest = (
        select(
            Run.id,
            Run.playbook_id,
            func.row_number()
            .over(partition_by=Run.playbook_id, order_by=(Run.created_at.desc(), Run.id.desc()))
            .label("rank"),
        )
        .where(Run.kind == RunKind.PLAYBOOK.value, Run.playbook_id.is_not(None), Run.status != "planned")
        .subquery()
    )
    query = (
        select(newest.c.playbook_id, RunTarget.state, func.count())
        .join(RunTarget, RunTarget.run_id == newest.c.id)
        .where(newest.c.rank == 1)
        .group_by(newest.c.playbook_id, RunTarget.state)
    )
    return {(str(playbook), str(state)): int(number) for playbook, state, number in session.execute(query)}


# --- outside the store --------------------------------------------------------------------------


def playbook_info(playbook: Playbook) -> PlaybookInfo:
    """What the report shows of a playbook of the catalogue."""
    source = playbook.source
    return PlaybookInfo(
        id=playbook.id,
        description=playbook.description.strip(),
        risk=str(playbook.risk.value),
        target=str(playbook.target.value),
        fixes=tuple(playbook.fixes),
        verify_checks=tuple(playbook.verify.checks),
        steps=tuple(StepInfo(step.id, step.action) for step in playbook.steps),
        tenant_steps=tuple(StepInfo(step.id, step.action) for step in playbook.tenant_steps),
        rollback_on_verify_failure=bool(playbook.rollback.on_verify_failure),
        source="shipped" if source.shipped or source.path is None else str(source.path),
    )


__all__ = [
    "RUN_FIELD",
    "STREAM_ROWS",
    "audit_head",
    "last_run_targets",
    "load_run_data",
    "playbook_info",
    "report_run",
    "run_audit",
    "run_waves",
    "stream_journal",
    "stream_targets",
]
