"""The sweep report as a value: :func:`build_sweep_report` turns stored sweep data into a frozen
:class:`SweepReport` that every renderer (HTML, CSV, JSON) reads.  Pure: no store, no clock.

Vocabulary (docs/reports.md):

* a host is **collected** when the sweep got its facts (status ``ok``), **not collected** otherwise
  (``unreachable``, ``failed``, ``skipped``);
* a host is **compliant** when it was collected and no finding names it; compliance percentages
  are compliant hosts over *all* hosts of the group, so a host that could not be judged counts
  against compliance rather than vanishing from it;
* a check's compliance is over the collected hosts of the roles it reads; checks that read the
  Intune tenant or CRL servers only (no role) pass or fail as a whole;
* a finding is **new** (not in the previous sweep) or **open** (reported before and still there);
  previous findings gone from hosts this sweep collected are **resolved**; those it could not see
  again are **unverified** (still believed open);
* a host's **site** is its inventory tag ``site`` (``unassigned`` without one).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from orchestrator.checks.model import FrozenJson, Severity, freeze
from orchestrator.store.models import HostStatus
from orchestrator.store.sweeps import FindingRecord, HostRecord, SweepRun
from orchestrator.sweep.diff import FindingsDiff
from orchestrator.sweep.findings import severity_rank, sort_key

REPORT_SCHEMA_VERSION = 1
"""Version of the report's data shape: the ``schema_version`` of the CSV and JSON exports."""

UNASSIGNED_SITE = "unassigned"
SITE_TAG = "site"
SEVERITIES: tuple[str, ...] = tuple(severity.value for severity in Severity)


class FindingState(StrEnum):
    """A finding's state in a report (exports: ``status``)."""

    NEW = "new"
    OPEN = "open"
    RESOLVED = "resolved"
    UNVERIFIED = "unverified"


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckInfo:
    """What the report needs to know of a check of the catalogue."""

    id: str
    title: str
    severity: str
    roles: tuple[str, ...]
    playbook: str | None = None
    advice: str | None = None


@dataclass(frozen=True)
class TrendSample:
    """One earlier sweep in numbers, as the store's aggregate queries give it."""

    run_id: str
    at: datetime
    hosts_selected: int
    hosts_not_collected: int
    hosts_with_findings: int
    """collected hosts that at least one finding names"""
    findings_by_severity: Mapping[str, int]


@dataclass(frozen=True)
class SweepData:
    """Everything :func:`build_sweep_report` reads (:mod:`orchestrator.reports.source` loads it)."""

    run: SweepRun
    hosts: tuple[HostRecord, ...]
    findings: tuple[FindingRecord, ...]
    diff: FindingsDiff[FindingRecord]
    first_seen: Mapping[str, datetime]
    """fingerprint -> when a completed sweep first reported it (``open`` findings)"""
    trend: tuple[TrendSample, ...]
    """the sweeps of the trend, oldest first, this one included"""
    sites: Mapping[str, str]
    """case-folded host name -> site (inventory tag ``site``)"""
    checks: tuple[CheckInfo, ...]
    generated_at: datetime
    inventory_loaded: bool = True
    """False when no inventory was available: every host's site is ``unassigned``"""


# --- the report ---------------------------------------------------------------------------------


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(counts))


@dataclass(frozen=True)
class ReportFinding:
    """A finding as reports show it: the stored finding plus where it sits and since when."""

    host: str
    role: str | None
    """None for a finding that belongs to no host of the sweep (fleet-wide: ``fleet``, ``intune``)"""
    site: str | None
    check_id: str
    severity: str
    title: str
    message: str
    subject: str
    reason: str | None
    evidence: Mapping[str, FrozenJson]
    error_codes: tuple[str, ...]
    playbook: str | None
    advice: str | None
    fingerprint: str
    status: FindingState
    observed_at: datetime | None
    first_seen: datetime | None

    @property
    def fix(self) -> str:
        """The suggested playbook, else the advice, else ``""``."""
        return f"playbook {self.playbook}" if self.playbook else (self.advice or "")


