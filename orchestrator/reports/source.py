"""What reports read from the store, in a fixed number of queries whatever the fleet's size.

A sweep report of 10,000 hosts is: the run, its host results (streamed, without facts), its
findings (streamed), the previous sweep's findings and hosts for the diff, one aggregate for
``first_seen``, and three aggregates for the trend over the last N sweeps -- never a query per
host or per finding.  The metrics read four aggregates.  Everything returned is an immutable
value; the building itself is :func:`orchestrator.reports.model.build_sweep_report` (pure).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.errors import InputError
from orchestrator.reports.metrics import MetricsData, SweepMetrics
from orchestrator.reports.model import SITE_TAG, CheckInfo, SweepData, TrendSample
from orchestrator.store.models import Finding, HostResult, HostStatus, Run, RunKind, RunStatus
from orchestrator.store.sweeps import FindingRecord, HostRecord, SweepRun, get_sweep, latest_sweep
from orchestrator.sweep.history import COMPLETE_KEY, diff_against_previous

if TYPE_CHECKING:
    from orchestrator.inventory import Host

STREAM_ROWS = 2000
"""Rows fetched at a time from the database cursor (``yield_per``)."""

_FINDING_FIELDS = tuple(FindingRecord.__dataclass_fields__)
_HOST_FIELDS = ("host", "role", "status", "error_kind", "error_message", "started_at", "finished_at")


def report_sweep(session: Session, run_id: str | None) -> SweepRun:
    """The sweep to report: ``run_id``, or the newest completed one.  InputError (``--run``) when
    there is none, the id names no sweep, or the sweep did not complete."""
    run = get_sweep(session, run_id) if run_id is not None else latest_sweep(session)
    if run is None:
        raise InputError("there is no completed sweep yet: run `fleetfix sweep` first", field="--run")
    if run.status is not RunStatus.SUCCEEDED:
        raise InputError(
            f"sweep {run.id} did not complete (status {run.status.value}): it has no results to report",
            field="--run",
        )
    return run


def load_sweep_data(
    session: Session,
    run: SweepRun,
    *,
    trend: int,
    sites: Mapping[str, str],
    checks: Sequence[CheckInfo],
    generated_at: datetime,
    inventory_loaded: bool = True,
) -> SweepData:
    """Everything the report of ``run`` needs, with the trend over the last ``trend`` sweeps."""
    hosts = stream_hosts(session, run.id)
    findings = stream_findings(session, run.id)
    complete = bool((run.summary or {}).get(COMPLETE_KEY))
    diff = diff_against_previous(session, run, findings, hosts, complete=complete)
    return SweepData(
        run=run,
        hosts=hosts,
        findings=findings,
        diff=diff,
        first_seen=first_seen(session, run),
        trend=trend_samples(session, run, trend),
        sites=sites,
        checks=tuple(checks),
        generated_at=generated_at,
        inventory_loaded=inventory_loaded,
    )


def stream_hosts(session: Session, run_id: str) -> tuple[HostRecord, ...]:
    """The host results of a sweep without their facts, read in chunks."""
    columns = [getattr(HostResult, name) for name in _HOST_FIELDS]
    query = (
        select(*columns)
        .where(HostResult.run_id == run_id)
        .order_by(HostResult.host)
        .execution_options(yield_per=STREAM_ROWS)
    )
    return tuple(
        HostRecord(**{**row._asdict(), "status": HostStatus(row.status)}) for row in session.execute(query)
    )


def stream_findings(session: Session, run_id: str) -> tuple[FindingRecord, ...]:
    """The findings of a sweep, read in chunks."""
    columns = [getattr(Finding, name) for name in _FINDING_FIELDS]
    query = (
        select(*columns)
        .where(Finding.run_id == run_id)
        .order_by(Finding.host, Finding.check_id, Finding.subject)
        .execution_options(yield_per=STREAM_ROWS)
    )
    return tuple(
        FindingRecord(**{**row._asdict(), "error_codes": tuple(row.error_codes or ())})
        for row in session.execute(query)
    )


def _completed_sweeps() -> Any:
    return select(Run.id).where(Run.kind == RunKind.SWEEP.value, Run.status == RunStatus.SUCCEEDED.value)


def first_seen(session: Session, run: SweepRun) -> dict[str, datetime]:
    """Fingerprint -> the earliest ``observed_at`` in a completed sweep up to ``run``, for every
    finding of ``run``: one aggregate over the fingerprint index."""
    current = select(Finding.fingerprint).where(Finding.run_id == run.id)
    earlier = _completed_sweeps().where(Run.created_at <= run.created_at)
    query = (
        select(Finding.fingerprint, func.min(Finding.observed_at))
        .where(Finding.fingerprint.in_(current), Finding.run_id.in_(earlier))
        .group_by(Finding.fingerprint)
    )
    return {fingerprint: at for fingerprint, at in session.execute(query) if at is not None}


def trend_samples(session: Session, run: SweepRun, count: int) -> tuple[TrendSample, ...]:
    """The last ``count`` completed sweeps up to ``run`` (itself included), oldest first."""
    if count < 1:
        return ()
    runs = session.execute(
        select(Run.id, Run.created_at, Run.finished_at)
        .where(
            Run.kind == RunKind.SWEEP.value,
            Run.status == RunStatus.SUCCEEDED.value,
            Run.created_at <= run.created_at,
        )
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(count)
    ).all()
    ids = [row.id for row in runs]
    if run.id not in ids:  # the run itself always belongs to its trend
        ids = [run.id, *ids[: count - 1]]
        runs = [r for r in runs if r.id in ids]
    statuses = host_status_counts(session, ids)
    flagged = hosts_with_findings(session, ids)
    severities = findings_by_severity(session, ids)
    when = {row.id: row.finished_at or row.created_at for row in runs}
    when.setdefault(run.id, run.finished_at or run.created_at)
    samples = []
    for run_id in ids:
        counts = statuses.get(run_id, {})
        samples.append(
            TrendSample(
                run_id=run_id,
                at=when[run_id],
                hosts_selected=sum(counts.values()),
                hosts_not_collected=sum(n for s, n in counts.items() if s != HostStatus.OK.value),
                hosts_with_findings=flagged.get(run_id, 0),
                findings_by_severity=severities.get(run_id, {}),
            )
        )
    return tuple(sorted(samples, key=lambda s: (s.at, s.run_id)))


def host_status_counts(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """run id -> host status -> hosts (one GROUP BY)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if run_ids:
        query = (
            select(HostResult.run_id, HostResult.status, func.count())
            .where(HostResult.run_id.in_(run_ids))
            .group_by(HostResult.run_id, HostResult.status)
        )
        for run_id, status, number in session.execute(query):
            counts[run_id][status] = int(number)
    return dict(counts)


