"""The Intune tenant of a scenario: devices for the enrolled endpoints and the two AOVPN profiles.

* **AOVPN Device Tunnel** — a custom profile with the device tunnel's ProfileXML in
  ``./Device/Vendor/MSFT/VPNv2/Contoso%20Device%20Tunnel/ProfileXML``;
* **AOVPN User Tunnel** — a native ``windows10VpnConfiguration`` (or, with
  ``tenant.user_tunnel: custom``, ProfileXML in ``./User/...``).

Both are assigned to the group every enrolled endpoint is in.  The tenant's state is built here,
with each device wired to its endpoint (:class:`lab.estate.devices.EndpointSide`), so enrolment
delivers the profiles into the endpoints' state before anything serves.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from lab.estate.devices import EndpointSide, TunnelTemplate
from lab.estate.faults import DEVICE_TUNNEL, USER_TUNNEL, TenantDraft
from lab.estate.model import EndpointUser, Estate
from lab.estate.profilexml import device_tunnel_xml, split_prefix, user_tunnel_xml
from lab.graph.config import (
    AppRegistration,
    CustomVpnProfile,
    Device,
    NativeVpnProfile,
    Route,
    Server,
    TenantConfig,
)
from lab.graph.devices import DeviceSide
from lab.graph.state import TenantState
from lab.scenarios.model import TenantShape
from lab.state import HostState

GROUP = "aovpn-devices"
DEVICE_PROFILE_NAME = "AOVPN Device Tunnel"
USER_PROFILE_NAME = "AOVPN User Tunnel"


def lab_id(seed: str, kind: str, name: str = "") -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleetfix-lab/{seed}/{kind}/{name}"))


def app_secret(seed: str) -> str:
    """The lab app registration's client secret: lab material, derived from the seed."""
    return "lab~" + hashlib.sha256(f"{seed}\x00graph-app-secret".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class BuiltTenant:
    config: TenantConfig
    state: TenantState
    secret: str


def draft(shape: TenantShape) -> TenantDraft:
    return TenantDraft(
        device_routes=list(shape.device_routes),
        user_routes=list(shape.user_routes),
        device_kind=shape.device_tunnel,
        user_kind=shape.user_tunnel,
    )


def _device(estate: Estate, state: HostState) -> Device:
    user = state.component(EndpointUser)
    assert user.intune_device_id is not None
    return Device(
        id=user.intune_device_id,
        device_name=state.name,
        azure_ad_device_id=lab_id(estate.pki.seed, "aad", state.name.lower()),
        os_version=f"10.0.{state.os_build}.{state.os_ubr}",
        user_principal_name=f"{user.folder}@{estate.domain}",
        serial_number=hashlib.sha256(state.name.encode()).hexdigest()[:12].upper(),
        groups=(GROUP,),
    )


def _profiles(
    estate: Estate, plan: TenantDraft
) -> tuple[list[CustomVpnProfile | NativeVpnProfile], dict[str, TunnelTemplate]]:
    seed, servers = estate.pki.seed, (estate.public_fqdn, estate.public_fqdn)
    profiles: list[CustomVpnProfile | NativeVpnProfile] = []
    templates: dict[str, TunnelTemplate] = {}
    if plan.device_kind == "custom":
        device_id = lab_id(seed, "profile", "device-tunnel")
        profiles.append(
            CustomVpnProfile(
                id=device_id,
                display_name=DEVICE_PROFILE_NAME,
                oma_uri=f"./Device/Vendor/MSFT/VPNv2/{quote(DEVICE_TUNNEL)}/ProfileXML",
                profile_xml=device_tunnel_xml(servers, plan.device_routes),
                assignments=(GROUP,),
            )
        )
        templates[device_id] = TunnelTemplate(True, "Ikev2", ("MachineCertificate",), None)
    user_id = lab_id(seed, "profile", "user-tunnel")
    profiles.append(_user_profile(estate, plan, user_id))
    templates[user_id] = TunnelTemplate(False, "Automatic", ("Eap",), estate.domain)
    return profiles, templates


def _user_profile(estate: Estate, plan: TenantDraft, profile_id: str) -> CustomVpnProfile | NativeVpnProfile:
    if plan.user_kind == "custom":
        xml = user_tunnel_xml((estate.public_fqdn, estate.public_fqdn), plan.user_routes, estate.domain)
        return CustomVpnProfile(
            id=profile_id,
            display_name=USER_PROFILE_NAME,
            oma_uri=f"./User/Vendor/MSFT/VPNv2/{quote(USER_TUNNEL)}/ProfileXML",
            profile_xml=xml,
            assignments=(GROUP,),
        )
    return NativeVpnProfile(
        id=profile_id,
        display_name=USER_PROFILE_NAME,
        connection_name=USER_TUNNEL,
        connection_type="automatic",
        profile_target="user",
        servers=(Server(address=estate.public_fqdn, description="AOVPN"),),
        routes=tuple(_route(prefix) for prefix in plan.user_routes),
        enable_device_tunnel=False,
        dns_suffixes=(estate.domain,),
        assignments=(GROUP,),
    )


def _route(prefix: str) -> Route:
    address, size = split_prefix(prefix)
    return Route(destination_prefix=address, prefix_size=size)


def build_tenant(
    estate: Estate, shape: TenantShape, plan: TenantDraft, enrolled: Sequence[HostState]
) -> BuiltTenant:
    """The tenant config and state; enrolment delivers the profiles to ``enrolled`` endpoints."""
    seed = estate.pki.seed
    secret = app_secret(seed)
    profiles, templates = _profiles(estate, plan)
    config = TenantConfig(
        tenant_id=lab_id(seed, "tenant"),
        apps=(AppRegistration(client_id=lab_id(seed, "app"), display_name="fleetfix lab", secret=secret),),
        devices=tuple(_device(estate, state) for state in enrolled),
        profiles=tuple(profiles),
        sync_delay_s=shape.sync_delay_s,
        seed=seed,
    )
    by_device_id = {state.component(EndpointUser).intune_device_id: state for state in enrolled}

    def side(device: Device) -> DeviceSide:
        return EndpointSide(by_device_id[device.id], estate, templates)

    return BuiltTenant(config, TenantState(config, side), secret)


__all__ = [
    "DEVICE_PROFILE_NAME",
    "GROUP",
    "USER_PROFILE_NAME",
    "BuiltTenant",
    "app_secret",
    "build_tenant",
    "draft",
    "lab_id",
]
