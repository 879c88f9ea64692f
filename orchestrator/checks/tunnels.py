"""What an endpoint's VPN profiles say about its tunnels (device tunnel, authentication, XML flags)."""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.facts.endpoint import EndpointFacts, VpnConnection
from orchestrator.transport.graph.profilexml import ProfileXmlError, profile_text

MACHINE_CERTIFICATE = "machinecertificate"
IKEV2_TUNNELS = frozenset({"ikev2", "automatic"})


def uses_machine_certificate(connection: VpnConnection) -> bool:
    return any(method.casefold() == MACHINE_CERTIFICATE for method in connection.authentication_method)


def uses_eap(connection: VpnConnection) -> bool:
    return any(method.casefold() == "eap" for method in connection.authentication_method)


def device_tunnels(facts: EndpointFacts) -> list[VpnConnection]:
    """All-user connections that authenticate with the machine certificate: device tunnels."""
    return [c for c in facts.vpn_connections or () if c.all_user_connection and uses_machine_certificate(c)]


def xml_flag(xml: str | None, path: str) -> str | None:
    """A ProfileXML element's text, or None when absent or the XML is unreadable."""
    if xml is None:
        return None
    try:
        return profile_text(xml, path)
    except ProfileXmlError:
        return None


def is_true(value: str | None) -> bool:
    """An XML boolean as Windows reads it (``true``, any case)."""
    return value is not None and value.strip().casefold() == "true"


def mdm_device_tunnels(facts: EndpointFacts) -> Iterator[str]:
    """Names of the Intune-delivered profiles that are device tunnels (``<DeviceTunnel>true``)."""
    for profile in facts.mdm_vpn_profiles or ():
        if is_true(xml_flag(profile.profile_xml, "DeviceTunnel")):
            yield profile.name


def needs_machine_certificate(facts: EndpointFacts) -> bool:
    """True when a profile authenticates with the machine certificate, or when it cannot be told."""
    if facts.vpn_connections is None and facts.mdm_vpn_profiles is None:
        return True
    return bool(device_tunnels(facts)) or any(True for _ in mdm_device_tunnels(facts))


def uses_ikev2(facts: EndpointFacts) -> bool:
    """True when a profile may negotiate IKEv2 (then the VPN server's chain must be trusted), or unknown."""
    if facts.vpn_connections is None and facts.mdm_vpn_profiles is None:
        return True
    local = any((c.tunnel_type or "").casefold() in IKEV2_TUNNELS for c in facts.vpn_connections or ())
    delivered = any(
        (xml_flag(p.profile_xml, "NativeProfile/NativeProtocolType") or "").casefold() in IKEV2_TUNNELS
        for p in facts.mdm_vpn_profiles or ()
    )
    return local or delivered


def present_profile_names(facts: EndpointFacts) -> set[str] | None:
    """Case-folded names of the VPN connections that exist on the device; None if not collected."""
    if facts.vpn_connections is None and facts.phonebook_entries is None:
        return None
    names = {c.name.casefold() for c in facts.vpn_connections or ()}
    names |= {entry.name.casefold() for entry in facts.phonebook_entries or ()}
    return names


__all__ = [
    "device_tunnels",
    "is_true",
    "mdm_device_tunnels",
    "needs_machine_certificate",
    "present_profile_names",
    "uses_eap",
    "uses_ikev2",
    "uses_machine_certificate",
    "xml_flag",
]
