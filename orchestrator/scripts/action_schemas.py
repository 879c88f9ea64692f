"""The output schema of every shipped *action* script: what it changed, as a pydantic model.

An action script reads the current state first and does nothing when it is already right, so every
document says whether it ``changed`` anything and carries the state the action's journal keeps
(before and after).  The models share the probes' base (:class:`ScriptOutput`): strict, frozen,
unknown keys refused.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from orchestrator.scripts.schemas import ScriptOutput

# -- endpoint actions ---------------------------------------------------------------------------

Thumbprint = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{40}$")]
"""A certificate thumbprint as ``Cert:\\`` shows it: SHA-1 of the DER, 40 upper-case hex digits."""

CaStore = Literal["Root", "CA"]
"""The LocalMachine stores CA certificates go to: trusted roots and intermediate CAs."""


class SetVpnRouteResult(ScriptOutput):
    """``endpoint.set-vpn-route``: one split-tunnel route of a VPN connection replaced."""

    connection: str = Field(description="the connection's name as Windows spells it")
    changed: bool
    routes_before: tuple[str, ...] = Field(description="destination prefixes before, in profile order")
    routes_after: tuple[str, ...] = Field(description="destination prefixes after, in profile order")


class ImportCertificateResult(ScriptOutput):
    """``endpoint.import-certificate``: a CA certificate in LocalMachine Root or CA."""

    store: CaStore
    thumbprint: Thumbprint
    subject: str = Field(description="X509Certificate2.Subject, e.g. 'CN=Contoso Root CA, O=Contoso'")
    changed: bool = Field(description="false when the store already held the certificate")


class RemoveCertificateResult(ScriptOutput):
    """``endpoint.remove-certificate``: a certificate gone from LocalMachine Root or CA."""

    store: CaStore
    thumbprint: Thumbprint
    changed: bool = Field(description="false when the store did not hold the certificate")


class EnrolledCertificate(ScriptOutput):
    """A machine certificate that autoenrollment put into LocalMachine\\My."""

    thumbprint: Thumbprint
    subject: str
    not_after: AwareDatetime
    der: str = Field(min_length=4, pattern=r"^[A-Za-z0-9+/]+={0,2}$", description="base64 DER")


class CertPulseResult(ScriptOutput):
    """``endpoint.cert-pulse``: machine autoenrollment triggered, and the certificate it brought."""

    triggered: bool = Field(description="false when a suitable certificate issued since NotBefore was there")
    certificate: EnrolledCertificate | None = Field(
        description="the newest suitable certificate issued since NotBefore; null if none arrived in time"
    )
    changed: bool


# -- RRAS and CA actions (orchestrator/actions/server.py) -------------------------------------------


class SetRootCertResult(ScriptOutput):
    """``rras.set-root-cert``: ``Set-VpnAuthProtocol -RootCertificateNameToAccept``, read back."""

    changed: bool
    before_thumbprint: Thumbprint | None = Field(
        description="RootCertificateNameToAccept before; null if unset"
    )
    after_thumbprint: Thumbprint = Field(description="read back from Get-VpnAuthProtocol after the call")
    pending_restart: bool | None = Field(
        description="true: RemoteAccess is running and keeps the old root until it restarts; null when "
        "nothing was changed (Windows cannot tell whether an earlier change still waits for a restart)"
    )
    changed_at: AwareDatetime | None = Field(
        description="host clock right after Set-VpnAuthProtocol (null when nothing was changed): a "
        "RemoteAccess start at or after it runs with the new root (rras.restart-service NotBefore)"
    )


class RestartServiceResult(ScriptOutput):
    """``rras.restart-service``: ``Restart-Service`` unless it was (re)started at or after NotBefore."""

    name: str = Field(min_length=1, description="the service name as the SCM spells it")
    changed: bool = Field(description="false: it was running since NotBefore already and was left alone")
    status: str = Field(description="ServiceControllerStatus name after the call, e.g. Running")
    started_at: AwareDatetime | None = Field(
        description="start of the service's process (Get-Process StartTime); null when it is not running"
    )
    sessions_dropped: int | None = Field(
        ge=0,
        description="RemoteAccess sessions up just before the restart "
        "(Get-RemoteAccessConnectionStatistics); null for a no-op, another service, or when unknown",
    )


class CrlSummary(ScriptOutput):
    """A CRL file in the CA's CertEnroll folder, as its DER reads."""

    file: str = Field(min_length=1, description="file name, e.g. Contoso Issuing CA 01.crl")
    crl_number: int | None = Field(ge=0, description="the CRL Number extension; null if absent")
    this_update: AwareDatetime
    next_update: AwareDatetime | None


class PublishCrlResult(ScriptOutput):
    """``ca.publish-crl``: ``certutil -crl`` unless a base CRL with thisUpdate >= NotBefore is published."""

    changed: bool
    previous_base: CrlSummary | None = Field(description="the newest base CRL before the call; null if none")
    base: CrlSummary = Field(description="the newest base CRL after the call")
    delta: CrlSummary | None = Field(description="the newest delta CRL after the call; null if none")
    published_to: tuple[str, ...] = Field(
        description="where this call's CRLs went: each publication location (CRLPublicationURLs with the "
        "publish flags) and each distribution point URL certificates name for them; empty for a no-op"
    )


__all__ = [
    "CaStore",
    "CertPulseResult",
    "CrlSummary",
    "EnrolledCertificate",
    "ImportCertificateResult",
    "PublishCrlResult",
    "RemoveCertificateResult",
    "RestartServiceResult",
    "SetRootCertResult",
    "SetVpnRouteResult",
    "Thumbprint",
]
