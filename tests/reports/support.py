"""Stored sweeps for report tests, written through the store's sweep repository (no lab needed).

:func:`record_sweep` writes one completed sweep as the sweep service would (run, host results,
findings, summary); :func:`synthetic_fleet` makes a fleet of any size with a fixed mix of healthy,
failing and unreachable hosts, so that the 10,000-host test and the benchmark share one shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.store import HostStatus, Store
from orchestrator.store.sweeps import FindingRecord, HostRecord, complete_sweep, start_sweep
from orchestrator.sweep.findings import by_severity
from orchestrator.sweep.history import COMPLETE_KEY

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def fingerprint(host: str, check_id: str, subject: str) -> str:
    key = "\x1f".join((host.casefold(), check_id, subject))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def finding(
    host: str,
    check_id: str = "EP-CERT-01",
    subject: str = "device-certificate",
    *,
    severity: str = "high",
    **fields: Any,
) -> FindingRecord:
    values: dict[str, Any] = {
        "host": host,
        "check_id": check_id,
        "severity": severity,
        "title": f"{check_id} title",
        "message": f"{check_id} fired on {host}",
        "subject": subject,
        "reason": "missing",
        "fingerprint": fingerprint(host, check_id, subject),
        "evidence": {"reason": "missing"},
        "error_codes": ("13806",),
        "playbook": "device-cert-reenroll",
        "advice": None,
        **fields,
    }
    return FindingRecord(**values)


def ok(host: str, role: str = "endpoint") -> HostRecord:
    return HostRecord(host=host, role=role, status=HostStatus.OK, started_at=T0, finished_at=T0)


def down(
    host: str, role: str = "endpoint", kind: str = "timed_out", message: str = "no answer"
) -> HostRecord:
    status = HostStatus.UNREACHABLE if kind in {"unreachable", "timed_out"} else HostStatus.FAILED
    return HostRecord(host=host, role=role, status=status, error_kind=kind, error_message=message)


def record_sweep(
    store: Store,
    at: datetime,
    hosts: Sequence[HostRecord],
    findings: Sequence[FindingRecord],
    *,
    complete: bool | None = None,
    notes: Sequence[str] = (),
    selector: str | None = None,
) -> str:
    """One completed sweep, as :func:`orchestrator.sweep.service.run_sweep` stores it."""
    collected = sum(1 for h in hosts if h.status is HostStatus.OK)
    complete = collected == len(hosts) if complete is None else complete
    summary = {
        "hosts": {
            "selected": len(hosts),
            "ok": collected,
            "unreachable": sum(1 for h in hosts if h.status is HostStatus.UNREACHABLE),
            "failed": sum(1 for h in hosts if h.status is HostStatus.FAILED),
        },
        "findings": {"total": len(findings), "by_severity": by_severity(findings)},
        "tenant": "not_configured",
        COMPLETE_KEY: complete,
        "compliant": not findings and complete,
        "notes": list(notes),
        "elapsed_s": 12.5,
    }
    with store.transaction() as session:
        run = start_sweep(
            session, requested_by="admin@adm01", selector=selector, parameters={}, started_at=at
        )
    with store.transaction() as session:
        complete_sweep(
            session,
            run.id,
            hosts=hosts,
            findings=findings,
            fleet_facts={"tenant": None, "crls": []},
            summary=summary,
            finished_at=at + timedelta(minutes=1),
            observed_at=at,
        )
    return run.id


@dataclass(frozen=True)
class Fleet:
    hosts: tuple[HostRecord, ...]
    findings: tuple[FindingRecord, ...]


SITES = ("ams", "fra", "lon", "nyc")
CHECKS = (
    ("EP-CERT-01", "device-certificate", "high"),
    ("EP-ROUTE-01", "route:10.0.0.0/8", "medium"),
    ("EP-PROF-01", "profile:Contoso VPN", "high"),
    ("EP-OS-01", "os-build", "low"),
)


def synthetic_fleet(size: int, *, seed: int = 0) -> Fleet:
    """``size`` hosts: 2 % unreachable, 1 % failed, every third collected endpoint with one to
    three findings; RRAS and CA hosts every 500th and 2500th.  ``seed`` shifts which hosts have
    which findings, so two sweeps differ (new, resolved)."""
    hosts: list[HostRecord] = []
    findings: list[FindingRecord] = []
    for index in range(size):
        role = "ca" if index % 2500 == 7 else "rras" if index % 500 == 3 else "endpoint"
        name = f"{role[:2].upper()}-{index:05d}"
        if index % 50 == 1:
            hosts.append(down(name, role, "timed_out", f"{name}: no answer from https://{name}:5986 in time"))
            continue
        if index % 100 == 2:
            hosts.append(down(name, role, "auth_failed", "the login was refused"))
            continue
        hosts.append(ok(name, role))
        if role == "endpoint" and (index + seed) % 3 == 0:
            for check_id, subject, severity in CHECKS[: 1 + (index // 3) % 3]:
                findings.append(
                    finding(
                        name,
                        check_id,
                        subject,
                        severity=severity,
                        evidence={
                            "reason": "missing",
                            "thumbprints": [f"{index:040X}"],
                            "store": "LocalMachine\\My",
                        },
                    )
                )
    return Fleet(tuple(hosts), tuple(findings))


def synthetic_sites(fleet: Fleet) -> dict[str, str]:
    """Sites for four hosts in five; the fifth stays unassigned."""
    return {
        host.host.casefold(): SITES[index % len(SITES)]
        for index, host in enumerate(fleet.hosts)
        if index % 5 != 4
    }
