"""An endpoint's state as the Intune tenant sees it: the :class:`~lab.graph.devices.DeviceSide`.

The tenant delivers and removes VPN profiles through this adapter, so one simulated machine is the
same through WinRM (``Get-VpnConnection``, the routing table, the MDM NodeCache) and through Graph:
routes patched in Intune arrive on the endpoint at its next check-in, and the Windows 11 21H2 bug
(KB5008353) deletes the profile from the endpoint while Intune's intent stays in the NodeCache.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lab.estate.model import EndpointUser, Estate
from lab.graph.devices import DeliveredProfile
from lab.state import HostState
from lab.windows.mdm import MdmNode, MdmNodeCache, MdmScope
from lab.windows.vpnclient import ENHANCED_POLICY, VpnClient, VpnProfile, VpnRoute

MDM_SCRIPT_ID = "intune.check-in"


@dataclass(frozen=True)
class TunnelTemplate:
    """What Intune's profile makes of a connection beyond servers and routes."""

    device_tunnel: bool
    tunnel_type: str
    authentication_method: tuple[str, ...]
    dns_suffix: str | None

    @property
    def scope(self) -> MdmScope:
        return "device" if self.device_tunnel else "user"


def profile_guid(host: str, name: str) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"vpn/{host.lower()}/{name}")).upper() + "}"


def _summary(profile: VpnProfile | None) -> dict[str, object] | None:
    if profile is None:
        return None
    return {"version": profile.mdm_version, "routes": [route.prefix for route in profile.routes]}


class EndpointSide:
    """A simulated endpoint behind an Intune managed device."""

    def __init__(self, state: HostState, estate: Estate, templates: Mapping[str, TunnelTemplate]) -> None:
        self.state = state
        self.estate = estate
        self.templates = templates

    @property
    def os_build(self) -> tuple[int, int]:
        return self.state.os_build, self.state.os_ubr

    def vpn_profiles(self) -> Mapping[str, DeliveredProfile]:
        client = self.state.component(VpnClient)
        return {
            profile.name: _delivered(profile)
            for profile in client.profiles.values()
            if profile.provisioning == "mdm" and profile.mdm_profile_id is not None
        }

    def deliver_profiles(self, profiles: Sequence[DeliveredProfile]) -> None:
        client = self.state.component(VpnClient)
        cache = self.state.component(MdmNodeCache)
        for delivered in profiles:
            template = self.templates.get(delivered.profile_id)
            if template is None:
                continue  # a profile the estate does not model (a test's extra profile)
            profile = self._profile(delivered, template)
            before = client.put(profile)
            if delivered.profile_xml is not None:  # native profiles set CSP nodes, not a ProfileXML
                sid = None if template.device_tunnel else self._user().sid
                cache.set(MdmNode(template.scope, sid, delivered.name, delivered.profile_xml))
            if before != profile:
                self._record(f"vpn profile {delivered.name}", _summary(before), _summary(profile))

    def remove_profile(self, name: str, *, reason: str) -> None:
        before = self.state.component(VpnClient).remove(name)
        if reason != "KB5008353":  # Intune removed it: its nodes go too; the bug leaves the intent
            self.state.component(MdmNodeCache).remove(name)
        self._record(f"vpn profile {name} ({reason})", _summary(before), None)

    def _user(self) -> EndpointUser:
        user = self.state.find(EndpointUser)
        if user is None:
            raise ValueError(f"{self.state.name} has no signed-in user for a user tunnel")
        return user

    def _profile(self, delivered: DeliveredProfile, template: TunnelTemplate) -> VpnProfile:
        user = None if template.device_tunnel else self._user().folder
        return VpnProfile(
            name=delivered.name,
            guid=profile_guid(self.state.name, delivered.name),
            servers=delivered.servers,
            tunnel_type=template.tunnel_type,
            authentication_method=template.authentication_method,
            split_tunneling=delivered.split_tunnel,
            dns_suffix=template.dns_suffix,
            routes=tuple(VpnRoute(f"{address}/{size}") for address, size in delivered.routes),
            ipsec_policy=ENHANCED_POLICY if template.device_tunnel else None,
            scope="all_users" if template.device_tunnel else "user",
            user=user,
            provisioning="mdm",
            device_tunnel=template.device_tunnel,
            mdm_profile_id=delivered.profile_id,
            mdm_version=delivered.version,
            mdm_source=delivered.source,
        )

    def _record(self, what: str, before: object, after: object) -> None:
        if self.estate.live:
            self.state.record_change(MDM_SCRIPT_ID, what, before, after)


def _delivered(profile: VpnProfile) -> DeliveredProfile:
    assert profile.mdm_profile_id is not None
    return DeliveredProfile(
        name=profile.name,
        profile_id=profile.mdm_profile_id,
        version=profile.mdm_version or 1,
        source=profile.mdm_source,
        servers=profile.servers,
        routes=tuple(_split(route.prefix) for route in profile.routes),
        split_tunnel=profile.split_tunneling,
    )


def _split(prefix: str) -> tuple[str, int]:
    address, _, size = prefix.partition("/")
    return address, int(size or 32)


__all__ = ["MDM_SCRIPT_ID", "EndpointSide", "TunnelTemplate", "profile_guid"]
