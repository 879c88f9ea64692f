"""An RRAS VPN server: ``Get-VpnAuthProtocol``, the IKEv2 policy, IKEv2 registry values, SSTP.

RRAS reads its configuration when the RemoteAccess service starts.  ``Set-VpnAuthProtocol`` and
``Set-VpnServerConfiguration`` change the stored configuration at once (``Get-`` shows the new
value) but the running service keeps the old one until ``Restart-Service RemoteAccess``; the
cmdlets warn "Configuration parameters will be modified after the Remote Access service is
restarted."  So every setting here exists twice: :attr:`RrasServer.configured` (what the
cmdlets and the registry show) and :attr:`RrasServer.effective` (what IKEv2 negotiations use).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from lab.windows.services import Services
from lab.windows.vpnclient import ENHANCED_POLICY, IpsecPolicy

RESTART_WARNING = "Configuration parameters will be modified after the Remote Access service is restarted."
REMOTE_ACCESS = "RemoteAccess"


@dataclass(frozen=True)
class AuthProtocol:
    """What ``Get-VpnAuthProtocol`` returns; certificates as DER."""

    user_auth_protocols: tuple[str, ...] = ("EAP", "Certificate")
    tunnel_auth_advertised: str = "Certificates"
    root_certificate_der: bytes | None = None
    certificate_advertised_der: bytes | None = None
    certificate_ekus_to_accept: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServerPolicy:
    """``Get-VpnServerConfiguration -TunnelType IKEv2``: the custom IKEv2 policy, if any."""

    custom_policy: bool = True
    policy: IpsecPolicy = ENHANCED_POLICY
    sa_lifetime_seconds: int = 28800
    mm_sa_lifetime_seconds: int = 86400
    sa_data_size_kilobytes: int = 1024000


@dataclass(frozen=True)
class RrasRegistry:
    """IKEv2 DWORDs; ``None`` when the value does not exist."""

    cert_auth_flags: int | None = 4  # revocation of device certificates enforced
    enable_server_fragmentation: int | None = 1
    ike_num_established_for_initial_query: int | None = None
    ipv6_disabled_components: int | None = None


@dataclass(frozen=True)
class RrasConfig:
    """Everything RRAS reads when it starts."""

    auth: AuthProtocol = AuthProtocol()
    ikev2: ServerPolicy = ServerPolicy()
    registry: RrasRegistry = RrasRegistry()


@dataclass
class RrasServer:
    """One VPN server: the public name clients dial, its configuration stored and in effect."""

    public_fqdn: str
    configured: RrasConfig = field(default_factory=RrasConfig)
    effective: RrasConfig = field(default_factory=RrasConfig)
    sstp_certificate_der: bytes | None = None
    dropped_sessions: int = 0
    restarts: list[datetime.datetime] = field(default_factory=list)

    @classmethod
    def started_with(cls, public_fqdn: str, config: RrasConfig) -> RrasServer:
        """A server whose service started with ``config`` (nothing pending)."""
        return cls(public_fqdn=public_fqdn, configured=config, effective=config)

    @property
    def pending_restart(self) -> bool:
        return self.configured != self.effective

    def set_auth_protocol(self, **changes: Any) -> str:
        """``Set-VpnAuthProtocol``: stored now, in effect after a restart; returns the warning."""
        self.configured = replace(self.configured, auth=replace(self.configured.auth, **changes))
        return RESTART_WARNING

    def set_ikev2_policy(self, policy: ServerPolicy) -> str:
        self.configured = replace(self.configured, ikev2=policy)
        return RESTART_WARNING

    def set_registry(self, **changes: Any) -> None:
        """A registry write; RRAS reads it at its next start, like the cmdlets' settings."""
        self.configured = replace(self.configured, registry=replace(self.configured.registry, **changes))


def restart_remote_access(
    services: Services, server: RrasServer, now: datetime.datetime, sessions: int
) -> None:
    """``Restart-Service RemoteAccess``: the stored configuration takes effect, every session drops."""
    services.restart(REMOTE_ACCESS, now)
    server.effective = server.configured
    server.dropped_sessions += sessions
    server.restarts.append(now)


__all__ = [
    "REMOTE_ACCESS",
    "RESTART_WARNING",
    "AuthProtocol",
    "RrasConfig",
    "RrasRegistry",
    "RrasServer",
    "ServerPolicy",
    "restart_remote_access",
]
