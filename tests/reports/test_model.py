"""The report model, pure: counts, compliance by check, role and site, changes, trend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta
from typing import Any

import pytest

from orchestrator.reports.model import (
    UNASSIGNED_SITE,
    CheckInfo,
    FindingState,
    SweepData,
    SweepReport,
    TrendSample,
    build_sweep_report,
)
from orchestrator.store import RunStatus
from orchestrator.store.sweeps import FindingRecord, HostRecord, SweepRun
from orchestrator.sweep.diff import Coverage, diff_findings
from tests.reports.support import T0, down, finding, ok

CHECKS = (
    CheckInfo("EP-CERT-01", "Device certificate", "high", ("endpoint",), playbook="device-cert-reenroll"),
    CheckInfo("RRAS-AUTH-01", "Root thumbprint", "critical", ("rras",), playbook="rras-root-thumbprint"),
    CheckInfo("INT-PROF-01", "Intune deployment", "medium", (), advice="look at Intune"),
)


def sweep_run(run_id: str = "run-2", **summary: Any) -> SweepRun:
    return SweepRun(
        id=run_id,
        status=RunStatus.SUCCEEDED,
        selector=None,
        parameters={},
        requested_by="admin@adm01",
        created_at=T0,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=1),
        summary={"compliant": False, "complete": True, "notes": ["a note"], "tenant": "collected", **summary},
    )


def data(
    hosts: Sequence[HostRecord],
    findings: Sequence[FindingRecord],
    previous: Sequence[FindingRecord] | None = None,
    *,
    sites: dict[str, str] | None = None,
    trend: tuple[TrendSample, ...] = (),
    first_seen: dict[str, datetime] | None = None,
) -> SweepData:
    collected = [h.host for h in hosts if h.status.value == "ok"]
    diff = diff_findings(
        findings,
        previous,
        coverage=Coverage.of(collected, complete=len(collected) == len(hosts)),
        inventory_hosts=[h.host for h in hosts],
        previous_run="run-1" if previous is not None else None,
    )
    return SweepData(
        run=sweep_run(),
        hosts=tuple(hosts),
        findings=tuple(findings),
        diff=diff,
        first_seen=first_seen or {},
        trend=trend,
        sites=sites or {},
        checks=CHECKS,
        generated_at=T0 + timedelta(hours=1),
    )


@pytest.fixture
def report() -> SweepReport:
    hosts = [
        ok("EP-1"),
        ok("EP-2"),
        ok("EP-3"),
        ok("VPN-1", "rras"),
        down("EP-4"),
        down("EP-5", kind="auth_failed"),
    ]
    earlier = finding("EP-1", "EP-CERT-01", observed_at=T0 - timedelta(days=1))
    previous = [earlier, finding("EP-3", "EP-CERT-01", observed_at=T0 - timedelta(days=1))]
    current = [
        finding("EP-1", "EP-CERT-01", observed_at=T0),
        finding("ep-2", "EP-CERT-01", "other", severity="medium", observed_at=T0),
        finding("ep-2", "EP-ROUTE-01", "route", severity="low", observed_at=T0),
        finding("fleet", "INT-PROF-01", "profile:1", severity="medium", observed_at=T0, playbook=None),
    ]
    return build_sweep_report(
        data(
            hosts,
            current,
            previous,
            sites={"ep-1": "ams", "ep-2": "ams", "vpn-1": "fra", "ep-4": "fra"},
            first_seen={earlier.fingerprint: T0 - timedelta(days=3)},
        )
    )


def test_fleet_summary(report: SweepReport) -> None:
    summary = report.summary
    assert dict(summary.hosts_by_status) == {
        "selected": 6,
        "ok": 4,
        "failed": 1,
        "unreachable": 1,
        "skipped": 0,
    }
    assert (summary.compliant_hosts, summary.hosts_with_findings, summary.not_collected) == (2, 2, 2)
    assert summary.compliance_pct == pytest.approx(33.3)
    assert summary.findings_total == 4
    assert dict(summary.findings_by_severity) == {"critical": 0, "high": 1, "medium": 2, "low": 1, "info": 0}
    assert summary.fleet_wide_findings == 1
    assert report.compliant_hosts == ("EP-3", "VPN-1")
    assert report.run.notes == ("a note",)
    assert report.run.previous_run == "run-1"


def test_findings_carry_role_site_state_and_first_seen(report: SweepReport) -> None:
    by_subject = {(f.host, f.check_id, f.subject): f for f in report.findings}
    still = by_subject[("EP-1", "EP-CERT-01", "device-certificate")]
    assert (still.role, still.site, still.status) == ("endpoint", "ams", FindingState.OPEN)
    assert still.first_seen == T0 - timedelta(days=3)  # from the store's aggregate
    new = by_subject[("ep-2", "EP-CERT-01", "other")]
    assert (new.role, new.site, new.status, new.first_seen) == ("endpoint", "ams", FindingState.NEW, T0)
    fleet = by_subject[("fleet", "INT-PROF-01", "profile:1")]
    assert (fleet.role, fleet.site, fleet.fix) == (None, None, "")
    assert still.fix == "playbook device-cert-reenroll"
    assert [f.severity for f in report.findings] == ["high", "medium", "medium", "low"]


def test_changes_split_new_open_resolved(report: SweepReport) -> None:
    changes = report.changes
    assert [(f.host, f.subject) for f in changes.new] == [
        ("ep-2", "other"),
        ("fleet", "profile:1"),
        ("ep-2", "route"),
    ]
    assert changes.still_open == 1
    assert [(f.host, f.status) for f in changes.resolved] == [("EP-3", FindingState.RESOLVED)]
    assert changes.unverified == ()


def test_compliance_by_check(report: SweepReport) -> None:
    rows = {row.check_id: row for row in report.by_check}
    cert = rows["EP-CERT-01"]
    # three collected endpoints judged, two of them (EP-1, ep-2) with findings
    assert (cert.findings, cert.hosts_affected, cert.hosts_evaluated) == (2, 2, 3)
    assert cert.compliance_pct == pytest.approx(33.3)
    assert cert.severity == "high"
    rras = rows["RRAS-AUTH-01"]
    assert (rras.findings, rras.hosts_evaluated, rras.compliance_pct, rras.passed) == (0, 1, 100.0, True)
    intune = rows["INT-PROF-01"]
    assert (intune.findings, intune.hosts_evaluated, intune.compliance_pct, intune.passed) == (
        1,
        0,
        None,
        False,
    )
    unknown = rows["EP-ROUTE-01"]  # a check id only the findings know (a newer fleetfix wrote it)
    assert (unknown.title, unknown.roles, unknown.hosts_affected) == ("EP-ROUTE-01 title", ("endpoint",), 1)
    assert report.by_check[-1].passed  # failing checks first


def test_compliance_by_role_and_site(report: SweepReport) -> None:
    roles = {row.key: row for row in report.by_role}
    assert (roles["endpoint"].hosts, roles["endpoint"].compliant, roles["endpoint"].not_collected) == (
        5,
        1,
        2,
    )
    assert roles["endpoint"].findings == 3
    assert roles["rras"].compliance_pct == 100.0
    sites = [
        (row.key, row.hosts, row.compliant, row.with_findings, row.not_collected) for row in report.by_site
    ]
    assert sites == [("ams", 2, 0, 2, 0), ("fra", 2, 1, 0, 1), (UNASSIGNED_SITE, 2, 1, 0, 1)]
    assert [h.site for h in report.not_collected] == ["fra", UNASSIGNED_SITE]


def test_hosts_with_findings_worst_first_and_fleet_wide(report: SweepReport) -> None:
    assert [(h.host, h.worst_severity, h.fleet_wide) for h in report.hosts] == [
        ("EP-1", "high", False),
        ("EP-2", "medium", False),  # named as the sweep's host result names it
        ("fleet", "medium", True),
    ]
    assert [h.error_kind for h in report.not_collected] == ["timed_out", "auth_failed"]


def test_the_report_is_immutable(report: SweepReport) -> None:
    with pytest.raises(FrozenInstanceError):
        report.summary = report.summary  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.summary.hosts_by_status["ok"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        report.findings[0].evidence["reason"] = "x"  # type: ignore[index]


def test_trend_takes_this_sweeps_point_from_the_report() -> None:
    samples = (
        TrendSample("run-0", T0 - timedelta(days=2), 10, 1, 2, {"high": 3}),
        TrendSample("run-2", T0, 99, 99, 99, {"high": 99}),  # the store's figures for this sweep
        TrendSample("run-1", T0 - timedelta(days=1), 10, 0, 0, {}),
    )
    built = build_sweep_report(data([ok("EP-1"), down("EP-2")], [finding("EP-1")], trend=samples))
    assert [p.run_id for p in built.trend] == ["run-0", "run-1", "run-2"]
    first, second, last = built.trend
    assert (first.hosts_failing, first.compliance_pct, first.findings_total) == (3, 70.0, 3)
    assert (second.hosts_failing, second.compliance_pct) == (0, 100.0)
    assert (last.hosts_selected, last.hosts_failing, last.compliance_pct) == (2, 2, 0.0)
    assert dict(last.findings_by_severity)["high"] == 1


def test_an_empty_fleet() -> None:
    built = build_sweep_report(data([], []))
    assert built.summary.hosts_selected == 0
    assert built.summary.compliance_pct is None
    assert (built.findings, built.hosts, built.not_collected, built.by_role, built.by_site) == (
        (),
        (),
        (),
        (),
        (),
    )
    assert all(row.passed and row.compliance_pct is None for row in built.by_check)
    assert built.changes.previous_run is None


def test_every_host_unreachable() -> None:
    built = build_sweep_report(data([down(f"EP-{i}") for i in range(5)], []))
    assert (built.summary.not_collected, built.summary.compliant_hosts, built.summary.compliance_pct) == (
        5,
        0,
        0.0,
    )
    assert [row.compliance_pct for row in built.by_role] == [0.0]
    cert = next(row for row in built.by_check if row.check_id == "EP-CERT-01")
    assert (cert.hosts_evaluated, cert.compliance_pct) == (0, None)  # nothing could be judged
