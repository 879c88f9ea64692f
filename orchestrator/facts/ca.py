"""``ca.facts``: an AD CS issuing (or root) CA: its certificates, CRLs and CRL schedule."""

from __future__ import annotations

from pydantic import Field

from orchestrator.facts.common import Base64Der, CertificateEntry, FactsDocument, OsInfo, ServiceState
from orchestrator.scripts.schemas import ScriptOutput


class CrlFile(ScriptOutput):
    """A CRL the CA published into its local folder (``%SystemRoot%\\System32\\CertSrv\\CertEnroll``)."""

    file: str = Field(description="file name, e.g. Contoso Issuing CA.crl or Contoso Issuing CA+.crl (delta)")
    der: Base64Der


class CrlSchedule(ScriptOutput):
    """``CertSvc\\Configuration\\<CA>`` registry values (what ``certutil -getreg CA\\CRLPeriod`` shows)."""

    crl_period_units: int | None
    crl_period: str | None = Field(description="Hours, Days, Weeks, Months, Years")
    crl_overlap_units: int | None
    crl_overlap_period: str | None
    crl_delta_period_units: int | None
    crl_delta_period: str | None


class CaFacts(FactsDocument):
    """The document ``ca.facts`` prints (docs/facts.md)."""

    os: OsInfo
    ca_name: str | None = Field(description="CertSvc\\Configuration\\Active; null if no CA is installed")
    ca_certificates: tuple[Base64Der, ...] | None = Field(
        description="the CA's own signing certificates (CACertHash), oldest renewal first"
    )
    certificates: tuple[CertificateEntry, ...] | None = Field(description="LocalMachine Root and CA stores")
    crls: tuple[CrlFile, ...] | None
    crl_schedule: CrlSchedule | None
    publication_urls: tuple[str, ...] | None = Field(
        description="CRLPublicationURLs entries as stored, 'flags:url', e.g. '65:C:\\...\\%3%8%9.crl'"
    )
    services: tuple[ServiceState, ...] | None = Field(description="CertSvc")


__all__ = ["CaFacts", "CrlFile", "CrlSchedule"]