@dataclass(frozen=True)
class HostDetail:
    """One host with what the sweep found on it; ``status`` None for a fleet-wide subject."""

    host: str
    role: str | None
    site: str | None
    status: str | None
    error_kind: str | None
    error_message: str | None
    findings: tuple[ReportFinding, ...] = ()

    @property
    def worst_severity(self) -> str | None:
        return min((f.severity for f in self.findings), key=severity_rank, default=None)

    @property
    def fleet_wide(self) -> bool:
        return self.status is None


@dataclass(frozen=True)
class GroupCompliance:
    """Compliance of the hosts of one role or one site."""

    key: str
    hosts: int
    compliant: int
    with_findings: int
    not_collected: int
    findings: int

    @property
    def compliance_pct(self) -> float | None:
        return _pct(self.compliant, self.hosts)


@dataclass(frozen=True)
class CheckCompliance:
    """One check of the catalogue (or a check id only the findings know) across the fleet."""

    check_id: str
    title: str
    severity: str
    """the worst severity it reported, else the catalogue's"""
    roles: tuple[str, ...]
    findings: int
    hosts_affected: int
    hosts_evaluated: int
    """collected hosts of the roles the check reads (0 for tenant- or CRL-only checks)"""
    playbook: str | None
    advice: str | None

    @property
    def compliance_pct(self) -> float | None:
        if not self.hosts_evaluated:
            return None
        return _pct(self.hosts_evaluated - self.hosts_affected, self.hosts_evaluated)

    @property
    def passed(self) -> bool:
        return self.findings == 0


@dataclass(frozen=True)
class TrendPoint:
    run_id: str
    at: datetime
    findings_by_severity: Mapping[str, int]
    hosts_selected: int
    hosts_failing: int
    """not collected, or named by a finding"""

    @property
    def findings_total(self) -> int:
        return sum(self.findings_by_severity.values())

    @property
    def compliance_pct(self) -> float | None:
        return _pct(self.hosts_selected - self.hosts_failing, self.hosts_selected)


@dataclass(frozen=True)
class Changes:
    """This sweep against the previous one (``previous_run`` None: the first sweep, all new)."""

    previous_run: str | None
    new: tuple[ReportFinding, ...]
    still_open: int
    resolved: tuple[ReportFinding, ...]
    unverified: tuple[ReportFinding, ...]


@dataclass(frozen=True)
class FleetSummary:
    hosts_by_status: Mapping[str, int]
    """every host status, zeros included: ``selected``, ``ok``, ``unreachable``, ``failed``, ``skipped``"""
    compliant_hosts: int
    hosts_with_findings: int
    not_collected: int
    findings_total: int
    findings_by_severity: Mapping[str, int]
    fleet_wide_findings: int
    compliant: bool
    """the sweep's verdict: no finding, every host collected, the tenant read"""

    @property
    def hosts_selected(self) -> int:
        return self.hosts_by_status["selected"]

    @property
    def compliance_pct(self) -> float | None:
        return _pct(self.compliant_hosts, self.hosts_selected)


@dataclass(frozen=True)
class RunInfo:
    id: str
    status: str
    selector: str | None
    requested_by: str
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_s: float | None
    previous_run: str | None
    complete: bool
    tenant: str
    notes: tuple[str, ...]


@dataclass(frozen=True)
class SweepReport:
    """A stored sweep as a report; every renderer reads this and nothing else."""

    schema_version: int
    generated_at: datetime
    run: RunInfo
    summary: FleetSummary
    by_check: tuple[CheckCompliance, ...]
    by_role: tuple[GroupCompliance, ...]
    by_site: tuple[GroupCompliance, ...]
    changes: Changes
    trend: tuple[TrendPoint, ...]
    findings: tuple[ReportFinding, ...]
    """every finding of the sweep, most severe first, then by host, check and subject"""
    hosts: tuple[HostDetail, ...]
    """hosts (and fleet-wide subjects) with findings, the worst first"""
    not_collected: tuple[HostDetail, ...]
    compliant_hosts: tuple[str, ...]
    inventory_loaded: bool = field(default=True)


