"""``endpoint.facts``: what one Windows 10/11 endpoint knows about its Always On VPN setup.

One WinRM session, one document.  Per-user VPN connections cannot be read over WinRM (the session
is the admin's, not the user's, and the WMI bridge needs SYSTEM), so the probe reports the
all-user connections in full, every phonebook entry name (all-user and per-user ``rasphone.pbk``),
and the ProfileXML that Intune intends for each profile (the MDM NodeCache), which covers user
tunnels delivered by Intune.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from orchestrator.facts.common import CertificateEntry, FactsDocument, OsInfo
from orchestrator.scripts.schemas import ScriptOutput


class ConnectionRoute(ScriptOutput):
    """A route of a VPN connection as configured (``Get-VpnConnection ... | Select -Expand Routes``)."""

    destination_prefix: str = Field(description="as Windows shows it, e.g. 172.21.12.0/21 or fd00::/48")
    route_metric: int | None


class IpsecPolicy(ScriptOutput):
    """A custom IKEv2 policy (PowerShell enum names, e.g. GCMAES128, SHA256, Group14, ECP256)."""

    authentication_transform_constants: str | None
    cipher_transform_constants: str | None
    encryption_method: str | None
    integrity_check_method: str | None
    pfs_group: str | None
    dh_group: str | None


class VpnConnection(ScriptOutput):
    """``Get-VpnConnection -AllUserConnection``: one all-user VPN profile (device tunnel included)."""

    name: str
    guid: str | None
    all_user_connection: bool
    server_address: str | None
    tunnel_type: str | None = Field(description="Automatic, Ikev2, Sstp, L2tp, Pptp")
    authentication_method: tuple[str, ...] = Field(description="e.g. [MachineCertificate] or [Eap]")
    split_tunneling: bool
    connection_status: str | None = Field(description="Connected, Disconnected")
    dns_suffix: str | None
    routes: tuple[ConnectionRoute, ...]
    machine_certificate_eku_filter: tuple[str, ...]
    ipsec_custom_policy: IpsecPolicy | None
    profile_type: str | None


class PhonebookEntry(ScriptOutput):
    """An entry name in a ``rasphone.pbk``: the all-user phonebook or one user's."""

    scope: Literal["all_users", "user"]
    user: str | None = Field(description="profile folder name under C:\\Users for scope user, else null")
    name: str


class MdmVpnProfile(ScriptOutput):
    """A VPNv2 ProfileXML that Intune delivered (NodeCache ``NodeUri`` + ``ExpectedValue``)."""

    scope: Literal["device", "user"]
    sid: str | None = Field(description="the user's SID for scope user, else null")
    name: str = Field(description="profile name, URL-decoded from the node URI")
    node_uri: str
    profile_xml: str | None = Field(description="ExpectedValue; null when the cache holds none")


class NetRoute(ScriptOutput):
    """A row of the active routing table (``Get-NetRoute``)."""

    destination_prefix: str
    interface_alias: str
    interface_index: int
    next_hop: str
    route_metric: int
    address_family: Literal["IPv4", "IPv6"]


class EventRecord(ScriptOutput):
    """A Windows event as raw data; fleetfix parses codes and names on its side (messages are localized)."""

    event_id: int
    time: AwareDatetime
    data: tuple[str, ...] = Field(description="EventData values in order, as text")
    message: str | None = Field(description="rendered message, at most 1024 characters; null if none")


class RasManConfig(ScriptOutput):
    """``HKLM:\\SYSTEM\\CurrentControlSet\\Services\\RasMan\\Config`` values about auto-trigger."""

    auto_trigger_disabled_profiles: tuple[str, ...]
    auto_trigger_profile_entry_name: str | None
    user_sid: str | None


class EndpointFacts(FactsDocument):
    """The document ``endpoint.facts`` prints (docs/facts.md)."""

    domain: str | None = Field(description="Win32_ComputerSystem.Domain when joined, else null")
    part_of_domain: bool
    os: OsInfo
    certificates: tuple[CertificateEntry, ...] | None
    vpn_connections: tuple[VpnConnection, ...] | None
    phonebook_entries: tuple[PhonebookEntry, ...] | None
    mdm_vpn_profiles: tuple[MdmVpnProfile, ...] | None
    routes: tuple[NetRoute, ...] | None
    ras_events: tuple[EventRecord, ...] | None = Field(
        description="RasClient 20225/20226/20227 in the Application log, newest first"
    )
    mdm_events: tuple[EventRecord, ...] | None = Field(
        description="DeviceManagement-Enterprise-Diagnostics-Provider/Admin 404 mentioning VPNv2"
    )
    rasman: RasManConfig | None


__all__ = [
    "ConnectionRoute",
    "EndpointFacts",
    "EventRecord",
    "IpsecPolicy",
    "MdmVpnProfile",
    "NetRoute",
    "PhonebookEntry",
    "RasManConfig",
    "VpnConnection",
]
