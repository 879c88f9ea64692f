"""A scenario as data: the fleet's shape, the faults to inject, the tenant, outside certificates.

Scenario files are YAML written by people (``lab/scenarios/*.yaml`` ship with fleetfix; admins
write their own to reproduce a customer's estate), so every model here forbids unknown keys and
:func:`lab.scenarios.load_scenario` reports problems as ``file:line: field: message``.

Faults are chosen per host **by name**, **by count** (exactly N eligible hosts) or **by rate** (a
share of the eligible hosts, rounded, at least one when the rate is above zero).  Selection is
deterministic from the scenario seed, and a host gets at most one fault from the random mix, so
one fault's symptoms never mask another's; named hosts may carry several.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab.config import FaultSpec
from lab.estate.faults import FAULTS


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Selection(_Model):
    """Which hosts something applies to: exactly one of ``hosts``, ``count`` or ``rate``."""

    hosts: tuple[str, ...] = ()
    count: int | None = Field(default=None, ge=1)
    rate: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _one_way(self) -> Selection:
        given = sum((bool(self.hosts), self.count is not None, self.rate is not None))
        if given != 1:
            raise ValueError("choose hosts with exactly one of 'hosts', 'count' or 'rate'")
        return self


class FaultEntry(Selection):
    """One kind of misconfiguration and where it goes (see ``fleetfix lab scenarios`` for types)."""

    type: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in FAULTS:
            known = ", ".join(sorted(FAULTS))
            raise ValueError(f"unknown fault type {value!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _params_known(self) -> FaultEntry:
        allowed = FAULTS[self.type].params
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            expected = ", ".join(allowed) or "none"
            raise ValueError(f"unknown parameter {unknown[0]!r} for {self.type}; expected: {expected}")
        return self


class TransportFaultEntry(Selection):
    """WinRM-level misbehaviour of some hosts (latency, refused or hanging listeners, …)."""

    role: Literal["endpoint", "rras", "ca"] | None = None
    faults: FaultSpec


class OsShare(_Model):
    """A share of the endpoints running one Windows build."""

    caption: str = "Microsoft Windows 11 Enterprise"
    build: int = Field(ge=7600)
    ubr: int = Field(ge=0)
    display_version: str | None = None
    weight: float = Field(default=1.0, gt=0)


DEFAULT_OS_MIX = (
    OsShare(
        caption="Microsoft Windows 10 Enterprise", build=19045, ubr=5487, display_version="22H2", weight=45
    ),
    OsShare(build=22631, ubr=4890, display_version="23H2", weight=35),
    OsShare(build=26100, ubr=2894, display_version="24H2", weight=20),
)


class FleetShape(_Model):
    """How many hosts of each role, and the names of the deployment."""

    endpoints: int = Field(default=10, ge=0, le=65_000)
    rras: int = Field(default=2, ge=0, le=64)
    ca: int = Field(default=1, ge=0, le=8)
    domain: str = "corp.contoso.test"
    public_fqdn: str = "vpn.contoso.test"
    organization: str = "Contoso"
    os_mix: tuple[OsShare, ...] = Field(default=DEFAULT_OS_MIX, min_length=1)


class WinRMShape(_Model):
    """How the simulated hosts listen.

    ``addressing: per-host`` gives host *i* its own loopback address (``127.x.y.z``) on the real
    WinRM port, as a real fleet looks; ``shared`` puts every host on ``127.0.0.1`` with a port of
    its own (the OS picks).
    """

    transport: Literal["https", "http"] = "https"
    auth: Literal["ntlm", "negotiate", "basic"] = "ntlm"
    addressing: Literal["per-host", "shared"] = "per-host"
    network: int = Field(
        default=1, ge=1, le=250, description="per-host: endpoints on 127.<network>.x.y, RRAS +1, CAs +2"
    )


class TenantShape(_Model):
    """The Intune tenant: which endpoints are enrolled and the VPN profiles it assigns."""

    enabled: bool = True
    enrolled: float = Field(default=1.0, ge=0, le=1, description="share of endpoints that are Intune devices")
    sync_delay_s: float = Field(default=2.0, ge=0)
    device_tunnel: Literal["custom", "local"] = Field(
        default="custom", description="ProfileXML from Intune (./Device) or a local deployment script"
    )
    user_tunnel: Literal["native", "custom"] = "native"
    user_routes: tuple[str, ...] = ("10.0.0.0/8", "172.21.8.0/21")
    device_routes: tuple[str, ...] = ("10.10.1.10/32", "10.10.1.11/32", "10.10.2.0/24")


class OutsideCertificate(_Model):
    """A PEM or DER certificate file placed on a host (a customer's broken certificate, say)."""

    host: str
    file: Path
    store: Literal["My", "Root", "CA"] = "My"
    has_private_key: bool = True
    replace: bool = Field(default=True, description="My only: remove the device or server certificate first")


class OutsideCrl(_Model):
    """A PEM or DER CRL file published by a CA host (CertEnroll and the HTTP distribution point)."""

    host: str
    file: Path


class Scenario(_Model):
    """Everything ``fleetfix lab up`` builds."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    seed: str = "fleetfix-lab"
    fleet: FleetShape = FleetShape()
    winrm: WinRMShape = WinRMShape()
    tenant: TenantShape = TenantShape()
    faults: tuple[FaultEntry, ...] = ()
    transport_faults: tuple[TransportFaultEntry, ...] = ()
    certificates: tuple[OutsideCertificate, ...] = ()
    crls: tuple[OutsideCrl, ...] = ()
    source: Annotated[Path | None, Field(exclude=True)] = None


__all__ = [
    "DEFAULT_OS_MIX",
    "FaultEntry",
    "FleetShape",
    "OsShare",
    "OutsideCertificate",
    "OutsideCrl",
    "Scenario",
    "Selection",
    "TenantShape",
    "TransportFaultEntry",
    "WinRMShape",
]
