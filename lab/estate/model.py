"""The estate: every simulated host's state, the PKI, and the links between them.

One :class:`Estate` holds what a scenario built: endpoint, RRAS and CA :class:`~lab.state.HostState`
objects with their components, the offline root CA (not a host: it is offline), and the records of
what was injected.  Hosts see each other only through it: an endpoint's device tunnel depends on
the RRAS server it reaches and on the CRL its issuing CA published; the CRL server serves what the
CAs published.  Everything is mutated on the lab's event loop only.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from lab.estate.pki import EnterprisePKI
from lab.state import HostState
from lab.windows.certsvc import CertificationAuthority, PublishedCrl
from lab.windows.rras import RrasServer

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


@dataclass
class HostIdentity:
    """Who a host is beyond name and OS build: domain membership, OS display version and edition."""

    domain: str | None
    display_version: str | None
    edition_id: str | None

    @property
    def part_of_domain(self) -> bool:
        return self.domain is not None


@dataclass
class EndpointUser:
    """The user signed in on an endpoint (owner of the user tunnel) and the endpoint's Intune record."""

    account: str  # DOMAIN\\user
    folder: str  # C:\\Users\\<folder>
    sid: str
    intune_device_id: str | None = None


@dataclass
class NetworkPath:
    """What lies between an endpoint and the VPN: which RRAS node the load balancer picks, and
    whether IKE's UDP 500/4500 gets through (a hotel firewall does not let it)."""

    rras: str
    ike_blocked: bool = False


@dataclass(frozen=True)
class InjectedFault:
    """One fault a scenario put into the estate: what, where, and with which parameters."""

    fault: str
    host: str
    subject: str
    params: tuple[tuple[str, Any], ...] = ()


@dataclass
class Estate:
    """All simulated hosts of a scenario and the PKI they share."""

    pki: EnterprisePKI
    public_fqdn: str
    domain: str
    clock: Clock = utc_now
    hosts: dict[str, HostState] = field(default_factory=dict)
    offline_root: CertificationAuthority | None = None
    outside_cas: list[CertificationAuthority] = field(default_factory=list)
    """CAs outside the enterprise (a partner's PKI) whose CRLs the CRL server also serves."""
    injected: list[InjectedFault] = field(default_factory=list)
    tenant_name: str = "intune"
    started_at: datetime.datetime | None = None
    live: bool = False  # set once built: from then on Intune deliveries are logged as changes
    _ca_hosts: list[CertificationAuthority] | None = field(default=None, repr=False)
    _roles: dict[str, list[HostState]] = field(default_factory=dict, repr=False)

    def add(self, state: HostState) -> HostState:
        self.hosts[state.name.lower()] = state
        self._roles.setdefault(state.role, []).append(state)
        return state

    def host(self, name: str) -> HostState:
        return self.hosts[name.lower()]

    def by_role(self, role: str) -> Iterator[HostState]:
        return iter(self._roles.get(role, []))

    def now(self) -> datetime.datetime:
        return self.clock()

    # -- the CAs and what they publish ------------------------------------------------------------

    def authorities(self) -> list[CertificationAuthority]:
        """Every CA that publishes CRLs: the offline root, outside CAs and each CA host."""
        found = [self.offline_root] if self.offline_root is not None else []
        found += self.outside_cas
        if self._ca_hosts is None:  # hosts never change once built: look them up once
            found_cas = (state.find(CertificationAuthority) for state in self.by_role("ca"))
            self._ca_hosts = [ca for ca in found_cas if ca is not None]
        return found + self._ca_hosts

    def refresh_crls(self) -> None:
        """Let every CA run its publication schedule up to now."""
        now = self.now()
        for ca in self.authorities():
            ca.refresh(now)

    def crl_at(self, url: str) -> PublishedCrl | None:
        """The CRL a distribution point URL serves (after :meth:`refresh_crls`), or None (404)."""
        path = unquote(urlsplit(url).path)
        file_name = path.rsplit("/", 1)[-1]
        for ca in self.authorities():
            if file_name in ca.cdp:
                return ca.cdp[file_name]
        return None

    def ca_certificate_file(self, file_name: str) -> bytes | None:
        """AIA: ``<CA name>.crt`` as DER."""
        for authority in self.pki.authorities():
            if f"{authority.name}.crt" == file_name:
                return authority.der
        return None

    # -- the VPN path --------------------------------------------------------------------------

    def rras_servers(self) -> list[HostState]:
        return sorted(self.by_role("rras"), key=lambda state: state.name)

    def pick_rras(self, endpoint_name: str) -> str | None:
        """The node the load balancer sends an endpoint to (stable per endpoint)."""
        servers = self.rras_servers()
        if not servers:
            return None
        digest = hashlib.sha256(endpoint_name.lower().encode()).digest()
        return servers[int.from_bytes(digest[:4], "big") % len(servers)].name

    def rras_of(self, endpoint: HostState) -> tuple[HostState, RrasServer] | None:
        path = endpoint.find(NetworkPath)
        if path is None or path.rras.lower() not in self.hosts:
            return None
        state = self.host(path.rras)
        server = state.find(RrasServer)
        return None if server is None else (state, server)


@dataclass
class EstateLink:
    """The component through which a host's handlers reach the rest of the estate."""

    estate: Estate


def estate_of(state: HostState) -> Estate | None:
    link = state.find(EstateLink)
    return None if link is None else link.estate


__all__ = [
    "Clock",
    "EndpointUser",
    "Estate",
    "EstateLink",
    "HostIdentity",
    "InjectedFault",
    "NetworkPath",
    "estate_of",
    "utc_now",
]
