"""Sweeps in the store: a run of kind ``sweep``, one host result per selected host, its findings.

A sweep is written in two transactions: :func:`start_sweep` records the run as ``running`` before
any host is contacted (a killed sweep stays visible as such), and :func:`complete_sweep` writes
every host result and finding together with the final status, so a reader never sees half a
sweep.  Readers get immutable values (:class:`SweepRun`, :class:`HostRecord`,
:class:`FindingRecord`), never ORM rows.

"Previous sweep" means the newest *completed* (``succeeded``) sweep created before the one at hand;
a sweep whose hosts were all unreachable still completed: unreachable hosts are data, not a failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from orchestrator.errors import InputError
from orchestrator.store.models import Finding, HostResult, HostStatus, Run, RunKind, RunStatus


@dataclass(frozen=True)
class SweepRun:
    """A sweep's run row."""

    id: str
    status: RunStatus
    selector: str | None
    parameters: Mapping[str, Any]
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: Mapping[str, Any] | None

    @classmethod
    def from_row(cls, run: Run) -> SweepRun:
        return cls(
            id=run.id,
            status=RunStatus(run.status),
            selector=run.selector,
            parameters=dict(run.parameters),
            requested_by=run.requested_by,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            summary=run.summary,
        )


@dataclass(frozen=True)
class HostRecord:
    """What collection gave for one host: ``ok`` with facts, or why not."""

    host: str
    role: str
    status: HostStatus
    error_kind: str | None = None
    error_message: str | None = None
    facts: dict[str, Any] | None = field(default=None, repr=False)
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class FindingRecord:
    """One stored finding; ``fingerprint`` is the check's identity of "the same problem"."""

    host: str
    check_id: str
    severity: str
    title: str
    message: str
    subject: str
    reason: str | None
    fingerprint: str
    evidence: dict[str, Any] = field(default_factory=dict)
    error_codes: tuple[str | int, ...] = ()
    playbook: str | None = None
    advice: str | None = None
    observed_at: datetime | None = None


_FINDING_COLUMNS = tuple(name for name in FindingRecord.__dataclass_fields__ if name != "observed_at")


def start_sweep(
    session: Session,
    *,
    requested_by: str,
    selector: str | None,
    parameters: Mapping[str, Any],
    started_at: datetime,
) -> SweepRun:
    """Record a sweep as running; returns it with its new id (committed with the session)."""
    run = Run(
        kind=RunKind.SWEEP.value,
        status=RunStatus.RUNNING.value,
        selector=selector,
        parameters=dict(parameters),
        requested_by=requested_by,
        created_at=started_at,
        started_at=started_at,
    )
    session.add(run)
    session.flush()
    return SweepRun.from_row(run)


def complete_sweep(
    session: Session,
    run_id: str,
    *,
    hosts: Sequence[HostRecord],
    findings: Sequence[FindingRecord],
    fleet_facts: Mapping[str, Any] | None,
    summary: Mapping[str, Any],
    finished_at: datetime,
    observed_at: datetime,
) -> None:
    """Write every host result and finding of a sweep and mark it succeeded, in the session's
    transaction.  Bulk inserts: a sweep of 10,000 hosts is two statements, not 10,000."""
    if hosts:
        rows = [{**asdict(record), "status": record.status.value, "run_id": run_id} for record in hosts]
        session.execute(insert(HostResult), rows)
    if findings:
        session.execute(insert(Finding), [_finding_row(run_id, record, observed_at) for record in findings])
    _finish(session, run_id, RunStatus.SUCCEEDED, finished_at, summary, fleet_facts)


def fail_sweep(session: Session, run_id: str, *, finished_at: datetime, summary: Mapping[str, Any]) -> None:
    """Mark a sweep failed (an internal or store error stopped it); it never counts as previous."""
    _finish(session, run_id, RunStatus.FAILED, finished_at, summary, None)


def _finish(  # noqa: PLR0917 (private; every caller passes all of them)
    session: Session,
    run_id: str,
    status: RunStatus,
    finished_at: datetime,
    summary: Mapping[str, Any],
    fleet_facts: Mapping[str, Any] | None,
) -> None:
    values: dict[str, Any] = {"status": status.value, "finished_at": finished_at, "summary": dict(summary)}
    if fleet_facts is not None:
        values["fleet_facts"] = dict(fleet_facts)
    session.execute(update(Run).where(Run.id == run_id).values(**values))


def _finding_row(run_id: str, record: FindingRecord, observed_at: datetime) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _FINDING_COLUMNS}
    row["error_codes"] = list(record.error_codes)
    return {**row, "run_id": run_id, "observed_at": record.observed_at or observed_at}


# --- reading ------------------------------------------------------------------------------------


def get_sweep(session: Session, run_id: str) -> SweepRun:
    """The sweep ``run_id``; InputError when there is no such sweep (the id came from a user)."""
    run = session.get(Run, run_id)
    if run is None or run.kind != RunKind.SWEEP.value:
        raise InputError(f"no sweep with id {run_id!r}", field="--run")
    return SweepRun.from_row(run)


def latest_sweep(session: Session, *, before: SweepRun | None = None) -> SweepRun | None:
    """The newest completed sweep (created before ``before``, when given), or None."""
    query = select(Run).where(Run.kind == RunKind.SWEEP.value, Run.status == RunStatus.SUCCEEDED.value)
    if before is not None:
        query = query.where(Run.created_at < before.created_at, Run.id != before.id)
    run = session.scalars(query.order_by(Run.created_at.desc(), Run.id.desc()).limit(1)).first()
    return None if run is None else SweepRun.from_row(run)


def sweep_hosts(session: Session, run_id: str, *, with_facts: bool = False) -> tuple[HostRecord, ...]:
    """The host results of a sweep, by host name; facts only when asked (they are large)."""
    columns: list[Any] = [
        HostResult.host,
        HostResult.role,
        HostResult.status,
        HostResult.error_kind,
        HostResult.error_message,
        HostResult.started_at,
        HostResult.finished_at,
    ]
    if with_facts:
        columns.append(HostResult.facts)
    rows = session.execute(select(*columns).where(HostResult.run_id == run_id).order_by(HostResult.host))
    return tuple(HostRecord(**{**row._asdict(), "status": HostStatus(row.status)}) for row in rows)


def sweep_findings(session: Session, run_id: str) -> tuple[FindingRecord, ...]:
    """The findings of a sweep, by host, check id and subject."""
    columns = [getattr(Finding, name) for name in (*_FINDING_COLUMNS, "observed_at")]
    query = (
        select(*columns)
        .where(Finding.run_id == run_id)
        .order_by(Finding.host, Finding.check_id, Finding.subject)
    )
    return tuple(
        FindingRecord(**{**row._asdict(), "error_codes": tuple(row.error_codes)})
        for row in session.execute(query)
    )


def fleet_facts_of(session: Session, run_id: str) -> dict[str, Any] | None:
    """The stored fleet-wide facts of a sweep (tenant, CRL fetches), or None."""
    return session.scalar(select(Run.fleet_facts).where(Run.id == run_id))


__all__ = [
    "FindingRecord",
    "HostRecord",
    "SweepRun",
    "complete_sweep",
    "fail_sweep",
    "fleet_facts_of",
    "get_sweep",
    "latest_sweep",
    "start_sweep",
    "sweep_findings",
    "sweep_hosts",
]
