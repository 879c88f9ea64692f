"""What a sweep amounts to, as counts and notes (``runs.summary``, the audit entry, the report).  Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.facts.fleet import CollectionError, CrlFetch
from orchestrator.facts.tenant import TenantFacts
from orchestrator.store.models import HostStatus
from orchestrator.store.sweeps import FindingRecord, HostRecord
from orchestrator.sweep.diff import FindingsDiff
from orchestrator.sweep.findings import by_severity
from orchestrator.sweep.history import COMPLETE_KEY

NOT_CONFIGURED_NOTE = (
    "Intune is not configured ([graph] in fleetfix.toml): no tenant facts, the Intune checks judged nothing"
)


@dataclass(frozen=True)
class TenantOutcome:
    """The tenant's facts, or why there are none (``configured`` False: Graph is not set up)."""

    configured: bool
    facts: TenantFacts | None = None
    error: CollectionError | None = None

    @property
    def status(self) -> str:
        if not self.configured:
            return "not_configured"
        return "failed" if self.error is not None else "collected"


def host_counts(hosts: Sequence[HostRecord]) -> dict[str, int]:
    counts = Counter(record.status for record in hosts)
    return {"selected": len(hosts), **{status.value: counts.get(status, 0) for status in _HOST_STATUSES}}


_HOST_STATUSES = (HostStatus.OK, HostStatus.UNREACHABLE, HostStatus.FAILED)


def notes(hosts: Sequence[HostRecord], tenant: TenantOutcome, crls: Sequence[CrlFetch]) -> list[str]:
    """What a reader of the report should know beyond the findings."""
    found: list[str] = []
    if not hosts:
        found.append("no host was selected")
    if not tenant.configured:
        found.append(NOT_CONFIGURED_NOTE)
    elif tenant.error is not None:
        found.append(f"Intune could not be read ({tenant.error.kind}): {tenant.error.message}")
    failed = [fetch for fetch in crls if fetch.error is not None]
    if failed:
        found.append(f"{len(failed)} of {len(crls)} CRL distribution points could not be fetched")
    return found


def summarize(
    hosts: Sequence[HostRecord],
    findings: Sequence[FindingRecord],
    diff: FindingsDiff[FindingRecord],
    tenant: TenantOutcome,
    crls: Sequence[CrlFetch],
    *,
    complete: bool,
) -> dict[str, Any]:
    """The summary document (docs/cli-json.md, ``sweep``: ``counts``)."""
    host_count = host_counts(hosts)
    compliant = not findings and host_count["ok"] == len(hosts) and tenant.error is None
    return {
        "hosts": host_count,
        "findings": {"total": len(findings), "by_severity": by_severity(findings), **diff.counts()},
        "tenant": tenant.status,
        "crls": {"urls": len(crls), "failed": sum(1 for fetch in crls if fetch.error is not None)},
        "previous_run": diff.previous_run,
        COMPLETE_KEY: complete,
        "compliant": compliant,
        "notes": notes(hosts, tenant, crls),
    }


__all__ = ["NOT_CONFIGURED_NOTE", "TenantOutcome", "host_counts", "notes", "summarize"]
