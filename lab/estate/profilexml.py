"""VPNv2 ProfileXML as Intune delivers it for the estate's tunnels (the device tunnel's custom profile).

Element order follows Richard Hicks' ``ProfileXML_Device.xml`` sample, which Windows 11 requires;
the CryptographySuite uses the ProfileXML spellings (``AES_GCM_128``), not PowerShell's
(``GCMAES128``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from xml.sax.saxutils import escape


def split_prefix(prefix: str) -> tuple[str, int]:
    """``"172.21.12.0/21"`` -> ``("172.21.12.0", 21)``, keeping host bits as written."""
    address, _, size = prefix.partition("/")
    return address, int(size) if size else (128 if ":" in address else 32)


def route_elements(routes: Sequence[str]) -> str:
    parts = []
    for prefix in routes:
        address, size = split_prefix(prefix)
        parts.append(f"<Route><Address>{escape(address)}</Address><PrefixSize>{size}</PrefixSize></Route>")
    return "".join(parts)


def device_tunnel_xml(servers: Sequence[str], routes: Sequence[str]) -> str:
    """The device tunnel: IKEv2, machine certificate, split tunnel, always on."""
    server_list = ";".join(servers)
    return (
        "<VPNProfile>"
        "<NativeProfile>"
        f"<Servers>{escape(server_list)}</Servers>"
        "<NativeProtocolType>IKEv2</NativeProtocolType>"
        "<Authentication><MachineMethod>Certificate</MachineMethod></Authentication>"
        "<RoutingPolicyType>SplitTunnel</RoutingPolicyType>"
        "<DisableClassBasedDefaultRoute>true</DisableClassBasedDefaultRoute>"
        "<CryptographySuite>"
        "<AuthenticationTransformConstants>GCMAES128</AuthenticationTransformConstants>"
        "<CipherTransformConstants>GCMAES128</CipherTransformConstants>"
        "<EncryptionMethod>AES_GCM_128</EncryptionMethod>"
        "<IntegrityCheckMethod>SHA256</IntegrityCheckMethod>"
        "<DHGroup>Group14</DHGroup>"
        "<PfsGroup>ECP256</PfsGroup>"
        "</CryptographySuite>"
        "</NativeProfile>"
        f"{route_elements(routes)}"
        "<AlwaysOn>true</AlwaysOn>"
        "<DeviceTunnel>true</DeviceTunnel>"
        "<RegisterDNS>true</RegisterDNS>"
        "</VPNProfile>"
    )


def user_tunnel_xml(servers: Sequence[str], routes: Sequence[str], dns_suffix: str) -> str:
    """The user tunnel as custom XML: IKEv2 first then SSTP, EAP with a user certificate."""
    server_list = ";".join(servers)
    return (
        "<VPNProfile>"
        f"<DnsSuffix>{escape(dns_suffix)}</DnsSuffix>"
        "<NativeProfile>"
        f"<Servers>{escape(server_list)}</Servers>"
        "<NativeProtocolType>Automatic</NativeProtocolType>"
        "<Authentication><UserMethod>Eap</UserMethod><MachineMethod>Eap</MachineMethod></Authentication>"
        "<RoutingPolicyType>SplitTunnel</RoutingPolicyType>"
        "<DisableClassBasedDefaultRoute>true</DisableClassBasedDefaultRoute>"
        "</NativeProfile>"
        f"{route_elements(routes)}"
        "<AlwaysOn>true</AlwaysOn>"
        "<RememberCredentials>true</RememberCredentials>"
        "<TrustedNetworkDetection>" + escape(dns_suffix) + "</TrustedNetworkDetection>"
        "</VPNProfile>"
    )


def host_bits(prefix: str) -> bool:
    """True when the prefix is a host address within its network (``172.21.12.0/21``)."""
    try:
        ipaddress.ip_network(prefix, strict=True)
    except ValueError:
        return True
    return False


__all__ = ["device_tunnel_xml", "host_bits", "route_elements", "split_prefix", "user_tunnel_xml"]