def _pct(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(100.0 * part / whole, 1)


# --- building -----------------------------------------------------------------------------------


def build_sweep_report(data: SweepData) -> SweepReport:
    """The report of one stored sweep (see the module docstring for the vocabulary)."""
    hosts = {record.host.casefold(): record for record in data.hosts}
    states = _states(data.diff)
    findings = tuple(
        _report_finding(record, hosts, data, states.get(record.fingerprint, FindingState.NEW))
        for record in sorted(data.findings, key=sort_key)
    )
    named = {f.host.casefold() for f in findings if f.host.casefold() in hosts}
    collected = [record for record in data.hosts if record.status is HostStatus.OK]
    compliant = sorted(
        (record.host for record in collected if record.host.casefold() not in named), key=str.casefold
    )
    not_collected = tuple(
        _host_detail(record, data.sites, ())
        for record in sorted(data.hosts, key=lambda r: r.host.casefold())
        if record.status is not HostStatus.OK
    )
    summary = _summary(data, findings, hosts, named, len(compliant))
    return SweepReport(
        schema_version=REPORT_SCHEMA_VERSION,
        generated_at=data.generated_at,
        run=_run_info(data.run, data.diff),
        summary=summary,
        by_check=_by_check(data.checks, findings, collected),
        by_role=_by_group(data.hosts, findings, lambda record: record.role),
        by_site=_by_group(data.hosts, findings, lambda record: _site(record.host, data.sites)),
        changes=_changes(data, states, findings, hosts),
        trend=_trend(data.trend, data.run.id, summary),
        findings=findings,
        hosts=_hosts_with_findings(findings, hosts, data.sites),
        not_collected=not_collected,
        compliant_hosts=tuple(compliant),
        inventory_loaded=data.inventory_loaded,
    )


def _states(diff: FindingsDiff[FindingRecord]) -> dict[str, FindingState]:
    states = {f.fingerprint: FindingState.NEW for f in diff.new}
    states.update((f.fingerprint, FindingState.OPEN) for f in diff.still_open)
    return states


def _site(host: str, sites: Mapping[str, str]) -> str:
    return sites.get(host.casefold()) or UNASSIGNED_SITE


def _report_finding(
    record: FindingRecord,
    hosts: Mapping[str, HostRecord],
    data: SweepData,
    state: FindingState,
) -> ReportFinding:
    key = record.host.casefold()
    host = hosts.get(key)
    site = _site(record.host, data.sites) if host is not None or key in data.sites else None
    first_seen = {
        FindingState.NEW: record.observed_at,
        FindingState.OPEN: data.first_seen.get(record.fingerprint, record.observed_at),
    }.get(state)  # resolved and unverified findings carry the previous sweep's observed_at only
    frozen = freeze(record.evidence)
    return ReportFinding(
        host=record.host,
        role=host.role if host is not None else None,
        site=site,
        check_id=record.check_id,
        severity=record.severity,
        title=record.title,
        message=record.message,
        subject=record.subject,
        reason=record.reason,
        evidence=frozen if isinstance(frozen, Mapping) else MappingProxyType({"value": frozen}),
        error_codes=tuple(str(code) for code in record.error_codes),
        playbook=record.playbook,
        advice=record.advice,
        fingerprint=record.fingerprint,
        status=state,
        observed_at=record.observed_at,
        first_seen=first_seen,
    )


def _host_detail(
    record: HostRecord, sites: Mapping[str, str], findings: tuple[ReportFinding, ...]
) -> HostDetail:
    return HostDetail(
        host=record.host,
        role=record.role,
        site=_site(record.host, sites),
        status=record.status.value,
        error_kind=record.error_kind,
        error_message=record.error_message,
        findings=findings,
    )


def _summary(
    data: SweepData,
    findings: Sequence[ReportFinding],
    hosts: Mapping[str, HostRecord],
    named: set[str],
    compliant: int,
) -> FleetSummary:
    statuses = Counter(record.status.value for record in data.hosts)
    by_status = {"selected": len(data.hosts), **{s.value: statuses.get(s.value, 0) for s in HostStatus}}
    severities = Counter(f.severity for f in findings)
    summary = data.run.summary or {}
    return FleetSummary(
        hosts_by_status=_frozen_counts(by_status),
        compliant_hosts=compliant,
        hosts_with_findings=len(named),
        not_collected=len(data.hosts) - by_status[HostStatus.OK.value],
        findings_total=len(findings),
        findings_by_severity=_frozen_counts(_severity_counts(severities)),
        fleet_wide_findings=sum(1 for f in findings if f.host.casefold() not in hosts),
        compliant=bool(summary.get("compliant", not findings and compliant == len(data.hosts))),
    )


def _severity_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """Every known severity (zeros included, critical first), then any unknown one."""
    ordered = {severity: counts.get(severity, 0) for severity in SEVERITIES}
    ordered.update((key, value) for key, value in sorted(counts.items()) if key not in ordered)
    return ordered


def _run_info(run: SweepRun, diff: FindingsDiff[FindingRecord]) -> RunInfo:
    summary = run.summary or {}
    elapsed = summary.get("elapsed_s")
    notes = summary.get("notes")
    return RunInfo(
        id=run.id,
        status=run.status.value,
        selector=run.selector,
        requested_by=run.requested_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        elapsed_s=float(elapsed) if isinstance(elapsed, int | float) else None,
        previous_run=diff.previous_run,
        complete=bool(summary.get("complete")),
        tenant=str(summary.get("tenant") or "unknown"),
        notes=tuple(str(note) for note in notes) if isinstance(notes, list) else (),
    )


def _by_check(
    checks: Sequence[CheckInfo], findings: Sequence[ReportFinding], collected: Sequence[HostRecord]
) -> tuple[CheckCompliance, ...]:
    per_check: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in findings:
        per_check[finding.check_id].append(finding)
    roles_collected = Counter(record.role for record in collected)
    collected_names = {record.host.casefold() for record in collected}
    known = {check.id: check for check in checks}
    unknown = [check_id for check_id in sorted(per_check) if check_id not in known]
    rows = []
    for check_id in [*known, *unknown]:
        spec = known.get(check_id)
        found = per_check.get(check_id, [])
        first = found[0] if found else None
        roles = spec.roles if spec else tuple(sorted({f.role for f in found if f.role}))
        affected = {
            f.host.casefold() for f in found if f.role in roles and f.host.casefold() in collected_names
        }
        rows.append(
            CheckCompliance(
                check_id=check_id,
                title=spec.title if spec else (first.title if first else ""),
                severity=min((f.severity for f in found), key=severity_rank, default=None)
                or (spec.severity if spec else "info"),
                roles=roles,
                findings=len(found),
                hosts_affected=len(affected),
                hosts_evaluated=sum(roles_collected.get(role, 0) for role in roles),
                playbook=spec.playbook if spec else (first.playbook if first else None),
                advice=spec.advice if spec else (first.advice if first else None),
            )
        )
    # failing checks first (most severe, most hosts), then passing ones by id
    return tuple(
        sorted(rows, key=lambda r: (r.passed, severity_rank(r.severity), -r.hosts_affected, r.check_id))
    )


def _by_group(
    hosts: Sequence[HostRecord], findings: Sequence[ReportFinding], key_of: Callable[[HostRecord], str]
) -> tuple[GroupCompliance, ...]:
    per_host = Counter(f.host.casefold() for f in findings)
    groups: dict[str, list[HostRecord]] = defaultdict(list)
    for record in hosts:
        groups[key_of(record)].append(record)
    rows = []
    for key, members in groups.items():
        ok = [r for r in members if r.status is HostStatus.OK]
        flagged = sum(1 for r in ok if per_host.get(r.host.casefold()))
        rows.append(
            GroupCompliance(
                key=key,
                hosts=len(members),
                compliant=len(ok) - flagged,
                with_findings=flagged,
                not_collected=len(members) - len(ok),
                findings=sum(per_host.get(r.host.casefold(), 0) for r in members),
            )
        )
    return tuple(sorted(rows, key=lambda row: (row.key == UNASSIGNED_SITE, row.key.casefold())))


def _changes(
    data: SweepData,
    states: Mapping[str, FindingState],
    findings: Sequence[ReportFinding],
    hosts: Mapping[str, HostRecord],
) -> Changes:
    def gone(records: Iterable[FindingRecord], state: FindingState) -> tuple[ReportFinding, ...]:
        return tuple(_report_finding(r, hosts, data, state) for r in sorted(records, key=sort_key))

    return Changes(
        previous_run=data.diff.previous_run,
        new=tuple(f for f in findings if f.status is FindingState.NEW),
        still_open=sum(1 for state in states.values() if state is FindingState.OPEN),
        resolved=gone(data.diff.resolved, FindingState.RESOLVED),
        unverified=gone(data.diff.unverified, FindingState.UNVERIFIED),
    )


def _trend(samples: Sequence[TrendSample], run_id: str, summary: FleetSummary) -> tuple[TrendPoint, ...]:
    """The trend's points; this sweep's own point is the report's figures, so both always agree."""
    points = []
    for sample in sorted(samples, key=lambda s: (s.at, s.run_id)):
        if sample.run_id == run_id:
            point = TrendPoint(
                run_id=run_id,
                at=sample.at,
                findings_by_severity=summary.findings_by_severity,
                hosts_selected=summary.hosts_selected,
                hosts_failing=summary.hosts_selected - summary.compliant_hosts,
            )
        else:
            point = TrendPoint(
                run_id=sample.run_id,
                at=sample.at,
                findings_by_severity=_frozen_counts(_severity_counts(sample.findings_by_severity)),
                hosts_selected=sample.hosts_selected,
                hosts_failing=min(
                    sample.hosts_selected, sample.hosts_not_collected + sample.hosts_with_findings
                ),
            )
        points.append(point)
    return tuple(points)


def _hosts_with_findings(
    findings: Sequence[ReportFinding], hosts: Mapping[str, HostRecord], sites: Mapping[str, str]
) -> tuple[HostDetail, ...]:
    grouped: dict[str, list[ReportFinding]] = defaultdict(list)
    for finding in findings:
        grouped[finding.host.casefold()].append(finding)
    details = []
    for key, found in grouped.items():
        record = hosts.get(key)
        if record is not None:
            details.append(_host_detail(record, sites, tuple(found)))
        else:
            first = found[0]
            details.append(HostDetail(first.host, None, first.site, None, None, None, tuple(found)))
    return tuple(
        sorted(details, key=lambda d: (severity_rank(d.worst_severity or "info"), d.host.casefold()))
    )


__all__ = [
    "REPORT_SCHEMA_VERSION",
    "SEVERITIES",
    "SITE_TAG",
    "UNASSIGNED_SITE",
    "Changes",
    "CheckCompliance",
    "CheckInfo",
    "FindingState",
    "FleetSummary",
    "GroupCompliance",
    "HostDetail",
    "ReportFinding",
    "RunInfo",
    "SweepData",
    "SweepReport",
    "TrendPoint",
    "TrendSample",
    "build_sweep_report",
]
