"""A simulated fleet as data: hosts, their listeners, accounts and injected faults.

Everything here is a frozen pydantic model, so a fleet can come from Python code (tests), from a
JSON/YAML file (``python -m lab serve --config fleet.json``, a later ``fleetfix lab up``) or be sent
to a lab subprocess unchanged (``FleetConfig.model_dump_json()``).
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

ROLE_NAMES = ("endpoint", "rras", "ca")
LAB_USERNAME = "fleetfix"
LAB_PASSWORD = "Lab-Passw0rd!"  # noqa: S105 (the simulated hosts' default account, loopback only)


class AuthMode(StrEnum):
    """Authentication schemes a listener accepts, as WinRM's ``Service/Auth`` settings name them."""

    BASIC = "basic"
    NTLM = "ntlm"
    NEGOTIATE = "negotiate"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Frozen):
    """A local or domain account allowed to open shells on a host.

    ``username`` is compared case-insensitively, as Windows does; ``DOMAIN\\user`` and ``user``
    are different accounts.  NTLM checks passwords through one process-wide credential file (see
    :mod:`lab.auth`), so an account name must have the same password on every host of a lab,
    like a domain account.
    """

    username: str = Field(min_length=1)
    password: str


class Latency(_Frozen):
    """Delay added to every WS-Management round trip: ``fixed_ms`` plus uniform ``[0, jitter_ms)``."""

    fixed_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)


class Flap(_Frozen):
    """The listener goes away for ``down_s`` out of every ``period_s`` seconds (connections refused)."""

    period_s: float = Field(gt=0)
    down_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _down_within_period(self) -> Flap:
        if self.down_s >= self.period_s:
            raise ValueError("down_s must be shorter than period_s")
        return self


class FaultSpec(_Frozen):
    """Injected misbehaviour of one host.  The default is a healthy host.

    Transport faults act on connections and HTTP; script faults act on every pipeline the host runs
    (a real host with a broken WMI repository or a full disk fails every probe, too).
    """

    latency: Latency = Latency()
    refuse: bool = Field(default=False, description="nothing listens: connections are refused")
    hang: bool = Field(default=False, description="the listener accepts but never answers")
    auth_failure: bool = Field(default=False, description="every credential is refused with 401")
    flap: Flap | None = None
    max_shells: int | None = Field(
        default=None, ge=0, description="WinRM MaxShellsPerUser; Create beyond it is a QuotaLimit fault"
    )
    slow_command_s: float = Field(default=0.0, ge=0, description="each pipeline runs this long first")
    terminating_error: str | None = Field(default=None, description="every script throws this message")
    error_records: tuple[str, ...] = Field(
        default=(), description="non-terminating errors written to the error stream before the output"
    )
    malformed_output: bool = Field(default=False, description="scripts print truncated JSON")
    oversized_output_bytes: int = Field(
        default=0, ge=0, description="scripts print one string of this many bytes instead of their JSON"
    )


class HostConfig(_Frozen):
    """One simulated Windows host.

    A host has an HTTP listener (5985 on Windows), an HTTPS listener (5986), or both.  Port 0 lets
    the operating system pick a free port; :class:`lab.runtime.HostEndpoint` reports the real one.
    Plain-HTTP Basic authentication (and unencrypted Negotiate) is refused unless
    ``allow_unencrypted`` is set, like WinRM's ``Service/AllowUnencrypted``.
    """

    name: str = Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
    domain: str = "lab.fleetfix.test"
    role: str = "endpoint"
    address: str = "127.0.0.1"
    http_port: int | None = Field(default=0, ge=0, le=65535)
    https_port: int | None = Field(default=None, ge=0, le=65535)
    auth: tuple[AuthMode, ...] = (AuthMode.NEGOTIATE, AuthMode.NTLM, AuthMode.BASIC)
    allow_unencrypted: bool = False
    # The lab's well-known account: loopback only, never a real secret.
    accounts: tuple[Account, ...] = (Account(username=LAB_USERNAME, password=LAB_PASSWORD),)
    os_caption: str = "Microsoft Windows 11 Enterprise"
    os_build: int = 22631
    os_ubr: int = 4460
    ps_version: str = "5.1.22621.4391"
    faults: FaultSpec = FaultSpec()

    @property
    def fqdn(self) -> str:
        return f"{self.name}.{self.domain}".lower() if self.domain else self.name.lower()

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        if value not in ROLE_NAMES:
            raise ValueError(f"role must be one of {', '.join(ROLE_NAMES)}")
        return value

    @field_validator("address")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        # The lab is a test double: it never listens beyond loopback.
        if not ipaddress.ip_address(value).is_loopback:
            raise ValueError("the lab only binds loopback addresses (127.0.0.0/8, ::1)")
        return value

    @model_validator(mode="after")
    def _has_listener(self) -> HostConfig:
        if self.http_port is None and self.https_port is None:
            raise ValueError("a host needs an http_port, an https_port or both")
        return self


class FleetConfig(_Frozen):
    """A lab: its hosts and the seed that makes its PKI and jitter reproducible."""

    hosts: Annotated[tuple[HostConfig, ...], Field(min_length=1)]
    seed: str = "fleetfix-lab"

    @model_validator(mode="after")
    def _unique_names(self) -> FleetConfig:
        seen: set[str] = set()
        for host in self.hosts:
            key = host.name.lower()
            if key in seen:
                raise ValueError(f"duplicate host name {host.name!r}")
            seen.add(key)
        return self


def numbered_fleet(
    count: int,
    *,
    prefix: str = "EP",
    template: HostConfig | None = None,
    seed: str = "fleetfix-lab",
    own_addresses: bool = False,
) -> FleetConfig:
    """``count`` hosts named ``EP-0001`` … built from one template.

    By default every host shares the template's address and gets its own port (port 0: the OS
    picks).  With ``own_addresses`` host *i* listens on ``127.1.x.y`` instead, so a template with
    ports 5985/5986 gives every host the real WinRM ports on an address of its own.
    """
    if own_addresses and count > 65_535:
        raise ValueError("127.1.0.0/16 has room for 65,535 hosts")
    base = template or HostConfig(name="TEMPLATE")
    width = max(4, len(str(count)))
    hosts = []
    for i in range(1, count + 1):
        update: dict[str, object] = {"name": f"{prefix}-{i:0{width}d}"}
        if own_addresses:
            update["address"] = f"127.1.{i >> 8}.{i & 0xFF}"
        hosts.append(HostConfig.model_validate(base.model_dump() | update))
    return FleetConfig(hosts=tuple(hosts), seed=seed)
