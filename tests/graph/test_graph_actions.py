"""The Intune actions against the simulated tenant, through the product's real Graph client (msal + httpx).

Plans come from the product's own tenant collector and checks, as a playbook run would get them;
writes are counted by the tenant (``control.writes()``), so "a second apply sends no PATCH" is a
fact about the wire, not about the action's own bookkeeping.  The last test runs a whole estate:
the lab's fault types put host-bit routes into Intune and take a profile off a device, and the
device's state is read back over WinRM.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lab.estate.faults import DEVICE_TUNNEL, USER_TUNNEL
from lab.estate.runtime import EstateLab
from lab.graph import AppCertificate, CustomVpnProfile, NativeVpnProfile, Route, TenantLab
from lab.graph.profiles import CUSTOM_TYPE, OMA_STRING_TYPE
from lab.scenarios.model import FaultEntry, FleetShape, Scenario, TenantShape, WinRMShape
from lab.windows.vpnclient import VpnClient
from orchestrator.actions import ActionPlan, ApplyResult, PlanContext
from orchestrator.actions.intune import FIX_VPN_ROUTES, SYNC_DEVICE
from orchestrator.actions.model import canonical_json
from orchestrator.checks import Finding, run_checks
from orchestrator.config import load_settings
from orchestrator.credentials.vault import Vault
from orchestrator.errors import NotFoundError
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.fleet import FleetFacts, HostFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory import load_inventory
from orchestrator.inventory.models import Host, Role
from orchestrator.scripts import get_script
from orchestrator.scripts.spec import Invocation
from orchestrator.sweep.tenant import collect_tenant
from orchestrator.transport.graph import IntuneClient, open_intune
from orchestrator.transport.graph.profilexml import parse_profile_xml
from orchestrator.transport.winrm import WinRMSession
from tests.graph.support import CUSTOM_ID, NATIVE_ID, PROFILE_XML, intune, make_tenant_config

USER_URI = "./User/Vendor/MSFT/VPNv2/Contoso%20User%20Tunnel/ProfileXML"
DEVICE_URI = "./Device/Vendor/MSFT/VPNv2/Contoso%20Device%20Tunnel/ProfileXML"
DEVICE_XML = (
    "<VPNProfile><DeviceTunnel>true</DeviceTunnel><NativeProfile><Servers>vpn.contoso.example</Servers>"
    "<RoutingPolicyType>SplitTunnel</RoutingPolicyType></NativeProfile>"
    "<Route><Address>10.10.1.10</Address><PrefixSize>32</PrefixSize></Route>"
    "<Route><Address>10.10.3.0</Address><PrefixSize>23</PrefixSize></Route></VPNProfile>"
)


@dataclass
class GraphConnection:
    """The Connection an engine would hand the actions, over a real IntuneClient."""

    intune: IntuneClient
    target: str = "intune"
    host: Host | None = None

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    def run(self, invocation: Invocation[Any], /) -> Any:
        raise AssertionError("the Intune actions never run scripts")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll the lab until ``condition`` holds; the bound only turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def tenant_context(client: IntuneClient) -> PlanContext:
    """Fresh tenant facts and INT-PROF-02 findings, as a playbook run plans from them."""
    at = datetime.now(UTC)
    facts = collect_tenant(client, at=at)
    fleet = FleetFacts(tenant=facts)
    return PlanContext(
        target="intune",
        facts=facts,
        fleet=fleet,
        findings=run_checks(fleet, at=at, only={"INT-PROF-02"}),
        at=at,
    )


def secret_references(client: IntuneClient, profile_id: str) -> set[str]:
    return {s.secret_reference for s in client.custom_profile(profile_id).settings if s.secret_reference}


def assert_no_reference(references: set[str], *values: ActionPlan | ApplyResult) -> None:
    assert references  # the lab stores ProfileXML as a secret: there is something to leak
    text = "".join(canonical_json(value.to_dict()) for value in values)
    assert not [ref for ref in references if ref in text]
    assert "secretReference" not in text
    assert "****" not in text


def native_routes(client: IntuneClient) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = client.vpn_profile(NATIVE_ID).raw["routes"]
    return routes


def test_fix_vpn_routes_fixes_both_kinds_is_idempotent_and_rolls_back(app_cert: AppCertificate) -> None:
    profiles = (
        NativeVpnProfile(
            id=NATIVE_ID,
            routes=(
                Route(destination_prefix="10.0.0.0", prefix_size=8),
                Route(destination_prefix="172.21.12.0", prefix_size=21),
            ),
        ),
        CustomVpnProfile(id=CUSTOM_ID, oma_uri=USER_URI, profile_xml=PROFILE_XML),
    )
    with TenantLab(make_tenant_config(app_cert, profiles=profiles)) as lab:
        client = intune(lab.info)
        original_routes, original_xml = native_routes(client), client.profile_xml(CUSTOM_ID)
        references = secret_references(client, CUSTOM_ID)
        ctx = tenant_context(client)
        assert {f.subject for f in ctx.findings} == {
            f"{NATIVE_ID}:172.21.12.0/21",
            f"{CUSTOM_ID}:172.21.12.0/21",
        }
        plan = FIX_VPN_ROUTES.plan(ctx, {})
        assert [(c.field, c.before, c.after) for c in plan.changes] == [
            (f"deviceConfigurations/{NATIVE_ID}.routes", "172.21.12.0/21", "172.21.8.0/21"),
            (
                f"deviceConfigurations/{CUSTOM_ID}.omaSettings[{USER_URI}].ProfileXML.Route",
                "172.21.12.0/21",
                "172.21.8.0/21",
            ),
        ]
        conn = GraphConnection(client)
        writes = lab.control.writes()

        result = FIX_VPN_ROUTES.apply(conn, plan)
        assert result.changed
        assert lab.control.writes() == writes | {("patch", NATIVE_ID): 1, ("patch", CUSTOM_ID): 1}
        assert native_routes(client) == [
            {"destinationPrefix": "10.0.0.0", "prefixSize": 8},
            {"destinationPrefix": "172.21.8.0", "prefixSize": 21},
        ]
        fixed_xml = client.profile_xml(CUSTOM_ID)[USER_URI]
        assert [str(r) for r in parse_profile_xml(fixed_xml).routes] == ["10.0.0.0/8", "172.21.8.0/21"]
        assert fixed_xml == original_xml[USER_URI].replace("172.21.12.0", "172.21.8.0")  # nothing else moved
        after = tenant_context(client)
        assert after.findings == ()
        assert FIX_VPN_ROUTES.plan(after, {}).noop

        writes = lab.control.writes()
        again = FIX_VPN_ROUTES.apply(conn, plan)  # the same plan once more: a retried step
        assert (again.changed, dict(again.before)) == (False, {})
        assert lab.control.writes() == writes  # no PATCH sent

        undone = FIX_VPN_ROUTES.rollback(conn, result.before)
        assert undone.changed
        assert native_routes(client) == original_routes
        assert client.profile_xml(CUSTOM_ID) == original_xml
        assert lab.control.writes() == writes | {("patch", NATIVE_ID): 2, ("patch", CUSTOM_ID): 2}
        writes = lab.control.writes()
        assert FIX_VPN_ROUTES.rollback(conn, result.before).changed is False
        assert lab.control.writes() == writes

        references |= secret_references(client, CUSTOM_ID)
        assert_no_reference(references, plan, result, again, undone)


def test_set_profile_xmls_writes_several_settings_in_one_patch(app_cert: AppCertificate) -> None:
    with TenantLab(make_tenant_config(app_cert)) as lab:
        client = intune(lab.info)
        other = {
            "@odata.type": "#microsoft.graph.omaSettingInteger",
            "displayName": "unrelated policy",
            "omaUri": "./Device/Vendor/MSFT/Policy/Config/Example/Setting",
            "value": 7,
        }
        settings = [
            {
                "@odata.type": OMA_STRING_TYPE,
                "displayName": "ProfileXML",
                "omaUri": USER_URI,
                "value": PROFILE_XML,
            },
            {
                "@odata.type": OMA_STRING_TYPE,
                "displayName": "Device",
                "omaUri": DEVICE_URI,
                "value": DEVICE_XML,
            },
            other,
        ]
        body = {"@odata.type": CUSTOM_TYPE, "omaSettings": settings}
        client.graph.request("PATCH", f"/deviceManagement/deviceConfigurations/{CUSTOM_ID}", json=body)
        version, writes = client.custom_profile(CUSTOM_ID).version, lab.control.writes()

        ctx = tenant_context(client)
        plan = FIX_VPN_ROUTES.plan(ctx, {"profile_ids": (CUSTOM_ID,)})
        assert [c.after for c in plan.changes] == ["172.21.8.0/21", "10.10.2.0/23"]
        result = FIX_VPN_ROUTES.apply(GraphConnection(client), plan)
        assert lab.control.writes() == writes | {("patch", CUSTOM_ID): writes["patch", CUSTOM_ID] + 1}
        stored = client.custom_profile(CUSTOM_ID)
        assert stored.version == version + 1  # one update for devices, not one per setting
        assert [s.value for s in stored.settings if s.oma_uri == other["omaUri"]] == [7]
        xml = client.profile_xml(CUSTOM_ID)
        assert [str(r) for r in parse_profile_xml(xml[DEVICE_URI]).routes] == [
            "10.10.1.10/32",
            "10.10.2.0/23",
        ]
        assert len(result.to_dict()["before"]["profile_xml"]) == 2

        # One setting given: the other encrypted ProfileXML goes back as its plain text, unchanged.
        client.set_profile_xmls(CUSTOM_ID, {DEVICE_URI: DEVICE_XML})
        assert client.profile_xml(CUSTOM_ID) == {USER_URI: xml[USER_URI], DEVICE_URI: DEVICE_XML}

        writes = lab.control.writes()
        with pytest.raises(NotFoundError, match="no OMA setting"):
            client.set_profile_xmls(CUSTOM_ID, {"./Device/Vendor/MSFT/VPNv2/Gone/ProfileXML": DEVICE_XML})
        assert lab.control.writes() == writes


# -- a whole estate: the lab's fault types, the device seen over WinRM ---------------------------------------

SCENARIO = Scenario(
    name="intune-actions",
    seed="intune-actions",
    fleet=FleetShape(endpoints=3, rras=1, ca=1),
    winrm=WinRMShape(addressing="shared"),
    tenant=TenantShape(sync_delay_s=0.3),
    faults=(
        FaultEntry(type="intune-route-host-bits", count=1),
        FaultEntry(type="intune-profilexml-host-bits", count=1, params={"prefix": "10.10.3.0/23"}),
        FaultEntry(type="win11-pre-kb5008353", hosts=("EP-0002",)),
        FaultEntry(type="profile-missing", hosts=("EP-0001",)),
    ),
)


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[EstateLab]:
    with EstateLab(SCENARIO, directory=tmp_path / "estate") as running:
        yield running


def endpoint_facts(host: Host, vault: Vault) -> EndpointFacts:
    with WinRMSession(host, vault.get("lab")) as session:
        facts = session.run(get_script("endpoint.facts").parse_params([])).value
    assert isinstance(facts, EndpointFacts)
    return facts


def endpoint_context(host: Host, vault: Vault, tenant: TenantFacts) -> PlanContext:
    facts = endpoint_facts(host, vault)
    fleet = FleetFacts(hosts=(HostFacts(name=host.name, role=Role.ENDPOINT, facts=facts),), tenant=tenant)
    at = datetime.now(UTC)
    findings = run_checks(fleet, at=at, only={"EP-PROF-01", "EP-ROUTE-01"})
    return PlanContext(target=host.name, facts=facts, fleet=fleet, findings=findings, at=at, host=host)


def checks_of(ctx: PlanContext) -> set[tuple[str, str]]:
    return {(f.check_id, f.subject) for f in ctx.findings if isinstance(f, Finding)}


def test_routes_fixed_in_intune_and_sync_brings_lost_profiles_back(estate: EstateLab) -> None:
    settings = load_settings(estate.info.directory / "fleetfix.toml")
    vault = Vault.from_settings(settings, environ={})
    inventory = load_inventory(settings.inventory)
    hosts = [inventory.get(name) for name in ("ep-0001", "ep-0002", "ep-0003")]
    managed = [(host, host.intune) for host in hosts if host is not None and host.intune is not None]
    assert len(managed) == 3

    def device_tunnel(name: str) -> list[str] | None:
        """The device tunnel's routes in the endpoint's own state (what Get-VpnConnection reads)."""
        state = estate.built.estate.host(name)
        held = estate.run(lambda: state.component(VpnClient).get(DEVICE_TUNNEL))
        return None if held is None else [route.prefix for route in held.routes]

    def holds(name: str, profile: str) -> bool:
        state = estate.built.estate.host(name)
        return estate.run(lambda: state.component(VpnClient).get(profile) is not None)

    with open_intune(settings, vault=vault) as client:
        ctx = tenant_context(client)
        assert {f.subject.split(":", 1)[1] for f in ctx.findings} == {"172.21.12.0/21", "10.10.3.0/23"}
        plan = FIX_VPN_ROUTES.plan(ctx, {})
        assert {(c.before, c.after) for c in plan.changes} == {
            ("172.21.12.0/21", "172.21.8.0/21"),
            ("10.10.3.0/23", "10.10.2.0/23"),
        }
        assert FIX_VPN_ROUTES.apply(GraphConnection(client), plan).changed
        tenant = tenant_context(client)
        assert tenant.findings == ()
        assert isinstance(tenant.facts, TenantFacts)

        # EP-0001 lost its device tunnel before (profile-missing); EP-0002 (22000.318) lost both
        # tunnels to the profile update just made (KB5008353); EP-0003 still holds the device
        # tunnel with the host-bit route Intune delivered.  Intune intends the fixed profiles.
        assert device_tunnel("EP-0001") is None
        assert holds("EP-0001", USER_TUNNEL)
        assert device_tunnel("EP-0002") is None
        assert not holds("EP-0002", USER_TUNNEL)
        assert "10.10.3.0/23" in (device_tunnel("EP-0003") or [])
        expected = {
            "ep-0001": ("EP-PROF-01", f"profile:{DEVICE_TUNNEL}"),
            "ep-0002": ("EP-PROF-01", f"profile:{DEVICE_TUNNEL}"),
            "ep-0003": ("EP-ROUTE-01", f"{DEVICE_TUNNEL}:10.10.3.0/23"),
        }
        for host, ids in managed:
            ctx = endpoint_context(host, vault, tenant.facts)
            assert expected[host.name] in checks_of(ctx)
            plan = SYNC_DEVICE.plan(ctx, {})
            assert [(c.field, c.after) for c in plan.changes] == [
                (f"managedDevices/{ids.managed_device_id}/syncDevice", "sync requested")
            ]
            synced = SYNC_DEVICE.apply(GraphConnection(client, target=host.name, host=host), plan)
            assert synced.after["device_id"] == ids.managed_device_id

    # A sync is a request: the check-in follows, so the state is polled, not expected at once.
    for name in ("EP-0001", "EP-0002", "EP-0003"):
        wait_for(partial(lambda held: "10.10.2.0/23" in (device_tunnel(held) or []), name))
    wait_for(lambda: holds("EP-0002", USER_TUNNEL))
    for host, _ in managed:
        ctx = endpoint_context(host, vault, tenant.facts)
        assert not {check for check, _ in checks_of(ctx)} & {"EP-PROF-01", "EP-ROUTE-01"}
        assert SYNC_DEVICE.plan(ctx, {}).noop  # nothing left for a check-in to fix
