"""The Intune actions on data: plans from TenantFacts and findings, apply and rollback on a fake tenant."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from orchestrator.actions import ActionPlan, Change, PlanContext, get_action
from orchestrator.actions.intune import FIX_VPN_ROUTES, SYNC_DEVICE, rewrite_profile_xml_routes
from orchestrator.checks import run_checks
from orchestrator.checks.model import Finding
from orchestrator.errors import BadOutputError, InputError, NotFoundError, ServiceError
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.fleet import FleetFacts, HostFacts
from orchestrator.facts.tenant import TenantFacts
from orchestrator.inventory.models import Host, IntuneIds, Role
from orchestrator.scripts.spec import Invocation
from orchestrator.transport.graph.intune import IntuneClient, ManagedDevice, NativeVpnProfile
from orchestrator.transport.graph.profilexml import ProfileXmlError, VpnRoute, route_texts

AT = datetime(2025, 6, 1, tzinfo=UTC)
NATIVE_ID = "vpn-native"
CUSTOM_ID = "vpn-custom"
DEVICE_URI = "./Device/Vendor/MSFT/VPNv2/Contoso%20Device%20Tunnel/ProfileXML"
USER_URI = "./User/Vendor/MSFT/VPNv2/Contoso%20User%20Tunnel/ProfileXML"
NATIVE_TYPE = "#microsoft.graph.windows10VpnConfiguration"


def profile_xml(*routes: tuple[str, int], exclusion: tuple[str, int] | None = None) -> str:
    body = "".join(f"<Route><Address>{a}</Address><PrefixSize>{s}</PrefixSize></Route>" for a, s in routes)
    if exclusion is not None:
        body += (
            f"<Route><Address>{exclusion[0]}</Address><PrefixSize>{exclusion[1]}</PrefixSize>"
            "<ExclusionRoute>true</ExclusionRoute></Route>"
        )
    return (
        "<VPNProfile><NativeProfile><Servers>vpn.contoso.example</Servers>"
        f"<RoutingPolicyType>SplitTunnel</RoutingPolicyType></NativeProfile>{body}</VPNProfile>"
    )


def native(profile_id: str, *routes: tuple[str, int], name: str = "Contoso User Tunnel") -> dict[str, Any]:
    return {
        "id": profile_id,
        "display_name": f"profile {profile_id}",
        "kind": "native",
        "connection_name": name,
        "routes": [{"destination_prefix": a, "prefix_size": s} for a, s in routes],
        "profile_xml": [],
        "assigned": True,
        "device_statuses": None,
    }


def custom(profile_id: str, settings: Mapping[str, str | None]) -> dict[str, Any]:
    return {
        "id": profile_id,
        "display_name": f"profile {profile_id}",
        "kind": "custom",
        "connection_name": None,
        "routes": [],
        "profile_xml": [
            {
                "oma_uri": uri,
                "scope": "device" if "/Device/" in uri else "user",
                "name": "Contoso Device Tunnel" if "/Device/" in uri else "Contoso User Tunnel",
                "xml": xml,
                "error": None if xml is not None else "forbidden: no ReadWrite role",
            }
            for uri, xml in settings.items()
        ],
        "assigned": True,
        "device_statuses": None,
    }


def tenant(*profiles: dict[str, Any], devices: Sequence[dict[str, Any]] = ()) -> TenantFacts:
    return TenantFacts.model_validate_json(
        json.dumps(
            {
                "schema_version": 1,
                "collected_at": AT.isoformat(),
                "devices": list(devices),
                "vpn_profiles": list(profiles),
            }
        )
    )


def tenant_context(facts: TenantFacts, *, with_findings: bool = True) -> PlanContext:
    fleet = FleetFacts(tenant=facts)
    findings = run_checks(fleet, at=AT, only={"INT-PROF-02"}) if with_findings else ()
    return PlanContext(target="intune", facts=facts, fleet=fleet, findings=findings, at=AT)


def plan_routes(facts: TenantFacts, **args: Any) -> ActionPlan:
    return FIX_VPN_ROUTES.plan(tenant_context(facts), args)


# -- a fake tenant behind the Connection ----------------------------------------------------------------


@dataclass
class FakeIntune:
    """Profiles as the real client returns them; every write recorded."""

    native_routes: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    xml: dict[str, dict[str, str]] = field(default_factory=dict)
    devices: dict[str, str | None] = field(default_factory=dict)  # id -> last sync
    writes: list[tuple[str, str]] = field(default_factory=list)
    fail_on_write: set[str] = field(default_factory=set)

    def vpn_profile(self, profile_id: str) -> NativeVpnProfile:
        if profile_id not in self.native_routes:
            raise NotFoundError(f"no configuration {profile_id}", host="graph")
        routes = [{"destinationPrefix": a, "prefixSize": s} for a, s in self.native_routes[profile_id]]
        return NativeVpnProfile.from_graph({"@odata.type": NATIVE_TYPE, "id": profile_id, "routes": routes})

    def set_vpn_routes(self, profile_id: str, routes: Sequence[VpnRoute]) -> NativeVpnProfile:
        self._write("patch", profile_id)
        self.native_routes[profile_id] = [(r.prefix, r.prefix_size) for r in routes]
        return self.vpn_profile(profile_id)

    def profile_xml(self, profile_id: str) -> dict[str, str]:
        if profile_id not in self.xml:
            raise NotFoundError(f"no configuration {profile_id}", host="graph")
        return dict(self.xml[profile_id])

    def set_profile_xmls(self, profile_id: str, xml_by_uri: Mapping[str, str]) -> None:
        if set(xml_by_uri) - set(self.xml[profile_id]):
            raise NotFoundError(f"{profile_id} lacks a setting", host="graph")
        self._write("patch", profile_id)
        self.xml[profile_id].update(xml_by_uri)

    def managed_device(self, device_id: str) -> ManagedDevice:
        if device_id not in self.devices:
            raise NotFoundError(f"no managed device {device_id}", host="graph")
        return ManagedDevice(
            device_id, "EP-0001", None, "Windows", "10.0.22631.4460", self.devices[device_id]
        )

    def sync_device(self, device_id: str) -> None:
        self._write("syncDevice", device_id)

    def _write(self, kind: str, ident: str) -> None:
        if ident in self.fail_on_write:
            raise ServiceError("503 ServiceUnavailable", host="graph")
        self.writes.append((kind, ident))


@dataclass
class FakeConnection:
    fake: FakeIntune
    target: str = "intune"
    host: Host | None = None
    now: datetime = AT

    @property
    def intune(self) -> IntuneClient:
        return cast(IntuneClient, self.fake)

    def run(self, invocation: Invocation[Any], /) -> Any:
        raise AssertionError("the Intune actions never run scripts")


def as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


# -- registration ---------------------------------------------------------------------------------------


def test_both_actions_are_registered_with_their_kind() -> None:
    assert get_action("intune.fix-vpn-routes") is FIX_VPN_ROUTES
    assert get_action("intune.sync-device") is SYNC_DEVICE
    assert (FIX_VPN_ROUTES.target_kind.value, FIX_VPN_ROUTES.reversible) == ("tenant", True)
    assert (SYNC_DEVICE.target_kind.value, SYNC_DEVICE.reversible) == ("host", False)


# -- fix-vpn-routes: plan --------------------------------------------------------------------------------


def test_plan_native_and_profile_xml_exact_changes_and_arguments() -> None:
    facts = tenant(
        native(NATIVE_ID, ("10.0.0.0", 8), ("172.21.12.0", 21)),
        custom(CUSTOM_ID, {DEVICE_URI: profile_xml(("10.10.1.10", 32), ("10.10.2.7", 24))}),
    )
    plan = plan_routes(facts)
    assert plan.changes == (
        Change(f"deviceConfigurations/{NATIVE_ID}.routes", "172.21.12.0/21", "172.21.8.0/21"),
        Change(
            f"deviceConfigurations/{CUSTOM_ID}.omaSettings[{DEVICE_URI}].ProfileXML.Route",
            "10.10.2.7/24",
            "10.10.2.0/24",
        ),
    )
    assert plan.to_dict()["arguments"] == {
        "native": [
            {
                "profile_id": NATIVE_ID,
                "routes": ["10.0.0.0/8", "172.21.8.0/21"],
                "replacements": [{"before": "172.21.12.0/21", "after": "172.21.8.0/21"}],
            }
        ],
        "profile_xml": [
            {
                "profile_id": CUSTOM_ID,
                "oma_uri": DEVICE_URI,
                "replacements": [{"before": "10.10.2.7/24", "after": "10.10.2.0/24"}],
            }
        ],
    }
    assert plan.target == "intune"
    assert plan.note == ""  # every INT-PROF-02 finding is covered


def test_every_host_bits_finding_of_the_check_is_a_planned_change() -> None:
    facts = tenant(
        native(NATIVE_ID, ("172.21.12.0", 21), ("fd00::1", 48)),
        custom(CUSTOM_ID, {DEVICE_URI: profile_xml(("10.10.2.7", 24), exclusion=("192.168.1.1", 24))}),
    )
    ctx = tenant_context(facts)
    plan = FIX_VPN_ROUTES.plan(ctx, {})
    subjects = {f.subject for f in ctx.findings_of("INT-PROF-02")}
    assert subjects == {
        f"{NATIVE_ID}:172.21.12.0/21",
        f"{NATIVE_ID}:fd00::1/48",
        f"{CUSTOM_ID}:10.10.2.7/24",
        f"{CUSTOM_ID}:192.168.1.1/24",
    }
    planned = {f"{c.field.split('/')[1].split('.')[0]}:{c.before}" for c in plan.changes}
    assert planned == subjects
    assert {c.after for c in plan.changes} == {"172.21.8.0/21", "fd00::/48", "10.10.2.0/24", "192.168.1.0/24"}


def test_clean_tenant_plans_nothing() -> None:
    facts = tenant(
        native(NATIVE_ID, ("10.0.0.0", 8), ("172.21.8.0", 21)),
        custom(CUSTOM_ID, {DEVICE_URI: profile_xml(("10.10.2.0", 24))}),
    )
    plan = plan_routes(facts)
    assert plan.noop
    assert plan.arguments == {}
    assert plan.note == "no VPN profile route has host bits set"


def test_a_fixed_route_already_present_is_kept_once() -> None:
    plan = plan_routes(tenant(native(NATIVE_ID, ("172.21.8.0", 21), ("172.21.12.0", 21), ("10.0.0.0", 8))))
    assert plan.to_dict()["arguments"]["native"][0]["routes"] == ["172.21.8.0/21", "10.0.0.0/8"]
    assert plan.changes == (
        Change(f"deviceConfigurations/{NATIVE_ID}.routes", "172.21.12.0/21", "172.21.8.0/21"),
    )
    assert "kept once" in plan.note


def test_native_profile_with_an_unparsable_route_is_left_to_a_human() -> None:
    plan = plan_routes(tenant(native(NATIVE_ID, ("10.001.0.0", 16), ("172.21.12.0", 21))))
    assert plan.noop
    assert "do not parse" in plan.note
    assert f"INT-PROF-02 {NATIVE_ID}:172.21.12.0/21: not in this plan" in plan.note
    assert f"{NATIVE_ID}:10.001.0.0/16: prefixes that do not parse need a hand fix" in plan.note


def test_unreadable_or_broken_profile_xml_is_noted_not_planned() -> None:
    facts = tenant(
        custom(CUSTOM_ID, {DEVICE_URI: None, USER_URI: "<VPNProfile><Route>"}),
        native(NATIVE_ID, ("172.21.12.0", 21)),
    )
    plan = plan_routes(facts)
    assert [c.field for c in plan.changes] == [f"deviceConfigurations/{NATIVE_ID}.routes"]
    assert f"{CUSTOM_ID} {DEVICE_URI}: ProfileXML could not be read (forbidden" in plan.note
    assert f"{CUSTOM_ID} {USER_URI}: not planned: ProfileXML is not well-formed" in plan.note


def test_profile_ids_limit_the_plan() -> None:
    facts = tenant(
        native(NATIVE_ID, ("172.21.12.0", 21)),
        custom(CUSTOM_ID, {DEVICE_URI: profile_xml(("10.10.2.7", 24))}),
    )
    plan = plan_routes(facts, profile_ids=(CUSTOM_ID, "vpn-gone"))
    assert [c.before for c in plan.changes] == ["10.10.2.7/24"]
    assert plan.to_dict()["arguments"]["native"] == []
    assert plan.note == "unknown profile ids: vpn-gone"


def test_plan_refuses_facts_that_are_not_the_tenant_s() -> None:
    facts = endpoint_facts()
    ctx = PlanContext(target="ep-0001", facts=facts, fleet=FleetFacts(), findings=(), at=AT)
    with pytest.raises(InputError, match="plans from the tenant's facts"):
        FIX_VPN_ROUTES.plan(ctx, {})
    with pytest.raises(InputError, match="profile_ids"):
        plan_routes(tenant(), profile_ids="vpn-native")


def test_plan_digest_follows_the_profile_routes() -> None:
    first = plan_routes(tenant(native(NATIVE_ID, ("10.0.0.0", 8), ("172.21.12.0", 21))))
    drifted = plan_routes(
        tenant(native(NATIVE_ID, ("10.0.0.0", 8), ("172.21.12.0", 21), ("192.168.5.0", 24)))
    )
    assert first.changes == drifted.changes
    assert first.digest() != drifted.digest()  # the full route list is in the arguments


# -- ProfileXML rewritten in place ------------------------------------------------------------------------


def test_rewrite_keeps_everything_but_the_address() -> None:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!-- Contoso device tunnel, owned by netops -->\n'
        "<VPNProfile>\n  <DeviceTunnel>true</DeviceTunnel>\n"
        "  <Route>\n    <Address> 172.21.12.0 </Address>\n    <PrefixSize>21</PrefixSize>\n  </Route>\n"
        "  <Route><Address>10.0.0.0</Address><PrefixSize>8</PrefixSize></Route>\n</VPNProfile>\n"
    )
    rewritten = rewrite_profile_xml_routes(xml, {"172.21.12.0/21": "172.21.8.0/21"})
    assert rewritten == xml.replace("<Address> 172.21.12.0 </Address>", "<Address> 172.21.8.0 </Address>")
    assert [(r.address, r.prefix_size) for r in route_texts(rewritten)] == [
        ("172.21.8.0", "21"),
        ("10.0.0.0", "8"),
    ]
    assert rewrite_profile_xml_routes(rewritten, {"172.21.12.0/21": "172.21.8.0/21"}) == rewritten


def test_rewrite_refuses_what_it_cannot_edit_in_place() -> None:
    encoded = profile_xml(("&#49;72.21.12.0", 21))  # an entity the text edit cannot see through
    with pytest.raises(ProfileXmlError, match="cannot be rewritten in place"):
        rewrite_profile_xml_routes(encoded, {"172.21.12.0/21": "172.21.8.0/21"})
    with pytest.raises(ProfileXmlError, match="DOCTYPE"):
        rewrite_profile_xml_routes('<!DOCTYPE x [<!ENTITY a "b">]><VPNProfile/>', {})


# -- fix-vpn-routes: apply and rollback on the fake tenant -------------------------------------------------


def bad_tenant() -> tuple[TenantFacts, FakeIntune]:
    device_xml = profile_xml(("10.10.1.10", 32), ("10.10.2.7", 24))
    user_xml = profile_xml(("10.0.0.0", 8), ("172.21.12.0", 21))
    facts = tenant(
        native(NATIVE_ID, ("10.0.0.0", 8), ("172.21.12.0", 21)),
        custom(CUSTOM_ID, {DEVICE_URI: device_xml, USER_URI: user_xml}),
    )
    fake = FakeIntune(
        native_routes={NATIVE_ID: [("10.0.0.0", 8), ("172.21.12.0", 21)]},
        xml={CUSTOM_ID: {DEVICE_URI: device_xml, USER_URI: user_xml}},
    )
    return facts, fake


def test_apply_fixes_then_changes_nothing_then_rollback_restores_exactly() -> None:
    facts, fake = bad_tenant()
    original_routes, original_xml = list(fake.native_routes[NATIVE_ID]), dict(fake.xml[CUSTOM_ID])
    plan = plan_routes(facts)
    conn = FakeConnection(fake)

    result = FIX_VPN_ROUTES.apply(conn, plan)
    assert result.changed
    assert fake.writes == [("patch", NATIVE_ID), ("patch", CUSTOM_ID)]  # both settings in one PATCH
    assert fake.native_routes[NATIVE_ID] == [("10.0.0.0", 8), ("172.21.8.0", 21)]
    assert route_texts(fake.xml[CUSTOM_ID][DEVICE_URI])[1].address == "10.10.2.0"
    assert route_texts(fake.xml[CUSTOM_ID][USER_URI])[1].address == "172.21.8.0"
    before = result.to_dict()["before"]
    assert before == {
        "native": [{"profile_id": NATIVE_ID, "routes": ["10.0.0.0/8", "172.21.12.0/21"]}],
        "profile_xml": [
            {"profile_id": CUSTOM_ID, "oma_uri": DEVICE_URI, "xml": original_xml[DEVICE_URI]},
            {"profile_id": CUSTOM_ID, "oma_uri": USER_URI, "xml": original_xml[USER_URI]},
        ],
    }
    assert result.to_dict()["after"]["native"] == [
        {"profile_id": NATIVE_ID, "routes": ["10.0.0.0/8", "172.21.8.0/21"]}
    ]

    again = FIX_VPN_ROUTES.apply(conn, plan)
    assert (again.changed, dict(again.before)) == (False, {})
    assert len(fake.writes) == 2  # no PATCH the second time

    restored = FIX_VPN_ROUTES.rollback(conn, result.before)
    assert restored.changed
    assert fake.native_routes[NATIVE_ID] == original_routes
    assert fake.xml[CUSTOM_ID] == original_xml
    assert len(fake.writes) == 4
    assert FIX_VPN_ROUTES.rollback(conn, result.before).changed is False
    assert len(fake.writes) == 4


def test_apply_works_on_the_current_state_not_the_planned_one() -> None:
    facts, fake = bad_tenant()
    plan = plan_routes(facts)
    # Since planning, someone added a route to the native profile and fixed the ProfileXML by hand.
    fake.native_routes[NATIVE_ID].append(("192.168.5.0", 24))
    fake.xml[CUSTOM_ID] = {
        uri: xml.replace("10.10.2.7", "10.10.2.0").replace("172.21.12.0", "172.21.8.0")
        for uri, xml in fake.xml[CUSTOM_ID].items()
    }
    result = FIX_VPN_ROUTES.apply(FakeConnection(fake), plan)
    assert fake.native_routes[NATIVE_ID] == [("10.0.0.0", 8), ("172.21.8.0", 21), ("192.168.5.0", 24)]
    assert fake.writes == [("patch", NATIVE_ID)]
    assert result.to_dict()["before"]["profile_xml"] == []


def test_a_failure_before_any_write_raises_and_after_one_is_recorded() -> None:
    facts, fake = bad_tenant()
    plan = plan_routes(facts)
    fake.fail_on_write = {NATIVE_ID}
    with pytest.raises(ServiceError):
        FIX_VPN_ROUTES.apply(FakeConnection(fake), plan)
    assert fake.writes == []

    fake.fail_on_write = {CUSTOM_ID}
    result = FIX_VPN_ROUTES.apply(FakeConnection(fake), plan)
    assert result.changed
    assert fake.writes == [("patch", NATIVE_ID)]
    assert result.to_dict()["before"]["native"] == [
        {"profile_id": NATIVE_ID, "routes": ["10.0.0.0/8", "172.21.12.0/21"]}
    ]
    assert result.to_dict()["after"]["failed"]["kind"] == "service_error"
    assert result.message.startswith("stopped after 1 profile(s)")
    FIX_VPN_ROUTES.rollback(FakeConnection(fake), result.before)
    assert fake.native_routes[NATIVE_ID] == [("10.0.0.0", 8), ("172.21.12.0", 21)]


def test_apply_refuses_a_setting_that_is_gone_and_a_hand_edited_plan() -> None:
    facts, fake = bad_tenant()
    plan = plan_routes(facts, profile_ids=(CUSTOM_ID,))
    del fake.xml[CUSTOM_ID][USER_URI]
    with pytest.raises(BadOutputError, match="no ProfileXML setting"):
        FIX_VPN_ROUTES.apply(FakeConnection(fake), plan)
    broken = ActionPlan.from_dict(plan.to_dict() | {"arguments": {"native": [{"routes": ["x"]}]}})
    with pytest.raises(InputError, match="profile_id"):
        FIX_VPN_ROUTES.apply(FakeConnection(fake), broken)
    assert fake.writes == []


# -- sync-device -------------------------------------------------------------------------------------------


def endpoint_facts(
    *, connections: Sequence[str] = (), mdm: Mapping[str, str] | None = None, local_routes: Sequence[str] = ()
) -> EndpointFacts:
    def connection(name: str) -> dict[str, Any]:
        return {
            "name": name, "guid": None, "all_user_connection": True, "server_address": "vpn.contoso.example",
            "tunnel_type": "Ikev2", "authentication_method": ["MachineCertificate"], "split_tunneling": True,
            "connection_status": "Disconnected", "dns_suffix": None,
            "routes": [{"destination_prefix": r, "route_metric": 1} for r in local_routes],
            "machine_certificate_eku_filter": [], "ipsec_custom_policy": None, "profile_type": None,
        }  # fmt: skip

    document = {
        "schema_version": 1, "collected_at": AT.isoformat(), "computer_name": "EP-0001",
        "fqdn": "ep-0001.corp.contoso.test", "domain": "corp.contoso.test", "part_of_domain": True,
        "os": {"caption": "Microsoft Windows 11 Enterprise", "build": 22000, "ubr": 318,
               "display_version": "21H2", "edition_id": "Enterprise"},
        "certificates": None, "vpn_connections": [connection(name) for name in connections],
        "phonebook_entries": [], "routes": None, "ras_events": None, "mdm_events": None, "rasman": None,
        "mdm_vpn_profiles": [
            {"scope": "device", "sid": None, "name": name, "node_uri": f"./Device/Vendor/MSFT/VPNv2/{name}",
             "profile_xml": xml}
            for name, xml in (mdm or {}).items()
        ],
    }  # fmt: skip
    return EndpointFacts.model_validate_json(json.dumps(document))


def managed_host(name: str = "ep-0001", device_id: str | None = "dev-0001") -> Host:
    ids = IntuneIds(managed_device_id=device_id, last_sync="2025-05-01T00:00:00Z") if device_id else None
    return Host(name=name, role=Role.ENDPOINT, address="10.0.0.5", credential="vault:lab", intune=ids)


def device_record(device_id: str = "dev-0001", name: str = "EP-0001") -> dict[str, Any]:
    return {
        "id": device_id,
        "device_name": name,
        "azure_ad_device_id": None,
        "os_version": "10.0.22000.318",
        "last_sync": "2025-05-31T08:00:00Z",
    }


def host_context(
    facts: EndpointFacts, host: Host | None, *, devices: Sequence[dict[str, Any]] = (), checks: bool = True
) -> PlanContext:
    fleet = FleetFacts(
        hosts=(HostFacts(name="ep-0001", role=Role.ENDPOINT, facts=facts),), tenant=tenant(devices=devices)
    )
    findings: tuple[Finding, ...] = (
        run_checks(fleet, at=AT, only={"EP-PROF-01", "EP-ROUTE-01"}) if checks else ()
    )
    return PlanContext(target="ep-0001", facts=facts, fleet=fleet, findings=findings, at=AT, host=host)


DEVICE_TUNNEL_XML = profile_xml(("10.10.2.0", 24))


def test_sync_planned_for_a_profile_missing_on_the_device() -> None:
    facts = endpoint_facts(mdm={"Contoso Device Tunnel": DEVICE_TUNNEL_XML})  # intended, not present
    ctx = host_context(facts, managed_host(), devices=[device_record()])
    assert [f.check_id for f in ctx.findings] == ["EP-PROF-01"]
    plan = SYNC_DEVICE.plan(ctx, {})
    assert plan.changes == (
        Change("managedDevices/dev-0001/syncDevice", "last sync 2025-05-31T08:00:00Z", "sync requested"),
    )
    assert dict(plan.arguments) == {"device_id": "dev-0001"}
    assert "EP-PROF-01 profile:Contoso Device Tunnel" in plan.note


def test_sync_planned_for_a_host_bit_route_that_intune_delivered_not_for_a_local_one() -> None:
    delivered = endpoint_facts(
        connections=["Contoso Device Tunnel"], mdm={"Contoso Device Tunnel": profile_xml(("10.10.2.7", 24))}
    )
    ctx = host_context(delivered, managed_host())
    assert [f.check_id for f in ctx.findings] == ["EP-ROUTE-01"]
    plan = SYNC_DEVICE.plan(ctx, {})
    assert plan.changes == (
        Change("managedDevices/dev-0001/syncDevice", "last sync 2025-05-01T00:00:00Z", "sync requested"),
    )  # the tenant facts do not know the device: the inventory's last sync
    assert "EP-ROUTE-01 Contoso Device Tunnel:10.10.2.7/24 (an Intune-delivered profile)" in plan.note

    local = endpoint_facts(connections=["Branch VPN"], local_routes=["192.168.7.1/24"])
    ctx = host_context(local, managed_host())
    assert [f.check_id for f in ctx.findings] == ["EP-ROUTE-01"]
    plan = SYNC_DEVICE.plan(ctx, {})
    assert plan.noop
    assert "a check-in would change nothing" in plan.note
    forced = SYNC_DEVICE.plan(ctx, {"always": True})
    assert [c.field for c in forced.changes] == ["managedDevices/dev-0001/syncDevice"]
    with pytest.raises(InputError, match="always"):
        SYNC_DEVICE.plan(ctx, {"always": "yes"})


def test_host_not_managed_by_intune_gets_an_empty_plan() -> None:
    facts = endpoint_facts(mdm={"Contoso Device Tunnel": DEVICE_TUNNEL_XML})
    plan = SYNC_DEVICE.plan(host_context(facts, managed_host(device_id=None)), {"always": True})
    assert plan.noop
    assert plan.arguments == {}
    assert plan.note.startswith("nothing to sync: it is not an Intune managed device")


def test_device_found_by_name_in_the_tenant_only_when_unambiguous() -> None:
    facts = endpoint_facts(mdm={"Contoso Device Tunnel": DEVICE_TUNNEL_XML})
    ctx = host_context(facts, managed_host(device_id=None), devices=[device_record("dev-77")])
    plan = SYNC_DEVICE.plan(ctx, {})
    assert dict(plan.arguments) == {"device_id": "dev-77"}
    assert plan.changes[0].before == "last sync 2025-05-31T08:00:00Z"
    twins = [device_record("dev-77"), device_record("dev-78")]
    plan = SYNC_DEVICE.plan(host_context(facts, None, devices=twins), {})
    assert plan.noop
    assert "2 Intune devices carry its name (dev-77, dev-78)" in plan.note


def test_sync_apply_requests_a_check_in_and_rollback_is_a_no_op() -> None:
    facts = endpoint_facts(mdm={"Contoso Device Tunnel": DEVICE_TUNNEL_XML})
    plan = SYNC_DEVICE.plan(host_context(facts, managed_host()), {})
    fake = FakeIntune(devices={"dev-0001": "2025-05-31T08:00:00Z"})
    conn = FakeConnection(fake, target="ep-0001", host=managed_host())
    result = SYNC_DEVICE.apply(conn, plan)
    assert result.to_dict() == {
        "changed": True,
        "before": {"device_id": "dev-0001", "last_sync": "2025-05-31T08:00:00Z"},
        "after": {"device_id": "dev-0001", "sync_requested_at": "2025-06-01T00:00:00Z"},
        "message": "sync requested: the device checks in later; verification waits for the check-in",
    }
    assert fake.writes == [("syncDevice", "dev-0001")]
    undo = SYNC_DEVICE.rollback(conn, result.before)
    assert undo.changed is False
    assert fake.writes == [("syncDevice", "dev-0001")]
    fake.devices.clear()  # the device was deleted from Intune since planning
    with pytest.raises(NotFoundError):
        SYNC_DEVICE.apply(conn, plan)
    assert fake.writes == [("syncDevice", "dev-0001")]
