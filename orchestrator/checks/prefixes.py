"""Split-tunnel route prefixes as Windows will (or will not) route them.  Pure.

Windows keeps a route such as ``172.21.12.0/21`` in the VPN profile but never adds it to the
routing table: host bits are set, the network is ``172.21.8.0/21`` (Hicks, "Always On VPN Client
Routes Missing").  IPv6 prefixes follow the same rule.  A prefix that does not even parse is its
own problem; dotted quads with leading zeros (``10.001.0.0``) are refused because Windows' parser
may read them as octal, so what the admin meant and what Windows does can differ.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_OCTET_WITH_LEADING_ZERO = re.compile(r"(?:^|\.)0\d")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


class PrefixProblem(StrEnum):
    HOST_BITS = "host_bits"  # parses, but the address is not the network's address
    INVALID = "invalid_prefix"  # does not parse, leading zeros, size out of range


@dataclass(frozen=True)
class PrefixVerdict:
    """How Windows will treat ``address``/``size``; ``corrected`` is the network meant, if known."""

    address: str
    size: str
    problem: PrefixProblem | None
    corrected: str | None
    detail: str

    @property
    def text(self) -> str:
        return f"{self.address}/{self.size}"

    @property
    def network(self) -> IPNetwork | None:
        """The network Windows routes (None when the route is dropped)."""
        return None if self.problem else ipaddress.ip_network(self.text)


def judge_prefix(address: str, size: str | int) -> PrefixVerdict:
    """The verdict on one route given as address and prefix size (Intune, ProfileXML)."""
    address, size_text = address.strip(), str(size).strip()
    if _DOTTED_QUAD.fullmatch(address) and _OCTET_WITH_LEADING_ZERO.search(address):
        return _leading_zeros(address, size_text)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return PrefixVerdict(address, size_text, PrefixProblem.INVALID, None, "not an IP address")
    if not (size_text.isascii() and size_text.isdigit()) or not 0 <= int(size_text) <= parsed.max_prefixlen:
        detail = f"prefix size must be 0 to {parsed.max_prefixlen}"
        return PrefixVerdict(address, size_text, PrefixProblem.INVALID, None, detail)
    network = ipaddress.ip_network(f"{parsed}/{int(size_text)}", strict=False)
    if network.network_address != parsed:
        detail = f"host bits set: {address} is a host of {network}"
        return PrefixVerdict(address, size_text, PrefixProblem.HOST_BITS, str(network), detail)
    return PrefixVerdict(address, size_text, None, None, "network address")


def judge_cidr(text: str) -> PrefixVerdict:
    """The verdict on ``address/size`` text (``Get-VpnConnection`` routes, the routing table)."""
    address, sep, size = text.strip().partition("/")
    if not sep:
        return PrefixVerdict(address, "", PrefixProblem.INVALID, None, "no prefix size")
    return judge_prefix(address, size)


def _leading_zeros(address: str, size: str) -> PrefixVerdict:
    """Refused, with the decimal reading as the suggested correction (what admins almost always mean)."""
    decimal = ".".join(str(int(octet)) for octet in address.split("."))
    if not all(int(octet) <= 255 for octet in address.split(".")):
        return PrefixVerdict(address, size, PrefixProblem.INVALID, None, "octet out of range")
    meant = judge_prefix(decimal, size)
    corrected = meant.corrected or (meant.text if meant.problem is None else None)
    detail = f"leading zeros: Windows may read {address} as octal; decimal reading {decimal}"
    return PrefixVerdict(address, size, PrefixProblem.INVALID, corrected, detail)


def route_network(text: str) -> IPNetwork | None:
    """A routing-table prefix as a network (lenient: the table only holds what Windows accepted)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


__all__ = ["IPNetwork", "PrefixProblem", "PrefixVerdict", "judge_cidr", "judge_prefix", "route_network"]
