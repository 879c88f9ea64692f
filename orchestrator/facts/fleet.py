"""FleetFacts: every host's facts (or why they are missing), the tenant's, and fetched CRLs.

This is the one input of :func:`orchestrator.checks.run_checks`, so that checks whose truth spans
hosts (the RRAS root against the CA, Intune intent against a device) see everything at once.
It is plain data: the sweep builds it from collection results, stores it as JSON, and a test
builds it from a spec file.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from orchestrator.facts.ca import CaFacts
from orchestrator.facts.common import Base64Der, FactsDocument
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory.models import Role

F = TypeVar("F", bound=FactsDocument)

FACTS_BY_ROLE: dict[Role, type[FactsDocument]] = {
    Role.ENDPOINT: EndpointFacts,
    Role.RRAS: RrasFacts,
    Role.CA: CaFacts,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CollectionError(_Frozen):
    """Why a host's (or the tenant's) facts are missing: a fleetfix error kind and its message."""

    kind: str = Field(description="an error kind of docs/cli-json.md: unreachable, bad_output ...")
    message: str

    @classmethod
    def from_error(cls, error: Exception) -> CollectionError:
        kind = getattr(error, "kind", "internal")
        return cls(kind=str(kind), message=str(error))


class HostFacts(_Frozen):
    """One inventory host: its facts, or the error that stopped their collection."""

    name: str
    role: Role
    facts: EndpointFacts | RrasFacts | CaFacts | None = None
    error: CollectionError | None = None

    @model_validator(mode="after")
    def _facts_match_role(self) -> HostFacts:
        if (self.facts is None) == (self.error is None):
            raise ValueError(f"host {self.name}: exactly one of facts and error must be given")
        expected = FACTS_BY_ROLE[self.role]
        if self.facts is not None and not isinstance(self.facts, expected):
            raise ValueError(f"host {self.name} is {self.role.value}: facts must be {expected.__name__}")
        return self


class CrlFetch(_Frozen):
    """A CRL distribution point URL fetched by the collector: the DER, or why it could not be had."""

    url: str
    der: Base64Der | None = None
    error: str | None = None
    fetched_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _der_or_error(self) -> CrlFetch:
        if (self.der is None) == (self.error is None):
            raise ValueError(f"{self.url}: exactly one of der and error must be given")
        return self


class FleetFacts(_Frozen):
    """What the checks see: hosts, the Intune tenant, and CRLs fetched from HTTP distribution points."""

    hosts: tuple[HostFacts, ...] = ()
    tenant: TenantFacts | None = None
    tenant_error: CollectionError | None = None
    crls: tuple[CrlFetch, ...] = Field(default=(), description="one per CDP URL, from the collector")

    def by_role(self, role: Role) -> Iterator[HostFacts]:
        return (host for host in self.hosts if host.role is role)

    def facts_of(self, kind: type[F]) -> Iterator[tuple[str, F]]:
        """``(host name, facts)`` of every host whose facts are of ``kind``."""
        for host in self.hosts:
            if isinstance(host.facts, kind):
                yield host.name, host.facts

    def crl(self, url: str) -> CrlFetch | None:
        return next((fetch for fetch in self.crls if fetch.url == url), None)

    @classmethod
    def from_json_data(cls, data: Any) -> FleetFacts:
        """From JSON-shaped data (a stored sweep, a test spec): probe documents validate as JSON."""
        import json  # noqa: PLC0415 (only this constructor needs it)

        return cls.model_validate_json(json.dumps(data))


__all__ = ["FACTS_BY_ROLE", "CollectionError", "CrlFetch", "FleetFacts", "HostFacts"]
