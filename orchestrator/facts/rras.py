"""``rras.facts``: an RRAS VPN server's authentication, certificates, IKEv2 and service settings."""

from __future__ import annotations

from pydantic import Field

from orchestrator.facts.common import Base64Der, CertificateEntry, FactsDocument, OsInfo, ServiceState
from orchestrator.scripts.schemas import ScriptOutput


class VpnAuthProtocol(ScriptOutput):
    """``Get-VpnAuthProtocol``; certificates as DER (the cmdlet surfaces them as X509Certificate2)."""

    user_auth_protocol_accepted: tuple[str, ...] = Field(description="e.g. [EAP, Certificate]")
    tunnel_auth_protocols_advertised: str | None = Field(description="Certificates or PreSharedKey")
    root_certificate_der: Base64Der | None = Field(description="RootCertificateNameToAccept; null if unset")
    certificate_advertised_der: Base64Der | None
    certificate_ekus_to_accept: tuple[str, ...]


class Ikev2ServerPolicy(ScriptOutput):
    """``Get-VpnServerConfiguration -TunnelType IKEv2`` (PowerShell enum names as text)."""

    custom_policy: bool | None
    authentication_transform_constants: str | None
    cipher_transform_constants: str | None
    encryption_method: str | None
    integrity_check_method: str | None
    pfs_group: str | None
    dh_group: str | None
    sa_lifetime_seconds: int | None
    mm_sa_lifetime_seconds: int | None
    sa_data_size_kilobytes: int | None


class RrasRegistry(ScriptOutput):
    """DWORDs that change IKEv2 behaviour; null when the value does not exist (the default applies)."""

    cert_auth_flags: int | None = Field(description="Ikev2\\CertAuthFlags; 4 = CRL check enforced")
    enable_server_fragmentation: int | None
    ike_num_established_for_initial_query: int | None = Field(description="IKEEXT\\Parameters")
    ipv6_disabled_components: int | None = Field(description="Tcpip6\\Parameters\\DisabledComponents")


class RrasFacts(FactsDocument):
    """The document ``rras.facts`` prints (docs/facts.md)."""

    os: OsInfo
    certificates: tuple[CertificateEntry, ...] | None
    auth_protocol: VpnAuthProtocol | None
    ikev2_policy: Ikev2ServerPolicy | None
    registry: RrasRegistry | None
    sstp_certificate_der: Base64Der | None = Field(description="(Get-RemoteAccess).SslCertificate")
    services: tuple[ServiceState, ...] | None = Field(description="RemoteAccess and IKEEXT")


__all__ = ["Ikev2ServerPolicy", "RrasFacts", "RrasRegistry", "VpnAuthProtocol"]
