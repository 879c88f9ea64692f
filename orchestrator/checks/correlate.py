"""Tie RasClient failures (EP-EVT-01) to the findings that explain them.

A 13806 on an endpoint is explained by that endpoint's own findings (EP-CERT-01) or by findings
on what every endpoint depends on (RRAS-AUTH-01 on a VPN server, CA-CRL-01 on the CA, an Intune
profile).  The explanation goes into the failure's evidence as ``explained_by``; the fingerprint
is unchanged, so the sweep still tracks the failure as one finding.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from orchestrator.checks.events import EP_EVT_01
from orchestrator.checks.model import Finding, freeze
from orchestrator.facts.fleet import FleetFacts
from orchestrator.inventory.models import Role


def explain_failures(findings: Iterable[Finding], fleet: FleetFacts) -> list[Finding]:
    """``findings`` with every EP-EVT-01 finding's evidence extended by ``explained_by``."""
    found = list(findings)
    endpoints = {host.name.casefold() for host in fleet.by_role(Role.ENDPOINT)}
    return [_explained(f, found, endpoints) if f.check_id == EP_EVT_01.id else f for f in found]


def _explained(failure: Finding, found: list[Finding], endpoints: set[str]) -> Finding:
    causes = failure.evidence.get("likely_causes")
    if not isinstance(causes, tuple) or not causes:
        return failure
    explaining = [
        {"check_id": f.check_id, "host": f.host, "subject": f.subject, "reason": f.reason}
        for f in found
        if f.check_id in causes and _relevant(f, failure, endpoints)
    ]
    order = {check_id: index for index, check_id in enumerate(causes)}
    explaining.sort(key=lambda item: (order[str(item["check_id"])], str(item["host"]), str(item["subject"])))
    return replace(failure, evidence={**failure.evidence, "explained_by": freeze(explaining)})


def _relevant(candidate: Finding, failure: Finding, endpoints: set[str]) -> bool:
    """A finding on the failing endpoint itself, or on something shared (servers, CA, Intune)."""
    host = candidate.host.casefold()
    return host == failure.host.casefold() or host not in endpoints


__all__ = ["explain_failures"]
