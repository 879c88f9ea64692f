"""What every check receives: the fleet's facts, the time to judge them at, options, shared indexes.

``at`` is injected (never a clock read inside a check), so a sweep is reproducible and a test can
judge a CRL one second after its ``nextUpdate``.  Indexes that several checks need (every CA
certificate the fleet knows, every CRL, the public VPN names) are computed once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.checks.trust import StoreSet, safe_parse
from orchestrator.facts.ca import CaFacts
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.fleet import FleetFacts
from orchestrator.facts.rras import RrasFacts
from orchestrator.facts.x509 import CertView, CrlView, FactsParseError, normalize_thumbprint, parse_crl
from orchestrator.transport.graph.profilexml import ProfileXmlError, parse_profile_xml

T = TypeVar("T")


class CheckOptions(BaseModel):
    """Knobs of the checks (``[checks]`` in fleetfix.toml); every one has a safe default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    crl_expiry_margin: timedelta = Field(
        default=timedelta(days=2), description="a CRL whose nextUpdate is closer than this is 'expiring'"
    )
    cert_expiry_warning: timedelta = Field(
        default=timedelta(days=30), description="device and VPN server certificates expiring within this"
    )
    sstp_expiry_warning: timedelta = Field(
        default=timedelta(days=15), description="the SSTP TLS certificate (Hicks' renewal window)"
    )
    ca_cert_expiry_warning: timedelta = Field(default=timedelta(days=180))
    expected_root_thumbprint: str | None = Field(
        default=None, description="the root RRAS must accept; derived from the device certificates if unset"
    )
    vpn_public_names: tuple[str, ...] = Field(
        default=(), description="public FQDNs clients connect to; derived from the VPN profiles if empty"
    )
    any_eku_satisfies: bool = Field(
        default=False, description="count anyExtendedKeyUsage (2.5.29.37.0) as every specific EKU"
    )

    @field_validator("expected_root_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str | None) -> str | None:
        return normalize_thumbprint(value) if value else None


class CheckContext:
    """The run's inputs plus indexes computed on first use (a context is built per run)."""

    def __init__(self, fleet: FleetFacts, *, at: datetime, options: CheckOptions) -> None:
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        self.fleet = fleet
        self.at = at
        self.options = options
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` once per run for ``key``: several checks judge the same certificate."""
        if key not in self._memo:
            self._memo[key] = compute()
        result: T = self._memo[key]
        return result

    # -- certificates and CRLs known anywhere in the fleet -------------------------------------------

    @cached_property
    def known_cas(self) -> StoreSet:
        """Every CA certificate fleetfix has seen: CA hosts' own and store certificates, all stores."""
        roots: list[CertView] = []
        intermediates: list[CertView] = []
        for _, facts in self.fleet.facts_of(CaFacts):
            intermediates += [v for v in map(safe_parse, facts.ca_certificates or ()) if v is not None]
        for host in self.fleet.hosts:
            entries = getattr(host.facts, "certificates", None) or ()
            stores = StoreSet.from_entries(entries)
            roots += stores.roots
            intermediates += [cert for cert in stores.intermediates if cert.is_ca]
        return StoreSet(_unique(roots), _unique(intermediates))

    @cached_property
    def issuing_cas(self) -> tuple[CertView, ...]:
        """The certificates of the CAs in the inventory (what 'the internal PKI' issues from)."""
        certs = [
            view
            for _, facts in self.fleet.facts_of(CaFacts)
            for view in map(safe_parse, facts.ca_certificates or ())
            if view is not None
        ]
        return _unique(certs)

    @cached_property
    def crls(self) -> tuple[CrlView, ...]:
        """Every readable CRL: the CA hosts' published files and the copies fetched over HTTP."""
        ders = [crl.der for _, facts in self.fleet.facts_of(CaFacts) for crl in facts.crls or ()]
        ders += [fetch.der for fetch in self.fleet.crls if fetch.der is not None]
        views: dict[bytes, CrlView] = {}
        for der in ders:
            try:
                view = parse_crl(der)
            except FactsParseError:
                continue
            views.setdefault(view.der, view)
        return tuple(views.values())

    def is_internal(self, cert: CertView) -> bool:
        """Issued by one of the inventory's CAs (True when no CA is inventoried: nothing to tell)."""
        if not self.issuing_cas:
            return True
        return any(cert.issued_by(ca) for ca in self.issuing_cas)

    # -- names ----------------------------------------------------------------------------------------

    @cached_property
    def public_names(self) -> tuple[tuple[str, ...], str]:
        """The VPN server names clients connect to, and where fleetfix learnt them."""
        if self.options.vpn_public_names:
            return tuple(self.options.vpn_public_names), "option"
        names: dict[str, None] = {}
        for _, facts in self.fleet.facts_of(EndpointFacts):
            for connection in facts.vpn_connections or ():
                if connection.server_address:
                    names[connection.server_address.casefold()] = None
        for xml in self._tenant_profile_xml():
            for server in xml:
                names[server.casefold()] = None
        return tuple(sorted(names)), "vpn_profiles"

    def _tenant_profile_xml(self) -> Iterator[tuple[str, ...]]:
        tenant = self.fleet.tenant
        if tenant is None:
            return
        for profile in tenant.vpn_profiles:
            for setting in profile.profile_xml:
                if setting.xml is None:
                    continue
                try:
                    yield parse_profile_xml(setting.xml).servers
                except ProfileXmlError:
                    continue

    def rras_hosts(self) -> tuple[tuple[str, RrasFacts], ...]:
        return self._rras

    def endpoints(self) -> tuple[tuple[str, EndpointFacts], ...]:
        return self._endpoints

    @cached_property
    def _rras(self) -> tuple[tuple[str, RrasFacts], ...]:
        return tuple(self.fleet.facts_of(RrasFacts))

    @cached_property
    def _endpoints(self) -> tuple[tuple[str, EndpointFacts], ...]:
        return tuple(self.fleet.facts_of(EndpointFacts))


def _unique(certs: list[CertView]) -> tuple[CertView, ...]:
    return tuple({cert.thumbprint: cert for cert in certs}.values())


__all__ = ["CheckContext", "CheckOptions"]
