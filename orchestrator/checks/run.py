"""``run_checks``: every registered check over a fleet's facts, at an injected time.  Pure."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from orchestrator.checks.context import CheckContext, CheckOptions
from orchestrator.checks.correlate import explain_failures
from orchestrator.checks.model import Finding
from orchestrator.checks.registry import REGISTRY, CheckRegistry
from orchestrator.errors import InputError
from orchestrator.facts.fleet import FleetFacts


def run_checks(
    fleet: FleetFacts,
    *,
    at: datetime,
    options: CheckOptions | None = None,
    only: Collection[str] | None = None,
    registry: CheckRegistry = REGISTRY,
) -> tuple[Finding, ...]:
    """The findings of every check (or of the ids in ``only``), sorted by severity, host, id, subject.

    Hosts whose facts are missing (``HostFacts.error``) are skipped by host checks; reporting the
    collection error is the sweep's business.  Duplicate findings (same fingerprint) are kept once.
    RasClient failures (EP-EVT-01) name the other findings that explain them (``explained_by``).
    """
    if only is not None:
        unknown = sorted(set(only) - {spec.id for spec in registry.specs()})
        if unknown:
            raise InputError(f"unknown check ids: {', '.join(unknown)}", field="checks")
    ctx = CheckContext(fleet, at=at, options=options or CheckOptions())
    found: dict[str, Finding] = {}
    for check in registry:
        if only is not None and check.spec.id not in only:
            continue
        for finding in check.run(ctx):
            found.setdefault(finding.fingerprint, finding)
    explained = explain_failures(found.values(), fleet)
    return tuple(sorted(explained, key=lambda f: (f.severity.rank, f.host.casefold(), f.check_id, f.subject)))


__all__ = ["run_checks"]
