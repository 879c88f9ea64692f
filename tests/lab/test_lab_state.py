"""Windows semantics of the simulated state: routing table, RRAS restarts, CRL publication, MDM."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509

from lab.estate.build import BuiltEstate, build_estate
from lab.estate.faults import DEVICE_TUNNEL, USER_TUNNEL
from lab.estate.pki import EnterprisePKI
from lab.estate.tunnels import active_connections, observe
from lab.graph.devices import DeliveredProfile
from lab.scenarios.model import FaultEntry, FleetShape, Scenario, WinRMShape
from lab.windows.certsvc import CertificationAuthority
from lab.windows.mdm import MdmNodeCache
from lab.windows.rras import RESTART_WARNING, RrasServer, restart_remote_access
from lab.windows.services import Services
from lab.windows.vpnclient import VpnClient, VpnProfile, VpnRoute

NOW = datetime.datetime(2026, 3, 14, 8, 0, tzinfo=datetime.UTC)
CDP = "http://127.0.0.1:9"


def scenario(*faults: FaultEntry, endpoints: int = 4) -> Scenario:
    return Scenario(
        name="state",
        seed="state",
        fleet=FleetShape(endpoints=endpoints, rras=1, ca=1),
        winrm=WinRMShape(addressing="shared"),
        faults=faults,
    )


# -- routing table --------------------------------------------------------------------------------


def test_a_prefix_with_host_bits_never_reaches_the_routing_table() -> None:
    client = VpnClient()
    routes = (VpnRoute("10.0.0.0/8"), VpnRoute("172.21.12.0/21"), VpnRoute("172.21.8.0/21"))
    client.put(VpnProfile(name="Tunnel", guid="{1}", servers=("vpn",), routes=routes))
    table = {row.prefix for row in client.routing_table({"tunnel": True}) if row.interface_alias == "Tunnel"}
    assert table == {"10.0.0.0/8", "172.21.8.0/21"}
    stored = client.get("tunnel")
    assert stored is not None
    assert [route.prefix for route in stored.routes] == [r.prefix for r in routes]


def test_a_disconnected_profile_routes_nothing_and_reconnect_plumbs_again() -> None:
    client = VpnClient()
    client.put(VpnProfile(name="T", guid="{1}", servers=("vpn",), routes=(VpnRoute("10.10.2.0/24"),)))
    assert not [row for row in client.routing_table({"t": False}) if row.interface_alias == "T"]
    client.unplumbed["t"] = frozenset({"10.10.2.0/24"})
    assert not [row for row in client.routing_table({"t": True}) if row.interface_alias == "T"]
    client.reconnect("T")
    assert [row.prefix for row in client.routing_table({"t": True}) if row.interface_alias == "T"] == [
        "10.10.2.0/24"
    ]


def test_the_base_table_is_always_there() -> None:
    families = {row.address_family for row in VpnClient().routing_table({})}
    assert families == {"IPv4", "IPv6"}


# -- RRAS ------------------------------------------------------------------------------------------


def test_rras_settings_take_effect_only_after_remoteaccess_restarts() -> None:
    pki = EnterprisePKI("rras", CDP)
    server = RrasServer("vpn.contoso.test")
    services = Services()
    services.add("RemoteAccess", started_at=NOW - datetime.timedelta(days=1))
    assert server.set_auth_protocol(root_certificate_der=pki.root.der) == RESTART_WARNING
    assert server.configured.auth.root_certificate_der == pki.root.der  # Get-VpnAuthProtocol shows it
    assert server.effective.auth.root_certificate_der is None  # IKEv2 still uses the old value
    assert server.pending_restart
    restart_remote_access(services, server, NOW, sessions=12)
    assert server.effective == server.configured
    assert not server.pending_restart
    assert server.dropped_sessions == 12
    remote_access = services.get("RemoteAccess")
    assert remote_access is not None
    assert (remote_access.started_at, remote_access.restarts) == (NOW, 1)


def test_a_fixed_root_reconnects_the_device_tunnels_only_after_the_restart() -> None:
    built = build_estate(
        scenario(FaultEntry(type="rras-root-mismatch", hosts=("RRAS-01",))), cdp_base_url=CDP
    )
    estate = built.estate
    endpoint, rras = estate.host("EP-0001"), estate.host("RRAS-01")
    assert observe(estate, endpoint, estate.now())[DEVICE_TUNNEL].code == 13806
    server = rras.component(RrasServer)
    server.set_auth_protocol(root_certificate_der=estate.pki.root.der)
    assert observe(estate, endpoint, estate.now())[DEVICE_TUNNEL].code == 13806
    restart_remote_access(rras.component(Services), server, estate.now(), sessions=0)
    assert observe(estate, endpoint, estate.now())[DEVICE_TUNNEL].connected


def test_a_restart_drops_the_sessions_of_its_node() -> None:
    built = build_estate(scenario(endpoints=6), cdp_base_url=CDP)
    estate = built.estate
    sessions = active_connections(estate, "RRAS-01", estate.now())
    assert len(sessions) == 12  # six endpoints, device and user tunnel each
    assert {s.tunnel_type for s in sessions} == {"Ikev2", "Sstp"}
    rras = estate.host("RRAS-01")
    restart_remote_access(rras.component(Services), rras.component(RrasServer), estate.now(), len(sessions))
    assert rras.component(RrasServer).dropped_sessions == 12
    rras.component(Services).stop("RemoteAccess")
    assert active_connections(estate, "RRAS-01", estate.now()) == []


# -- the CA ---------------------------------------------------------------------------------------------


def test_certutil_crl_publishes_a_fresh_crl_to_certenroll_and_the_cdp() -> None:
    built = build_estate(scenario(FaultEntry(type="crl-expired", hosts=("CA-01",))), cdp_base_url=CDP)
    estate = built.estate
    ca = estate.host("CA-01").component(CertificationAuthority)
    url = estate.pki.url(ca.authority.crl_file)
    stale = estate.crl_at(url)
    assert stale is not None
    assert stale.next_update < estate.now()
    estate.refresh_crls()  # the stalled schedule does not heal itself
    assert estate.crl_at(url) == stale
    fresh = ca.publish(estate.now())
    assert [crl.delta for crl in fresh] == [False, True]
    served = estate.crl_at(url)
    assert served is not None
    assert served.next_update > estate.now() + datetime.timedelta(days=7)
    assert served.number > stale.number
    assert ca.base == served
    parsed = x509.load_der_x509_crl(served.der)
    assert parsed.is_signature_valid(ca.authority.key.public_key())


def test_a_running_ca_publishes_on_schedule() -> None:
    clock = [NOW]
    built = build_estate(scenario(), cdp_base_url=CDP, clock=lambda: clock[0])
    estate = built.estate
    ca = estate.host("CA-01").component(CertificationAuthority)
    first = ca.base
    assert first is not None
    clock[0] = NOW + datetime.timedelta(days=8)
    estate.refresh_crls()
    assert ca.base is not None
    assert ca.base.number > first.number
    assert ca.base.next_update > clock[0]


# -- Intune on the endpoint -------------------------------------------------------------------------


def test_intune_delivers_profiles_into_the_endpoint_state() -> None:
    built = build_estate(scenario(), cdp_base_url=CDP)
    endpoint = built.estate.host("EP-0001")
    client = endpoint.component(VpnClient)
    device = client.get(DEVICE_TUNNEL)
    user = client.get(USER_TUNNEL)
    assert device is not None
    assert device.provisioning == "mdm"
    assert device.scope == "all_users"
    assert user is not None
    assert user.scope == "user"
    assert user.user == "user00001"
    node = endpoint.component(MdmNodeCache).get(DEVICE_TUNNEL)
    assert node is not None
    assert "<DeviceTunnel>true</DeviceTunnel>" in (node.profile_xml or "")
    assert node.node_uri == "./Device/Vendor/MSFT/VPNv2/Contoso%20Device%20Tunnel/ProfileXML"


def test_profile_update_on_windows_11_21h2_removes_the_profile_but_not_the_intent() -> None:
    built = build_estate(
        scenario(FaultEntry(type="win11-pre-kb5008353", hosts=("EP-0001",))), cdp_base_url=CDP
    )
    tenant = built.tenant_state
    assert tenant is not None
    user_profile = next(pid for pid, p in tenant.profiles.items() if p.get("connectionName") == USER_TUNNEL)
    routes = [
        {"destinationPrefix": "10.0.0.0", "prefixSize": 8},
        {"destinationPrefix": "172.21.8.0", "prefixSize": 21},
    ]
    device_profile = next(pid for pid in tenant.profiles if pid != user_profile)
    xml_setting = tenant.profiles[device_profile]["omaSettings"][0]
    tenant.patch_profile(user_profile, {"@odata.type": "#microsoft.graph.windows10VpnConfiguration",
                                        "routes": routes}, beta=True)  # fmt: skip
    affected, fine = built.estate.host("EP-0001"), built.estate.host("EP-0002")
    assert affected.component(VpnClient).get(USER_TUNNEL) is None  # KB5008353
    assert fine.component(VpnClient).get(USER_TUNNEL) is not None  # an update replaces it in place
    changes = [change.what for change in affected.change_log()]
    assert changes == [f"vpn profile {USER_TUNNEL} (KB5008353)"]
    tenant.check_in(tenant.devices[_device_id(built, "EP-0001")].id)  # the next sync returns it
    restored = affected.component(VpnClient).get(USER_TUNNEL)
    assert restored is not None
    assert restored.mdm_version == 2
    assert xml_setting["omaUri"].endswith("/ProfileXML")


def test_routes_patched_in_intune_arrive_on_the_endpoint_at_check_in() -> None:
    built = build_estate(scenario(FaultEntry(type="intune-route-host-bits", count=1)), cdp_base_url=CDP)
    tenant = built.tenant_state
    assert tenant is not None
    endpoint = built.estate.host("EP-0002")
    held = endpoint.component(VpnClient).get(USER_TUNNEL)
    assert held is not None
    assert "172.21.12.0/21" in {route.prefix for route in held.routes}
    profile_id = held.mdm_profile_id
    assert profile_id is not None
    body = {"@odata.type": "#microsoft.graph.windows10VpnConfiguration",
            "routes": [{"destinationPrefix": "172.21.8.0", "prefixSize": 21}]}  # fmt: skip
    tenant.patch_profile(profile_id, body, beta=True)
    tenant.check_in(_device_id(built, "EP-0002"))
    updated = endpoint.component(VpnClient).get(USER_TUNNEL)
    assert updated is not None
    assert [route.prefix for route in updated.routes] == ["172.21.8.0/21"]


def _device_id(built: BuiltEstate, name: str) -> str:
    tenant = built.tenant_state
    assert tenant is not None
    return next(d.id for d in tenant.devices.values() if d.json["deviceName"] == name)


@pytest.mark.parametrize("reason", ["unassigned", "KB5008353"])
def test_removal_reason_decides_whether_the_mdm_intent_stays(reason: str) -> None:
    built = build_estate(scenario(), cdp_base_url=CDP)
    tenant = built.tenant_state
    assert tenant is not None
    side = tenant.devices[_device_id(built, "EP-0003")].side
    side.remove_profile(DEVICE_TUNNEL, reason=reason)
    cache = built.estate.host("EP-0003").component(MdmNodeCache)
    assert (cache.get(DEVICE_TUNNEL) is not None) == (reason == "KB5008353")
    assert DEVICE_TUNNEL not in side.vpn_profiles()
    assert isinstance(next(iter(side.vpn_profiles().values())), DeliveredProfile)
