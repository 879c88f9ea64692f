"""The VPN client of an endpoint: its VPN profiles (phonebook entries) and the routing table.

A profile is what ``Get-VpnConnection`` shows: servers, tunnel type, authentication, split
tunnelling, DNS suffix, routes and the custom IPsec policy.  It lives in the all-user phonebook
(device tunnel, ``-AllUserConnection``) or in one user's phonebook (a user tunnel), and was put
there locally (PowerShell, a deployment script) or by Intune (``provisioning="mdm"``).

The routing table is built the way Windows builds it when a connection comes up: every route of
a connected profile is plumbed on the connection's interface (alias = connection name), *except*
a route whose prefix has host bits set (``172.21.12.0/21``): Windows drops it without a word,
which is the "Always On VPN client routes missing" article.  Routes of a disconnected profile are
not in the table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

Scope = Literal["all_users", "user"]
Provisioning = Literal["local", "mdm"]


@dataclass(frozen=True)
class IpsecPolicy:
    """A custom IKEv2 policy, in PowerShell enum spelling."""

    authentication_transform_constants: str = "GCMAES128"
    cipher_transform_constants: str = "GCMAES128"
    encryption_method: str = "GCMAES128"
    integrity_check_method: str = "SHA256"
    pfs_group: str = "ECP256"
    dh_group: str = "Group14"


ENHANCED_POLICY = IpsecPolicy()
"""Hicks' "enhanced" baseline, used on both sides of a healthy estate."""


@dataclass(frozen=True)
class VpnRoute:
    """A configured route: the prefix exactly as written (host bits and all) and its metric."""

    prefix: str
    metric: int | None = 1

    @property
    def network_aligned(self) -> bool:
        """True when the prefix is a network address (``ipaddress`` strict parsing agrees)."""
        try:
            ipaddress.ip_network(self.prefix, strict=True)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class VpnProfile:
    """One VPN connection profile as ``Get-VpnConnection`` reports it."""

    name: str
    guid: str
    servers: tuple[str, ...]
    tunnel_type: str = "Ikev2"
    authentication_method: tuple[str, ...] = ("MachineCertificate",)
    split_tunneling: bool = True
    dns_suffix: str | None = None
    routes: tuple[VpnRoute, ...] = ()
    eku_filter: tuple[str, ...] = ()
    ipsec_policy: IpsecPolicy | None = ENHANCED_POLICY
    scope: Scope = "all_users"
    user: str | None = None  # profile folder name for a per-user phonebook
    provisioning: Provisioning = "local"
    device_tunnel: bool = False
    mdm_profile_id: str | None = None
    mdm_version: int | None = None
    mdm_source: Literal["native", "custom"] = "custom"

    @property
    def profile_type(self) -> str:
        return "DeviceTunnel" if self.device_tunnel else "UserTunnel"

    def with_routes(self, routes: Iterable[VpnRoute]) -> VpnProfile:
        return replace(self, routes=tuple(routes))


@dataclass(frozen=True)
class NetRoute:
    """A row of the active routing table (``Get-NetRoute``)."""

    prefix: str
    interface_alias: str
    interface_index: int
    next_hop: str
    metric: int

    @property
    def address_family(self) -> str:
        return "IPv6" if ":" in self.prefix else "IPv4"


ON_LINK_V4 = "0.0.0.0"  # noqa: S104 (a next hop meaning on-link, not a bind address)
ON_LINK_V6 = "::"

# The host's own interfaces: what every endpoint's table holds whatever its VPN state.
BASE_INTERFACES = (("Ethernet", 12), ("Loopback Pseudo-Interface 1", 1))


def base_routes(address: str = "192.168.1.23", gateway: str = "192.168.1.1") -> tuple[NetRoute, ...]:
    """A home network: default route, local subnet, loopback and link-local."""
    subnet = ipaddress.ip_network(f"{address}/24", strict=False)
    return (
        NetRoute("0.0.0.0/0", "Ethernet", 12, gateway, 25),
        NetRoute(str(subnet), "Ethernet", 12, ON_LINK_V4, 281),
        NetRoute(f"{address}/32", "Ethernet", 12, ON_LINK_V4, 281),
        NetRoute("127.0.0.0/8", "Loopback Pseudo-Interface 1", 1, ON_LINK_V4, 331),
        NetRoute("::1/128", "Loopback Pseudo-Interface 1", 1, ON_LINK_V6, 331),
        NetRoute("fe80::/64", "Ethernet", 12, ON_LINK_V6, 281),
    )


@dataclass
class VpnClient:
    """The profiles of an endpoint by connection name, and the interfaces they were given."""

    profiles: dict[str, VpnProfile] = field(default_factory=dict)
    base: tuple[NetRoute, ...] = field(default_factory=base_routes)
    unplumbed: dict[str, frozenset[str]] = field(default_factory=dict)
    """Valid routes that did not make it into the table at the last connect (EP-ROUTE-02)."""
    auto_trigger_disabled: list[str] = field(default_factory=list)
    auto_trigger_entry: str | None = None
    auto_trigger_sid: str | None = None
    _interfaces: dict[str, int] = field(default_factory=dict)

    def get(self, name: str) -> VpnProfile | None:
        return self.profiles.get(name.lower())

    def put(self, profile: VpnProfile) -> VpnProfile | None:
        """Add or replace a profile; returns the one it replaced."""
        previous = self.profiles.get(profile.name.lower())
        self.profiles[profile.name.lower()] = profile
        self._interfaces.setdefault(profile.name.lower(), 30 + len(self._interfaces))
        return previous

    def remove(self, name: str) -> VpnProfile | None:
        self.unplumbed.pop(name.lower(), None)
        return self.profiles.pop(name.lower(), None)

    def all_user(self) -> tuple[VpnProfile, ...]:
        """What ``Get-VpnConnection -AllUserConnection`` lists."""
        return tuple(p for p in self.profiles.values() if p.scope == "all_users")

    def reconnect(self, name: str) -> None:
        """``rasdial`` disconnect and connect: the table is rebuilt, every valid route plumbed."""
        self.unplumbed.pop(name.lower(), None)

    def routing_table(self, connected: Mapping[str, bool]) -> tuple[NetRoute, ...]:
        """The table as Windows builds it for the connections marked connected (by lower-case name)."""
        rows = list(self.base)
        for key, profile in self.profiles.items():
            if not connected.get(key):
                continue
            index = self._interfaces[key]
            skipped = self.unplumbed.get(key, frozenset())
            rows += [
                NetRoute(route.prefix, profile.name, index, _on_link(route.prefix), route.metric or 1)
                for route in profile.routes
                if route.network_aligned and route.prefix not in skipped
            ]
        return tuple(rows)


def _on_link(prefix: str) -> str:
    return ON_LINK_V6 if ":" in prefix else ON_LINK_V4


__all__ = [
    "BASE_INTERFACES",
    "ENHANCED_POLICY",
    "IpsecPolicy",
    "NetRoute",
    "Provisioning",
    "Scope",
    "VpnClient",
    "VpnProfile",
    "VpnRoute",
    "base_routes",
]