def hosts_with_findings(session: Session, run_ids: Sequence[str]) -> dict[str, int]:
    """run id -> collected hosts that a finding of that run names (one joined GROUP BY over the
    ``(run_id, host)`` unique index; findings carry the host name as the sweep stored it)."""
    if not run_ids:
        return {}
    query = (
        select(Finding.run_id, func.count(func.distinct(Finding.host)))
        .join(HostResult, (HostResult.run_id == Finding.run_id) & (HostResult.host == Finding.host))
        .where(Finding.run_id.in_(run_ids), HostResult.status == HostStatus.OK.value)
        .group_by(Finding.run_id)
    )
    return {run_id: int(number) for run_id, number in session.execute(query)}


def findings_by_severity(session: Session, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """run id -> severity -> findings (one GROUP BY)."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if run_ids:
        query = (
            select(Finding.run_id, Finding.severity, func.count())
            .where(Finding.run_id.in_(run_ids))
            .group_by(Finding.run_id, Finding.severity)
        )
        for run_id, severity, number in session.execute(query):
            counts[run_id][severity] = int(number)
    return dict(counts)


# --- metrics ------------------------------------------------------------------------------------


def load_metrics_data(session: Session, *, checks: Sequence[CheckInfo] = ()) -> MetricsData:
    """Runs by kind and status, and the newest completed sweep's figures (four aggregates)."""
    runs = {
        (kind, status): int(number)
        for kind, status, number in session.execute(
            select(Run.kind, Run.status, func.count()).group_by(Run.kind, Run.status)
        )
    }
    latest = latest_sweep(session)
    return MetricsData(runs=runs, sweep=None if latest is None else _sweep_metrics(session, latest, checks))


def _sweep_metrics(session: Session, run: SweepRun, checks: Sequence[CheckInfo]) -> SweepMetrics:
    statuses = host_status_counts(session, [run.id]).get(run.id, {})
    findings = {
        (check_id, severity): int(number)
        for check_id, severity, number in session.execute(
            select(Finding.check_id, Finding.severity, func.count())
            .where(Finding.run_id == run.id)
            .group_by(Finding.check_id, Finding.severity)
        )
    }
    summary = run.summary or {}
    elapsed = summary.get("elapsed_s")
    duration = float(elapsed) if isinstance(elapsed, int | float) else None
    if duration is None and run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    changes = summary.get("findings")
    ok = statuses.get(HostStatus.OK.value, 0)
    return SweepMetrics(
        run_id=run.id,
        finished_at=run.finished_at or run.created_at,
        duration_s=duration,
        compliant=bool(summary.get("compliant")),
        hosts_by_status={status.value: statuses.get(status.value, 0) for status in HostStatus},
        compliant_hosts=ok - hosts_with_findings(session, [run.id]).get(run.id, 0),
        findings=findings,
        checks=tuple((check.id, check.severity) for check in checks),
        changes={
            key: int(changes[key])
            for key in ("new", "still_open", "resolved", "unverified")
            if isinstance(changes, dict) and isinstance(changes.get(key), int)
        },
    )


# --- outside the store --------------------------------------------------------------------------


def catalogue_checks() -> tuple[CheckInfo, ...]:
    """The shipped check catalogue as the report needs it."""
    from orchestrator.checks import REGISTRY  # noqa: PLC0415 (the catalogue loads on first use)

    return tuple(
        CheckInfo(
            id=check.spec.id,
            title=check.spec.title,
            severity=check.spec.severity.value,
            roles=tuple(role.value for role in check.spec.roles),
            playbook=check.spec.playbook,
            advice=check.spec.advice,
        )
        for check in REGISTRY
    )


def inventory_sites(hosts: Iterable[Host]) -> dict[str, str]:
    """Case-folded host name -> its ``site`` tag, for the hosts that have one."""
    sites = {}
    for host in hosts:
        site = host.tag(SITE_TAG)
        if site:
            sites[host.name.casefold()] = site
    return sites


__all__ = [
    "STREAM_ROWS",
    "catalogue_checks",
    "findings_by_severity",
    "first_seen",
    "host_status_counts",
    "hosts_with_findings",
    "inventory_sites",
    "load_metrics_data",
    "load_sweep_data",
    "report_sweep",
    "stream_findings",
    "stream_hosts",
    "trend_samples",
]
