"""Intune facts (collected through Microsoft Graph, not by a probe): devices and VPN profiles.

Routes are kept as Graph sent them (text and number), not as
:class:`~orchestrator.transport.graph.profilexml.VpnRoute`, because a route that does not even
parse (a prefix with leading zeros) is itself a finding, not a reason to lose the profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AwareDatetime, Field

from orchestrator.facts.common import SectionError
from orchestrator.scripts.schemas import ScriptOutput

if TYPE_CHECKING:  # the Graph client's values; facts themselves import no transport
    from orchestrator.transport.graph.intune import Assignment, DeviceStatus, ManagedDevice, NativeVpnProfile


class IntuneRoute(ScriptOutput):
    """A split-tunnel route of a native profile (``vpnRoute``): prefix text as stored, size."""

    destination_prefix: str
    prefix_size: int


class IntuneProfileXml(ScriptOutput):
    """One VPNv2 ProfileXML OMA-URI setting of a custom profile, in plain text."""

    oma_uri: str
    scope: Literal["device", "user"]
    name: str = Field(description="the VPN connection name on the device (from the OMA-URI)")
    xml: str | None = Field(description="null when it could not be read (see error)")
    error: str | None = None


class IntuneDeviceStatus(ScriptOutput):
    """A profile's state on one device (``deviceStatuses``): succeeded, error, conflict, pending ..."""

    device_name: str
    status: str
    last_reported: str | None = None


class IntuneVpnProfile(ScriptOutput):
    """A VPN profile in Intune: native (``windows10VpnConfiguration``) or custom (ProfileXML)."""

    id: str
    display_name: str
    kind: Literal["native", "custom"]
    connection_name: str | None = Field(description="native profiles: the connection name on devices")
    routes: tuple[IntuneRoute, ...] = Field(description="native profiles' split-tunnel routes")
    profile_xml: tuple[IntuneProfileXml, ...] = Field(description="custom profiles' ProfileXML settings")
    assigned: bool = Field(description="the profile has at least one assignment")
    device_statuses: tuple[IntuneDeviceStatus, ...] | None = Field(
        description="per-device deployment state; null when not collected"
    )

    def connection_names(self) -> tuple[str, ...]:
        """The names this profile gives its VPN connection on a device."""
        if self.kind == "native":
            return (self.connection_name,) if self.connection_name else ()
        return tuple(setting.name for setting in self.profile_xml)


class IntuneDeviceFacts(ScriptOutput):
    """A Windows managed device (``managedDevices``)."""

    id: str
    device_name: str
    azure_ad_device_id: str | None
    os_version: str = Field(description="e.g. 10.0.22000.469")
    last_sync: str | None


class TenantFacts(ScriptOutput):
    """Everything fleetfix reads from Intune for the checks; one per tenant and sweep."""

    schema_version: Literal[1]
    collected_at: AwareDatetime
    devices: tuple[IntuneDeviceFacts, ...]
    vpn_profiles: tuple[IntuneVpnProfile, ...]
    errors: tuple[SectionError, ...] = ()


# -- building tenant facts from the Graph client's values --------------------------------------------


def device_facts(device: ManagedDevice) -> IntuneDeviceFacts:
    return IntuneDeviceFacts(
        id=device.id,
        device_name=device.device_name,
        azure_ad_device_id=device.azure_ad_device_id,
        os_version=device.os_version,
        last_sync=device.last_sync,
    )


def _statuses(statuses: Iterable[DeviceStatus] | None) -> tuple[IntuneDeviceStatus, ...] | None:
    if statuses is None:
        return None
    return tuple(
        IntuneDeviceStatus(device_name=s.device_name, status=s.status, last_reported=s.last_reported)
        for s in statuses
    )


def _route(data: dict[str, Any]) -> IntuneRoute:
    size = data.get("prefixSize")
    return IntuneRoute(
        destination_prefix=str(data.get("destinationPrefix") or ""),
        prefix_size=size if isinstance(size, int) else -1,  # -1: Graph sent no usable size
    )


def native_profile_facts(
    profile: NativeVpnProfile,
    assignments: Iterable[Assignment],
    statuses: Iterable[DeviceStatus] | None = None,
) -> IntuneVpnProfile:
    """Facts of a native profile; routes come from ``raw`` so that unparsable prefixes survive."""
    raw_routes: list[dict[str, Any]] = list(profile.raw.get("routes") or [])
    return IntuneVpnProfile(
        id=profile.id,
        display_name=profile.display_name,
        kind="native",
        connection_name=profile.connection_name or None,
        routes=tuple(_route(route) for route in raw_routes),
        profile_xml=(),
        assigned=any(True for _ in assignments),
        device_statuses=_statuses(statuses),
    )


def custom_profile_facts(
    profile_id: str,
    display_name: str,
    xml_by_uri: dict[str, str | None],
    assignments: Iterable[Assignment],
    statuses: Iterable[DeviceStatus] | None = None,
) -> IntuneVpnProfile:
    """Facts of a custom profile from its VPNv2 ProfileXML settings (``IntuneClient.profile_xml``)."""
    from orchestrator.transport.graph.profilexml import oma_profile_name  # noqa: PLC0415 (see imports)

    settings = []
    for uri, xml in xml_by_uri.items():
        parsed = oma_profile_name(uri)
        if parsed is None:
            continue
        scope, name = parsed
        settings.append(
            IntuneProfileXml(oma_uri=uri, scope="device" if scope == "Device" else "user", name=name, xml=xml)
        )
    return IntuneVpnProfile(
        id=profile_id,
        display_name=display_name,
        kind="custom",
        connection_name=None,
        routes=(),
        profile_xml=tuple(settings),
        assigned=any(True for _ in assignments),
        device_statuses=_statuses(statuses),
    )


__all__ = [
    "IntuneDeviceFacts",
    "IntuneDeviceStatus",
    "IntuneProfileXml",
    "IntuneRoute",
    "IntuneVpnProfile",
    "TenantFacts",
    "custom_profile_facts",
    "device_facts",
    "native_profile_facts",
]
