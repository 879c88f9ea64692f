"""The Intune tenant's facts, read once per sweep through the Graph client.

Thin: the Graph calls are :class:`IntuneClient`'s, the conversion to facts is
:mod:`orchestrator.facts.tenant`'s.  What lives here is which calls a sweep makes: every Windows
managed device, every VPN profile (native ``windows10VpnConfiguration`` and custom ProfileXML
profiles) with its assignments and per-device status.

A failure that loses the whole tenant (login refused, Graph down) is the caller's to record as
``tenant_error``; a ProfileXML value that cannot be read loses only that setting (``xml`` null)
and adds a section error.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from orchestrator.errors import FleetfixError
from orchestrator.facts.common import SectionError
from orchestrator.facts.tenant import (
    IntuneVpnProfile,
    TenantFacts,
    custom_profile_facts,
    device_facts,
    native_profile_facts,
)
from orchestrator.transport.graph.intune import CustomProfile, IntuneClient

_CONFIGS = "/deviceManagement/deviceConfigurations"
_CUSTOM_FILTER = "isof('microsoft.graph.windows10CustomConfiguration')"


def collect_tenant(intune: IntuneClient, *, at: datetime) -> TenantFacts:
    """Devices and VPN profiles of the tenant; raises the client's FleetfixError when Graph fails."""
    errors: list[SectionError] = []
    devices = tuple(device_facts(device) for device in intune.managed_devices())
    profiles = [
        native_profile_facts(profile, intune.assignments(profile.id), intune.device_statuses(profile.id))
        for profile in intune.vpn_profiles()
    ]
    profiles += [_custom(intune, profile, errors) for profile in _custom_vpn_profiles(intune)]
    return TenantFacts(
        schema_version=1,
        collected_at=at,
        devices=devices,
        vpn_profiles=tuple(profiles),
        errors=tuple(errors),
    )


def _custom_vpn_profiles(intune: IntuneClient) -> Iterator[CustomProfile]:
    """Custom profiles that carry at least one VPNv2 ProfileXML setting (read one by one: a list
    answer may leave settings out)."""
    listed = intune.graph.iter_collection(_CONFIGS, params={"$filter": _CUSTOM_FILTER})
    for item in listed:
        profile = intune.custom_profile(str(item["id"]))
        if profile.vpn_settings():
            yield profile


def _custom(intune: IntuneClient, profile: CustomProfile, errors: list[SectionError]) -> IntuneVpnProfile:
    xml_by_uri: dict[str, str | None] = {}
    for setting in profile.vpn_settings():
        try:
            xml_by_uri[setting.oma_uri] = str(intune.setting_value(profile.id, setting))
        except FleetfixError as exc:  # one unreadable setting must not lose the tenant
            xml_by_uri[setting.oma_uri] = None
            message = f"{profile.id} {setting.oma_uri}: {exc}"
            errors.append(SectionError(section="vpn_profiles", message=message))
    return custom_profile_facts(
        profile.id,
        profile.display_name,
        xml_by_uri,
        intune.assignments(profile.id),
        intune.device_statuses(profile.id),
    )


__all__ = ["collect_tenant"]
