"""Observe a few targets afresh: collect their facts, judge them in the fleet's context.

A playbook plans from fresh facts and verifies by looking again, target by target, so it needs
what a sweep does for a handful of hosts at a time: the same probes and credentials
(:class:`~orchestrator.sweep.service.SweepIO`), the same checks.  Checks whose truth spans hosts
(the enterprise root, an RRAS array's majority, the CRLs a CA published) need the rest of the
fleet too; it comes from ``base``, the last sweep's facts.  Only non-endpoint hosts of ``base``
are kept beside the targets: no check judges an endpoint by another endpoint, and a fleet of
10,000 endpoints must not be re-judged for each one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from orchestrator.checks.model import Finding
from orchestrator.facts.fleet import CollectionError, CrlFetch, FleetFacts, HostFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory.models import Host, Role
from orchestrator.sweep.assemble import host_facts
from orchestrator.sweep.crls import cdp_urls
from orchestrator.sweep.plan import CollectOptions, credential_keys, plan_collection
from orchestrator.sweep.service import SweepIO

TENANT_HOST = "intune"
"""The pseudo-host the checks file Intune findings under."""


@dataclass(frozen=True)
class Observation:
    """Fresh facts of the observed targets in their fleet context, and their findings now.

    ``findings`` holds only findings *on* the observed targets (and on ``intune`` when the
    tenant was observed); ``errors`` the targets whose facts could not be read, by name.
    """

    fleet: FleetFacts
    findings: tuple[Finding, ...]
    at: datetime
    errors: Mapping[str, CollectionError] = field(default_factory=lambda: MappingProxyType({}))

    def facts_of(self, name: str) -> HostFacts | None:
        wanted = name.casefold()
        return next((host for host in self.fleet.hosts if host.name.casefold() == wanted), None)

    def findings_on(self, name: str, check_ids: Collection[str] | None = None) -> tuple[Finding, ...]:
        wanted = name.casefold()
        return tuple(
            finding
            for finding in self.findings
            if finding.host.casefold() == wanted and (check_ids is None or finding.check_id in check_ids)
        )


def context_fleet(base: FleetFacts, fresh: Sequence[HostFacts]) -> tuple[HostFacts, ...]:
    """``fresh`` plus every non-endpoint host of ``base`` that is not among them."""
    names = {host.name.casefold() for host in fresh}
    kept = tuple(
        host for host in base.hosts if host.role is not Role.ENDPOINT and host.name.casefold() not in names
    )
    return (*fresh, *kept)


def _merged_crls(base: Sequence[CrlFetch], fresh: Sequence[CrlFetch]) -> tuple[CrlFetch, ...]:
    by_url = {fetch.url: fetch for fetch in base}
    by_url.update({fetch.url: fetch for fetch in fresh})
    return tuple(by_url.values())


def observe(
    io: SweepIO,
    hosts: Sequence[Host],
    *,
    base: FleetFacts,
    options: CollectOptions,
    tenant: bool = False,
    refetch_crls: bool = False,
) -> Observation:
    """Collect ``hosts`` (and the tenant, when asked), then run the checks on them in context.

    ``refetch_crls`` fetches again every CRL URL the base knew plus those the fresh certificates
    name: what verifying a CRL republication needs (the distribution point must serve the new
    CRL).  Otherwise the base's CRL fetches are reused.
    """
    jobs = plan_collection(hosts, options)
    outcomes = io.collect(jobs, io.resolve(credential_keys(jobs)), options) if jobs else ()
    fresh = tuple(host_facts(outcome) for outcome in outcomes)
    errors = {outcome.name: outcome.error for outcome in outcomes if outcome.error is not None}
    tenant_facts: TenantFacts | None = base.tenant
    tenant_error = base.tenant_error
    at = io.clock()
    if tenant:
        outcome = io.tenant(at)
        tenant_facts, tenant_error = outcome.facts, outcome.error
        if outcome.error is not None:
            errors[TENANT_HOST] = outcome.error
    crls = base.crls
    if refetch_crls:
        urls = dict.fromkeys((*(fetch.url for fetch in base.crls), *cdp_urls(fresh)))
        crls = _merged_crls(base.crls, io.crls(tuple(urls)))
    fleet = FleetFacts(
        hosts=context_fleet(base, fresh), tenant=tenant_facts, tenant_error=tenant_error, crls=crls
    )
    targets = {host.name.casefold() for host in hosts} | ({TENANT_HOST} if tenant else set())
    findings = tuple(finding for finding in io.checks(fleet, at) if finding.host.casefold() in targets)
    return Observation(fleet=fleet, findings=findings, at=at, errors=MappingProxyType(errors))


__all__ = ["TENANT_HOST", "Observation", "context_fleet", "observe"]
