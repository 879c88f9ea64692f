"""A simulated Intune tenant as data: app registrations, managed devices, VPN profiles, limits, faults.

Every model is a frozen pydantic model, so a tenant comes from Python code (tests), from a JSON or
YAML file (``python -m lab tenant --config tenant.yaml``) or travels unchanged to a child
process (``TenantConfig.model_dump_json()``).  Secrets here are *lab* material (loopback only); the
product side never reads them from this file.

``time_scale`` shrinks Intune's 20-second throttling windows so that tests and benchmarks of the
documented limits take seconds rather than minutes: with ``time_scale=0.05`` a window lasts one
second and ``Retry-After`` values shrink with it.  Everything else is configured in real seconds.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The application permissions (app roles) of Microsoft Graph that fleetfix's calls need.
ROLE_DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
ROLE_DEVICES_WRITE = "DeviceManagementManagedDevices.ReadWrite.All"
ROLE_DEVICES_PRIVILEGED = "DeviceManagementManagedDevices.PrivilegedOperations.All"
ROLE_CONFIG_READ = "DeviceManagementConfiguration.Read.All"
ROLE_CONFIG_WRITE = "DeviceManagementConfiguration.ReadWrite.All"
ALL_ROLES = (
    ROLE_DEVICES_READ,
    ROLE_DEVICES_WRITE,
    ROLE_DEVICES_PRIVILEGED,
    ROLE_CONFIG_READ,
    ROLE_CONFIG_WRITE,
)
ALL_DEVICES = "allDevices"
"""Assignment target meaning every managed device (Graph's ``allDevicesAssignmentTarget``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AppRegistration(_Frozen):
    """An Entra app registration that may ask for app-only tokens (client credentials).

    It authenticates with ``secret`` or with a client assertion signed by the key of
    ``certificate_pem`` (an RSA certificate, as Entra requires for assertions), or either.
    """

    client_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = "fleetfix"
    secret: str | None = None
    certificate_pem: str | None = None
    roles: tuple[str, ...] = ALL_ROLES

    @model_validator(mode="after")
    def _has_credential(self) -> AppRegistration:
        if self.secret is None and self.certificate_pem is None:
            raise ValueError("an app registration needs a secret, a certificate or both")
        return self


class Device(_Frozen):
    """One Intune managed device.  ``os_version`` is Windows' ``10.0.<build>.<ubr>``."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    device_name: str
    azure_ad_device_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    operating_system: str = "Windows"
    os_version: str = "10.0.22631.4460"
    user_principal_name: str = ""
    serial_number: str = ""
    model: str = "Virtual Machine"
    manufacturer: str = "Microsoft Corporation"
    compliance_state: str = "compliant"
    last_sync: str = "2024-05-01T10:00:00Z"
    groups: tuple[str, ...] = Field(default=(), description="Entra group ids the device is a member of")

    @property
    def os_build(self) -> tuple[int, int]:
        """(build, UBR) from ``os_version``; (0, 0) for a version that is not ``a.b.build.ubr``."""
        parts = self.os_version.split(".")
        if len(parts) == 4 and all(part.isdigit() for part in parts):
            return int(parts[2]), int(parts[3])
        return 0, 0


class Route(_Frozen):
    destination_prefix: str
    prefix_size: int = Field(ge=1, le=128)


class Server(_Frozen):
    address: str
    description: str = ""
    is_default_server: bool = True


class NativeVpnProfile(_Frozen):
    """A ``windows10VpnConfiguration`` (beta only in Graph)."""

    kind: Literal["native"] = "native"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = "AOVPN Device Tunnel"
    connection_name: str = "Contoso AOVPN"
    connection_type: str = "ikEv2"
    profile_target: str = "device"
    servers: tuple[Server, ...] = (Server(address="vpn.contoso.example", description="edge"),)
    routes: tuple[Route, ...] = ()
    enable_split_tunneling: bool = True
    enable_always_on: bool = True
    enable_device_tunnel: bool = True
    dns_suffixes: tuple[str, ...] = ()
    assignments: tuple[str, ...] = Field(default=(ALL_DEVICES,), description="group ids or 'allDevices'")


class CustomVpnProfile(_Frozen):
    """A ``windows10CustomConfiguration`` carrying a VPNv2 ProfileXML in one OMA-URI setting."""

    kind: Literal["custom"] = "custom"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    display_name: str = "AOVPN User Tunnel (ProfileXML)"
    oma_uri: str = "./User/Vendor/MSFT/VPNv2/Contoso%20AOVPN/ProfileXML"
    profile_xml: str
    assignments: tuple[str, ...] = Field(default=(ALL_DEVICES,), description="group ids or 'allDevices'")


Profile = Annotated[NativeVpnProfile | CustomVpnProfile, Field(discriminator="kind")]


class BucketLimits(_Frozen):
    """Requests allowed per window in one Intune service bucket (writes count toward ``any`` too)."""

    write_per_app: int = Field(ge=1)
    any_per_app: int = Field(ge=1)
    write_per_tenant: int = Field(ge=1)
    any_per_tenant: int = Field(ge=1)


class Limits(_Frozen):
    """Intune's documented throttling limits per 20 seconds (Graph docs, "Intune service limits")."""

    enabled: bool = True
    window_s: float = Field(default=20.0, gt=0)
    devices: BucketLimits = BucketLimits(
        write_per_app=200, any_per_app=2000, write_per_tenant=400, any_per_tenant=4000
    )
    configuration: BucketLimits = BucketLimits(
        write_per_app=100, any_per_app=1000, write_per_tenant=200, any_per_tenant=2000
    )


class ErrorBurst(_Frozen):
    """``count`` consecutive Graph requests answered ``status``, starting after ``after_requests``."""

    status: Literal[500, 502, 503, 504] = 503
    after_requests: int = Field(default=0, ge=0)
    count: int = Field(ge=1)


class Faults(_Frozen):
    """Injected misbehaviour.  Replaceable at run time through the control API (``PUT /_lab/faults``)."""

    latency_ms: float = Field(default=0.0, ge=0, description="added to every Graph and token response")
    jitter_ms: float = Field(default=0.0, ge=0)
    bursts: tuple[ErrorBurst, ...] = ()
    error_rate: float = Field(default=0.0, ge=0, le=1, description="random 503s (seeded)")
    token_failures: int = Field(default=0, ge=0, description="the next N token requests answer 503")
    omit_retry_after: bool = Field(
        default=False, description="429 without Retry-After, as some Intune endpoints answer"
    )


class TenantConfig(_Frozen):
    """A whole simulated tenant."""

    tenant_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    apps: tuple[AppRegistration, ...] = Field(min_length=1)
    devices: tuple[Device, ...] = ()
    profiles: tuple[Profile, ...] = ()
    limits: Limits = Limits()
    time_scale: float = Field(default=1.0, gt=0, le=1, description="multiplies throttling windows")
    faults: Faults = Faults()
    token_lifetime_s: int = Field(default=3599, ge=1, description="expires_in of issued tokens")
    token_validity_s: float | None = Field(
        default=None, gt=0, description="real validity of a token (exp claim); default token_lifetime_s"
    )
    sync_delay_s: float = Field(default=0.0, ge=0, description="from syncDevice to the device's check-in")
    enrolled_with_profiles: bool = Field(
        default=True, description="devices start with their assigned profiles delivered (a settled tenant)"
    )
    page_size: int = Field(default=1000, ge=1, le=1000)
    address: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    seed: str = "fleetfix-lab"

    @property
    def window_s(self) -> float:
        return self.limits.window_s * self.time_scale

    @model_validator(mode="after")
    def _unique_ids(self) -> TenantConfig:
        for kind, ids in (
            ("app", [app.client_id for app in self.apps]),
            ("device", [device.id for device in self.devices]),
            ("profile", [profile.id for profile in self.profiles]),
        ):
            if len(set(ids)) != len(ids):
                raise ValueError(f"duplicate {kind} id")
        return self


def numbered_devices(
    count: int,
    *,
    prefix: str = "EP",
    os_version: str = "10.0.22631.4460",
    groups: tuple[str, ...] = (),
) -> tuple[Device, ...]:
    """``count`` Windows devices ``EP-0001`` … with deterministic ids (``dev-0001``, ``aad-0001``)."""
    width = max(4, len(str(count)))
    return tuple(
        Device(
            id=f"dev-{i:0{width}d}",
            device_name=f"{prefix}-{i:0{width}d}",
            azure_ad_device_id=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{prefix}-{i}.aad.lab")),
            os_version=os_version,
            user_principal_name=f"user{i}@contoso.example",
            serial_number=f"SN{i:08d}",
            groups=groups,
        )
        for i in range(1, count + 1)
    )


__all__ = [
    "ALL_DEVICES",
    "ALL_ROLES",
    "ROLE_CONFIG_READ",
    "ROLE_CONFIG_WRITE",
    "ROLE_DEVICES_PRIVILEGED",
    "ROLE_DEVICES_READ",
    "ROLE_DEVICES_WRITE",
    "AppRegistration",
    "BucketLimits",
    "CustomVpnProfile",
    "Device",
    "ErrorBurst",
    "Faults",
    "Limits",
    "NativeVpnProfile",
    "Profile",
    "Route",
    "Server",
    "TenantConfig",
    "numbered_devices",
]
