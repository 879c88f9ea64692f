"""Pieces every probe document shares: the versioned base, certificates as DER, OS, services, errors.

Probes print facts, not judgements: certificates travel as base64 DER and are parsed on our side
(:mod:`orchestrator.facts.x509`), times are ISO 8601 strings in UTC that the probe formats itself
(Windows PowerShell 5.1 would print ``"\\/Date(...)\\/"``), enums are names, not numbers.

A probe gathers its host's facts in *sections*; a section that fails (a cmdlet missing, access
denied) leaves its field ``null`` and adds a :class:`SectionError`, so one broken corner of a host
never hides the rest.  Checks treat ``None`` as "not collected", never as "empty".
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, StringConstraints

from orchestrator.scripts.schemas import ScriptOutput

FACTS_SCHEMA_VERSION = 1
"""Bumped on any incompatible change of a probe document; stored facts carry the version they had."""

Base64Der = Annotated[
    str,
    StringConstraints(min_length=4, pattern=r"^[A-Za-z0-9+/]+={0,2}$"),
]
"""A certificate or CRL as Windows stores it (DER), base64 without line breaks (.NET ToBase64String)."""

CertStore = Literal["My", "Root", "CA"]
"""LocalMachine stores: personal (``My``), trusted roots (``Root``), intermediate CAs (``CA``)."""


class CertificateEntry(ScriptOutput):
    """One certificate of a LocalMachine store; the private key is the one fact DER cannot carry."""

    store: CertStore
    der: Base64Der
    has_private_key: bool


class OsInfo(ScriptOutput):
    """``HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion`` plus the WMI caption."""

    caption: str = Field(description="Win32_OperatingSystem.Caption")
    build: int = Field(ge=0, description="CurrentBuildNumber, e.g. 22000")
    ubr: int = Field(ge=0, description="update build revision, e.g. 469")
    display_version: str | None = Field(description="DisplayVersion, e.g. 23H2; absent before 20H2")
    edition_id: str | None = Field(description="EditionID, e.g. Enterprise")


class ServiceState(ScriptOutput):
    """A Windows service; ``status`` and ``start_type`` are the .NET enum names (Running, Automatic)."""

    name: str
    status: str
    start_type: str | None


class SectionError(ScriptOutput):
    """A section of the probe that failed; its field in the document is ``null``."""

    section: str
    message: str


class FactsDocument(ScriptOutput):
    """Base of every probe document: versioned, timestamped by the host, with section errors."""

    schema_version: Literal[1]
    collected_at: AwareDatetime = Field(description="host clock, UTC")
    computer_name: str = Field(min_length=1, description="$env:COMPUTERNAME")
    fqdn: str = Field(min_length=1, description="lower case")
    errors: tuple[SectionError, ...] = ()

    def failed(self, section: str) -> bool:
        return any(error.section == section for error in self.errors)


__all__ = [
    "FACTS_SCHEMA_VERSION",
    "Base64Der",
    "CertStore",
    "CertificateEntry",
    "FactsDocument",
    "OsInfo",
    "SectionError",
    "ServiceState",
]
