"""Healthy hosts: what each role's state looks like before any fault touches it.

A healthy endpoint has a device certificate fit for the device tunnel, the enterprise root and
issuing CA in its stores, RasMan and IKEEXT running, and (when it is not managed by Intune) a
device tunnel deployed by a local script.  A healthy RRAS node has its IKEv2 certificate, accepts
device certificates from the enterprise root only, enforces revocation checks (``CertAuthFlags``
4), enables IKEv2 fragmentation and uses the enhanced IKEv2 policy its clients use.  A healthy CA
publishes its CRLs on schedule.  Every check of the catalogue passes on these hosts.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from lab.config import HostConfig
from lab.estate.devices import profile_guid
from lab.estate.faults import DEVICE_TUNNEL, USER_TUNNEL
from lab.estate.model import EndpointUser, Estate, EstateLink, HostIdentity, NetworkPath
from lab.estate.pki import der
from lab.state import HostState
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import CERTSVC, CertificationAuthority
from lab.windows.eventlog import EventLog
from lab.windows.mdm import MdmNodeCache
from lab.windows.rras import REMOTE_ACCESS, AuthProtocol, RrasConfig, RrasServer
from lab.windows.services import Services
from lab.windows.vpnclient import VpnClient, VpnProfile, VpnRoute

SERVER_CAPTION = "Microsoft Windows Server 2022 Standard"
SERVER_BUILD = (20348, 2849)
BOOT_AGE = datetime.timedelta(days=3)  # services started at the last reboot


@dataclass(frozen=True)
class EndpointPlan:
    """Per-endpoint facts the builder decides: display version and the user's number."""

    number: int
    display_version: str | None


def _base(estate: Estate, config: HostConfig, identity: HostIdentity) -> HostState:
    state = HostState.from_config(config)
    state.put(identity)
    state.put(EstateLink(estate))
    state.put(Services())
    state.put(EventLog())
    return state


def _ca_stores(estate: Estate) -> CertificateStores:
    stores = CertificateStores()
    stores.add("Root", estate.pki.root.der)
    stores.add("CA", estate.pki.issuing.der)
    return stores


def endpoint(estate: Estate, config: HostConfig, plan: EndpointPlan, now: datetime.datetime) -> HostState:
    identity = HostIdentity(
        domain=estate.domain, display_version=plan.display_version, edition_id="Enterprise"
    )
    state = _base(estate, config, identity)
    services = state.component(Services)
    for name in ("RasMan", "IKEEXT"):
        services.add(name, started_at=now - BOOT_AGE)
    stores = _ca_stores(estate)
    device = estate.pki.issue(f"endpoint:{config.name.lower()}", estate.pki.device_request(config.fqdn))
    stores.add("My", der(device), has_private_key=True)
    state.put(stores)
    state.put(_user(estate, config, plan))
    state.put(VpnClient(auto_trigger_entry=USER_TUNNEL, auto_trigger_sid=state.component(EndpointUser).sid))
    state.put(MdmNodeCache())
    state.put(NetworkPath(rras=estate.pick_rras(config.name) or ""))
    return state


def _user(estate: Estate, config: HostConfig, plan: EndpointPlan) -> EndpointUser:
    netbios = estate.domain.split(".")[0].upper()
    folder = f"user{plan.number:05d}"
    # A domain SID with the user's RID: stable per endpoint, the form Windows prints.
    sid = f"S-1-5-21-1004336348-1177238915-682003330-{10000 + plan.number}"
    device_id = str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"fleetfix-lab/{estate.pki.seed}/device/{config.name.lower()}")
    )
    return EndpointUser(account=f"{netbios}\\{folder}", folder=folder, sid=sid, intune_device_id=device_id)


def local_device_tunnel(state: HostState, estate: Estate, routes: tuple[str, ...]) -> None:
    """A device tunnel deployed by a script (``Add-VpnConnection -AllUserConnection``), not by Intune."""
    state.component(VpnClient).put(
        VpnProfile(
            name=DEVICE_TUNNEL,
            guid=profile_guid(state.name, DEVICE_TUNNEL),
            servers=(estate.public_fqdn,),
            routes=tuple(VpnRoute(prefix) for prefix in routes),
            eku_filter=("1.3.6.1.5.5.7.3.2",),
            device_tunnel=True,
        )
    )


def rras(estate: Estate, config: HostConfig, now: datetime.datetime) -> HostState:
    identity = HostIdentity(domain=estate.domain, display_version="21H2", edition_id="ServerStandard")
    state = _base(estate, config, identity)
    state.os_caption, (state.os_build, state.os_ubr) = SERVER_CAPTION, SERVER_BUILD
    services = state.component(Services)
    for name in (REMOTE_ACCESS, "IKEEXT"):
        services.add(name, started_at=now - BOOT_AGE)
    stores = _ca_stores(estate)
    server = estate.pki.issue(f"rras:{config.name.lower()}", estate.pki.server_request(estate.public_fqdn))
    stores.add("My", der(server), has_private_key=True)
    state.put(stores)
    config_in_effect = RrasConfig(auth=AuthProtocol(root_certificate_der=estate.pki.root.der))
    state.put(RrasServer.started_with(estate.public_fqdn, config_in_effect))
    return state


def certification_authority(estate: Estate, config: HostConfig, now: datetime.datetime) -> HostState:
    identity = HostIdentity(domain=estate.domain, display_version="21H2", edition_id="ServerStandard")
    state = _base(estate, config, identity)
    state.os_caption, (state.os_build, state.os_ubr) = SERVER_CAPTION, SERVER_BUILD
    state.component(Services).add(CERTSVC, started_at=now - BOOT_AGE)
    stores = _ca_stores(estate)
    stores.add("My", estate.pki.issuing.der, has_private_key=True)
    state.put(stores)
    state.put(CertificationAuthority(estate.pki.issuing, estate.pki))
    return state


def publish_initial_crls(estate: Estate, now: datetime.datetime) -> None:
    """The CRLs a CA in service has out: base a day old, delta two hours; the root's a month old."""
    for ca in estate.authorities():
        if ca.authority.label in ("root", "foreign-root"):
            ca.publish(now - datetime.timedelta(days=30))
            ca.base_stalled = True  # an offline root publishes by hand only
            continue
        ca.publish(now - datetime.timedelta(days=1))
        ca.publish(now - datetime.timedelta(hours=2), delta_only=True)


__all__ = [
    "EndpointPlan",
    "certification_authority",
    "endpoint",
    "local_device_tunnel",
    "publish_initial_crls",
    "rras",
]
