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


__all__ = [
    "CaStore",
    "CertPulseResult",
    "EnrolledCertificate",
    "ImportCertificateResult",
    "RemoveCertificateResult",
    "SetVpnRouteResult",
    "Thumbprint",
]
