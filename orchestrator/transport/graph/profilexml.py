"""VPN routes and VPNv2 ProfileXML: parse, validate, rewrite.  Pure.

Routes matter because of the commonest Always On VPN routing mistake: a prefix written as a host
address (``172.21.12.0/21``) instead of the network (``172.21.8.0/21``).  Windows accepts such a
route into the profile but never into the routing table, so the network stays unreachable over the
tunnel.  :meth:`VpnRoute.is_network_address` detects it; :meth:`VpnRoute.normalized` fixes it.

ProfileXML routes (VPNv2 CSP schema)::

    <Route><Address>10.0.0.0</Address><PrefixSize>8</PrefixSize></Route>
    <Route><Address>172.16.0.0</Address><PrefixSize>12</PrefixSize><ExclusionRoute>true</ExclusionRoute></Route>

``Route`` elements follow every other child of ``VPNProfile`` (the schema is a sequence), so
:func:`replace_routes` removes the old ones and appends the new ones at the end.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from orchestrator.errors import BadOutputError

_VPNV2_URI = re.compile(r"\./(Device|User)/Vendor/MSFT/VPNv2/([^/]+)/ProfileXML", re.IGNORECASE)


class ProfileXmlError(BadOutputError):
    """A ProfileXML that is not well-formed or not a VPNProfile (reported as ``bad_output``)."""


@dataclass(frozen=True, order=True)
class VpnRoute:
    """A split-tunnel route: ``prefix``/``prefix_size``; ``exclusion`` routes bypass the tunnel."""

    prefix: str
    prefix_size: int
    exclusion: bool = False

    def __post_init__(self) -> None:
        address = ipaddress.ip_address(self.prefix)  # ValueError for a non-address
        if not 0 <= self.prefix_size <= address.max_prefixlen:
            raise ValueError(f"prefix size {self.prefix_size} out of range for {self.prefix}")

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.prefix}/{self.prefix_size}", strict=False)

    def is_network_address(self) -> bool:
        """False when host bits are set (``172.21.12.0/21``): Windows would never route it."""
        return str(self.network.network_address) == str(ipaddress.ip_address(self.prefix))

    def normalized(self) -> VpnRoute:
        """The route with host bits cleared (``172.21.12.0/21`` -> ``172.21.8.0/21``)."""
        return VpnRoute(str(self.network.network_address), self.prefix_size, self.exclusion)

    def __str__(self) -> str:
        return f"{self.prefix}/{self.prefix_size}" + (" (exclusion)" if self.exclusion else "")

    def to_graph(self) -> dict[str, Any]:
        """Graph's ``vpnRoute`` (native profiles have no exclusion flag)."""
        return {"destinationPrefix": self.prefix, "prefixSize": self.prefix_size}

    @classmethod
    def from_graph(cls, data: dict[str, Any]) -> VpnRoute:
        return cls(str(data["destinationPrefix"]), int(data["prefixSize"]))


@dataclass(frozen=True)
class ProfileXml:
    """What fleetfix reads from a ProfileXML."""

    servers: tuple[str, ...]
    routing_policy: str | None
    native_protocol: str | None
    routes: tuple[VpnRoute, ...]


def oma_profile_name(oma_uri: str) -> tuple[str, str] | None:
    """(``Device``/``User``, profile name) for a VPNv2 ProfileXML OMA-URI, else None."""
    match = _VPNV2_URI.fullmatch(oma_uri.strip())
    return (match.group(1).capitalize(), unquote(match.group(2))) if match else None


def _root(xml: str) -> ElementTree.Element:
    if "<!DOCTYPE" in xml.upper():  # refusing DTDs rules out entity expansion attacks
        raise ProfileXmlError("ProfileXML must not contain a DOCTYPE")
    try:
        root = ElementTree.fromstring(xml)  # noqa: S314 (no DTD: see above)
    except ElementTree.ParseError as exc:
        raise ProfileXmlError(f"ProfileXML is not well-formed: {exc}") from None
    if root.tag != "VPNProfile":
        raise ProfileXmlError(f"ProfileXML root is <{root.tag}>, expected <VPNProfile>")
    return root


@dataclass(frozen=True)
class RouteText:
    """A ``Route`` element's values as written, before any validation (checks judge them)."""

    address: str
    prefix_size: str
    exclusion: bool


def route_texts(xml: str) -> tuple[RouteText, ...]:
    """Every ``Route`` of a ProfileXML as text, including ones :func:`parse_profile_xml` refuses."""
    return tuple(
        RouteText(
            _text(element, "Address") or "",
            _text(element, "PrefixSize") or "",
            (_text(element, "ExclusionRoute") or "false").lower() == "true",
        )
        for element in _root(xml).findall("Route")
    )


def profile_text(xml: str, path: str) -> str | None:
    """The stripped text of the first element at ``path`` (ElementTree syntax), e.g.
    ``"DeviceTunnel"`` or ``"NativeProfile/DisableIKEv2Fragmentation"``; None when absent."""
    return _text(_root(xml), path)


def parse_profile_xml(xml: str) -> ProfileXml:
    root = _root(xml)
    servers = root.findtext("NativeProfile/Servers") or ""
    return ProfileXml(
        servers=tuple(part.strip() for part in re.split(r"[;,]", servers) if part.strip()),
        routing_policy=_text(root, "NativeProfile/RoutingPolicyType"),
        native_protocol=_text(root, "NativeProfile/NativeProtocolType"),
        routes=tuple(_route(element) for element in root.findall("Route")),
    )


def _text(root: ElementTree.Element, path: str) -> str | None:
    value = root.findtext(path)
    return value.strip() if value is not None else None


def _route(element: ElementTree.Element) -> VpnRoute:
    address, size = _text(element, "Address"), _text(element, "PrefixSize")
    exclusion = (_text(element, "ExclusionRoute") or "false").lower() == "true"
    try:
        return VpnRoute(address or "", int(size or ""), exclusion)
    except ValueError:
        raise ProfileXmlError(f"invalid Route: Address {address!r}, PrefixSize {size!r}") from None


def replace_routes(xml: str, routes: tuple[VpnRoute, ...] | list[VpnRoute]) -> str:
    """The ProfileXML with its ``Route`` elements replaced by ``routes`` (everything else kept)."""
    root = _root(xml)
    for element in root.findall("Route"):
        root.remove(element)
    for route in routes:
        element = ElementTree.SubElement(root, "Route")
        ElementTree.SubElement(element, "Address").text = route.prefix
        ElementTree.SubElement(element, "PrefixSize").text = str(route.prefix_size)
        if route.exclusion:
            ElementTree.SubElement(element, "ExclusionRoute").text = "true"
    return ElementTree.tostring(root, encoding="unicode")


__all__ = [
    "ProfileXml",
    "ProfileXmlError",
    "RouteText",
    "VpnRoute",
    "oma_profile_name",
    "parse_profile_xml",
    "profile_text",
    "replace_routes",
    "route_texts",
]
