"""From collection outcomes to what the checks read and what the store keeps.  Pure.

* :func:`host_facts` / :func:`fleet_facts`: outcomes (+ tenant, CRLs) -> :class:`FleetFacts`;
* :func:`host_status`: which error kinds make a host ``unreachable`` rather than ``failed``;
* :func:`host_record`: an outcome as the store's :class:`HostRecord` (facts as JSON).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.facts.fleet import CollectionError, CrlFetch, FleetFacts, HostFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.store.models import HostStatus
from orchestrator.store.sweeps import HostRecord
from orchestrator.sweep.collect import HostOutcome

UNREACHABLE_KINDS = frozenset({"unreachable", "timed_out"})
"""The host did not answer (in time): nothing is known about it.  Every other error kind --
refused login, TLS, a failing or misbehaving probe, a missing credential -- is ``failed``: the
host answered, and something fleetfix or an admin can act on went wrong."""


def host_facts(outcome: HostOutcome) -> HostFacts:
    return HostFacts(name=outcome.name, role=outcome.role, facts=outcome.facts, error=outcome.error)


def fleet_facts(
    outcomes: Iterable[HostOutcome],
    *,
    tenant: TenantFacts | None = None,
    tenant_error: CollectionError | None = None,
    crls: Sequence[CrlFetch] = (),
) -> FleetFacts:
    return FleetFacts(
        hosts=tuple(host_facts(outcome) for outcome in outcomes),
        tenant=tenant,
        tenant_error=tenant_error,
        crls=tuple(crls),
    )


def host_status(error: CollectionError | None) -> HostStatus:
    if error is None:
        return HostStatus.OK
    return HostStatus.UNREACHABLE if error.kind in UNREACHABLE_KINDS else HostStatus.FAILED


def host_record(outcome: HostOutcome) -> HostRecord:
    return HostRecord(
        host=outcome.name,
        role=outcome.role.value,
        status=host_status(outcome.error),
        error_kind=outcome.error.kind if outcome.error else None,
        error_message=outcome.error.message if outcome.error else None,
        facts=outcome.facts.model_dump(mode="json") if outcome.facts is not None else None,
        started_at=outcome.started_at,
        finished_at=outcome.finished_at,
    )


def fleet_wide_facts(fleet: FleetFacts) -> dict[str, object]:
    """The part of the fleet's facts that belongs to no host, as JSON (``runs.fleet_facts``)."""
    return fleet.model_dump(mode="json", include={"tenant", "tenant_error", "crls"})


__all__ = ["UNREACHABLE_KINDS", "fleet_facts", "fleet_wide_facts", "host_facts", "host_record", "host_status"]
