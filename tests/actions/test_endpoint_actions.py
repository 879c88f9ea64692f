"""The endpoint actions on data: plans from EndpointFacts and the checks' findings, apply and rollback
against a fake host that keeps VPN routes and certificate stores the way the scripts describe them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel

from orchestrator.actions import ActionPlan, Change, PlanContext, get_action
from orchestrator.actions.endpoint import (
    CERT_AUTOENROLL,
    FIX_VPN_ROUTES,
    INSTALL_CA_CERTIFICATES,
    fleet_certificates,
)
from orchestrator.checks import run_checks
from orchestrator.checks.model import Finding
from orchestrator.checks.pki import EP_CERT_02
from orchestrator.errors import ActionFailedError, InputError, ScriptFailedError
from orchestrator.facts import FactsDocument
from orchestrator.facts.endpoint import EndpointFacts
from orchestrator.facts.fleet import FleetFacts, HostFacts
from orchestrator.facts.x509 import thumbprint
from orchestrator.inventory.models import Role
from orchestrator.scripts.action_schemas import (
    CaStore,
    CertPulseResult,
    ImportCertificateResult,
    RemoveCertificateResult,
    SetVpnRouteResult,
)
from orchestrator.scripts.spec import Invocation
from tests.sweep.support import facts_document

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DOMAIN = "corp.contoso.test"
DEVICE = "Contoso Device Tunnel"
USER = "Contoso User Tunnel"
HOST = "EP-1"
FQDN = f"ep-1.{DOMAIN}"


# -- a small PKI --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.der).decode()

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.der)

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(
    cn: str,
    issuer: Issued | None = None,
    *,
    ca: bool = False,
    ekus: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    not_after: datetime = AT + timedelta(days=365),
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(AT - timedelta(days=400))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
    return Issued(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


ROOT = issue("Contoso Root CA", ca=True)
ISSUING = issue("Contoso Issuing CA 01", ROOT, ca=True)
DEVICE_CERT = issue(FQDN, ISSUING)
EXPIRED_CERT = issue(FQDN, ISSUING, not_after=AT - timedelta(days=1))


# -- facts --------------------------------------------------------------------------------------------


def connection(name: str, *routes: str, device_tunnel: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "guid": "{00000000-0000-0000-0000-000000000001}",
        "all_user_connection": True,
        "server_address": "vpn.contoso.test",
        "tunnel_type": "Ikev2",
        "authentication_method": ["MachineCertificate"] if device_tunnel else ["Eap"],
        "split_tunneling": True,
        "connection_status": "Disconnected",
        "dns_suffix": None,
        "routes": [{"destination_prefix": route, "route_metric": 1} for route in routes],
        "machine_certificate_eku_filter": [],
        "ipsec_custom_policy": None,
        "profile_type": "DeviceTunnel" if device_tunnel else "UserTunnel",
    }


def profile_xml(*routes: tuple[str, int], device_tunnel: bool = True) -> str:
    body = "".join(f"<Route><Address>{a}</Address><PrefixSize>{s}</PrefixSize></Route>" for a, s in routes)
    return (
        f"<VPNProfile><DeviceTunnel>{str(device_tunnel).lower()}</DeviceTunnel><NativeProfile>"
        "<Servers>vpn.contoso.test</Servers><NativeProtocolType>IKEv2</NativeProtocolType>"
        f"<RoutingPolicyType>SplitTunnel</RoutingPolicyType></NativeProfile>{body}</VPNProfile>"
    )


def mdm(name: str, xml: str | None, scope: str = "device") -> dict[str, Any]:
    return {
        "scope": scope,
        "sid": None if scope == "device" else "S-1-5-21-1-2-3-1001",
        "name": name,
        "node_uri": f"./{scope.title()}/Vendor/MSFT/VPNv2/{name.replace(' ', '%20')}/ProfileXML",
        "profile_xml": xml,
    }


def stores(*entries: tuple[str, Issued, bool]) -> list[dict[str, Any]]:
    return [{"store": store, "der": cert.b64, "has_private_key": key} for store, cert, key in entries]


HEALTHY_STORES = (("Root", ROOT, False), ("CA", ISSUING, False), ("My", DEVICE_CERT, True))


def endpoint(
    name: str = HOST,
    *,
    certificates: Sequence[tuple[str, Issued, bool]] = HEALTHY_STORES,
    connections: Sequence[dict[str, Any]] = (),
    profiles: Sequence[dict[str, Any]] = (),
    domain: str | None = DOMAIN,
) -> EndpointFacts:
    document = facts_document(
        Role.ENDPOINT,
        name,
        certificates=stores(*certificates),
        vpn_connections=list(connections) or [connection(DEVICE, "10.10.2.0/24")],
        mdm_vpn_profiles=list(profiles),
        phonebook_entries=[],
        domain=domain,
        part_of_domain=domain is not None,
    )
    assert isinstance(document, EndpointFacts)
    return document


def ca_host() -> FactsDocument:
    return facts_document(
        Role.CA,
        "CA-01",
        ca_name="Contoso Issuing CA 01",
        ca_certificates=[ISSUING.b64],
        certificates=stores(("Root", ROOT, False), ("CA", ISSUING, False)),
    )


def context(facts: EndpointFacts, *checks: str, findings: Sequence[Finding] | None = None) -> PlanContext:
    fleet = FleetFacts(
        hosts=(
            HostFacts(name=HOST, role=Role.ENDPOINT, facts=facts),
            HostFacts(name="CA-01", role=Role.CA, facts=ca_host()),
        )
    )
    found = run_checks(fleet, at=AT, only=set(checks)) if findings is None else tuple(findings)
    mine = tuple(finding for finding in found if finding.host == HOST)
    return PlanContext(target=HOST, facts=facts, fleet=fleet, findings=mine, at=AT)


# -- a fake host behind the Connection --------------------------------------------------------------------


@dataclass
class FakeHost:
    """VPN routes and CA stores as the action scripts see them; every invocation recorded."""

    routes: dict[str, list[str]] = field(default_factory=dict)
    stores: dict[str, set[str]] = field(default_factory=lambda: {"Root": set(), "CA": set()})
    pulse: Callable[[str], CertPulseResult] | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_on: int | None = None  # the call number (0-based) that fails

    target: str = HOST
    host: None = None
    now: datetime = AT

    @property
    def intune(self) -> Any:
        raise AssertionError("endpoint actions never talk to Graph")

    def run(self, invocation: Invocation[Any], /) -> BaseModel:
        params = dict(invocation.params)
        if self.fail_on == len(self.calls):
            self.calls.append((invocation.script_id, params))
            raise ScriptFailedError(f"{invocation.script_id} failed: injected", host=self.target)
        self.calls.append((invocation.script_id, params))
        handler = getattr(self, "_" + invocation.script_id.split(".", 1)[1].replace("-", "_"))
        result: BaseModel = handler(**params)
        return result

    def _set_vpn_route(
        self, ConnectionName: str, OldPrefix: str, NewPrefix: str, AllUserConnection: bool
    ) -> SetVpnRouteResult:
        before = list(self.routes[ConnectionName])
        after = list(before)
        if NewPrefix and NewPrefix not in after:
            after.append(NewPrefix)
        if OldPrefix in after:
            after.remove(OldPrefix)
        self.routes[ConnectionName] = after
        return SetVpnRouteResult(
            connection=ConnectionName,
            changed=after != before,
            routes_before=tuple(before),
            routes_after=tuple(after),
        )

    def _import_certificate(self, Store: CaStore, CertificateBase64: str) -> ImportCertificateResult:
        cert = x509.load_der_x509_certificate(base64.b64decode(CertificateBase64))
        thumb = thumbprint(base64.b64decode(CertificateBase64))
        changed = thumb not in self.stores[Store]
        self.stores[Store].add(thumb)
        subject = cert.subject.rfc4514_string()
        return ImportCertificateResult(store=Store, thumbprint=thumb, subject=subject, changed=changed)

    def _remove_certificate(self, Store: CaStore, Thumbprint: str) -> RemoveCertificateResult:
        changed = Thumbprint in self.stores[Store]
        self.stores[Store].discard(Thumbprint)
        return RemoveCertificateResult(store=Store, thumbprint=Thumbprint, changed=changed)

    def _cert_pulse(self, NotBefore: str) -> CertPulseResult:
        assert self.pulse is not None
        return self.pulse(NotBefore)


# == endpoint.fix-vpn-routes ================================================================================


def test_the_actions_are_registered() -> None:
    assert get_action("endpoint.fix-vpn-routes") is FIX_VPN_ROUTES
    assert get_action("endpoint.install-ca-certificates") is INSTALL_CA_CERTIFICATES
    assert get_action("endpoint.cert-autoenroll") is CERT_AUTOENROLL
    assert (FIX_VPN_ROUTES.reversible, INSTALL_CA_CERTIFICATES.reversible, CERT_AUTOENROLL.reversible) == (
        True,
        True,
        False,
    )


def test_a_local_host_bit_route_is_planned_as_its_network() -> None:
    facts = endpoint(connections=[connection(DEVICE, "10.10.2.0/24", "172.21.12.0/21", "fd00:1::1/48")])
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    assert plan.changes == (
        Change(f"VpnConnection[{DEVICE}].Route", "172.21.12.0/21", "172.21.8.0/21"),
        Change(f"VpnConnection[{DEVICE}].Route", "fd00:1::1/48", "fd00:1::/48"),
    )
    assert plan.to_dict()["arguments"] == {
        "routes": [
            {"connection": DEVICE, "old": "172.21.12.0/21", "new": "172.21.8.0/21", "all_user": True},
            {"connection": DEVICE, "old": "fd00:1::1/48", "new": "fd00:1::/48", "all_user": True},
        ]
    }
    assert ActionPlan.from_dict(json.loads(json.dumps(plan.to_dict()))).digest() == plan.digest()


def test_nothing_to_fix_is_an_empty_plan() -> None:
    plan = FIX_VPN_ROUTES.plan(context(endpoint(), "EP-ROUTE-01"), {})
    assert plan.noop
    assert plan.arguments == {}
    assert "no EP-ROUTE-01 finding" in plan.note


def test_a_route_intune_delivered_is_not_changed_on_the_device() -> None:
    facts = endpoint(
        connections=[connection(DEVICE, "10.10.2.0/24", "10.10.3.0/23")],
        profiles=[mdm(DEVICE, profile_xml(("10.10.2.0", 24), ("10.10.3.0", 23)))],
    )
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    assert plan.noop
    assert f"{DEVICE}:10.10.3.0/23: not changed here, Intune owns this route" in plan.note
    assert "intune.sync-device" in plan.note


def test_a_route_added_locally_to_an_intune_profile_is_fixed_here() -> None:
    facts = endpoint(
        connections=[connection(DEVICE, "10.10.2.0/24", "10.10.3.0/23", "192.168.20.77/24")],
        profiles=[mdm(DEVICE, profile_xml(("10.10.2.0", 24), ("10.10.3.0", 23)))],
    )
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    assert plan.changes == (Change(f"VpnConnection[{DEVICE}].Route", "192.168.20.77/24", "192.168.20.0/24"),)
    assert "192.168.20.77/24: added locally to a profile Intune delivered" in plan.note
    assert "10.10.3.0/23: not changed here" in plan.note


def test_an_unreadable_profile_xml_counts_as_intune_s() -> None:
    facts = endpoint(
        connections=[connection(DEVICE, "172.21.12.0/21")],
        profiles=[mdm(DEVICE, None)],
    )
    assert FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {}).noop


def test_a_user_tunnel_route_from_intune_is_left_to_intune() -> None:
    facts = endpoint(
        profiles=[mdm(USER, profile_xml(("172.21.12.0", 21), device_tunnel=False), scope="user")],
    )
    ctx = context(facts, "EP-ROUTE-01")
    assert [finding.subject for finding in ctx.findings] == [f"{USER}:172.21.12.0/21"]
    plan = FIX_VPN_ROUTES.plan(ctx, {})
    assert plan.noop
    assert f"{USER}:172.21.12.0/21: only in a ProfileXML Intune delivered" in plan.note


def test_a_prefix_that_does_not_parse_needs_a_hand_fix() -> None:
    facts = endpoint(connections=[connection(DEVICE, "10.10.2.0/24", "10.300.0.0/16")])
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    assert plan.noop
    assert "10.300.0.0/16: the prefix does not parse; fix it by hand" in plan.note


def test_fix_routes_plans_only_from_endpoint_facts() -> None:
    ctx = context(endpoint(), "EP-ROUTE-01")
    other = PlanContext(target="CA-01", facts=ca_host(), fleet=ctx.fleet, findings=(), at=AT)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="plans from an endpoint's facts"):
        FIX_VPN_ROUTES.plan(other, {})


def route_plan() -> ActionPlan:
    facts = endpoint(connections=[connection(DEVICE, "10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21")])
    return FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})


def test_apply_replaces_each_route_and_keeps_what_rollback_needs() -> None:
    host = FakeHost(routes={DEVICE: ["10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21"]})
    result = FIX_VPN_ROUTES.apply(host, route_plan())
    assert host.calls == [
        ("endpoint.set-vpn-route", {"ConnectionName": DEVICE, "OldPrefix": "172.21.12.0/21",
                                    "NewPrefix": "172.21.8.0/21", "AllUserConnection": True}),
        ("endpoint.set-vpn-route", {"ConnectionName": DEVICE, "OldPrefix": "172.21.13.0/21",
                                    "NewPrefix": "172.21.8.0/21", "AllUserConnection": True}),
    ]  # fmt: skip
    assert host.routes[DEVICE] == ["10.10.2.0/24", "172.21.8.0/21"]
    assert result.changed
    assert result.to_dict()["before"] == {
        "routes": {DEVICE: ["10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21"]},
        "replaced": [
            {"connection": DEVICE, "old": "172.21.12.0/21", "new": "172.21.8.0/21", "all_user": True,
             "added": True, "removed": True},
            {"connection": DEVICE, "old": "172.21.13.0/21", "new": "172.21.8.0/21", "all_user": True,
             "added": False, "removed": True},
        ],
    }  # fmt: skip
    assert result.to_dict()["after"] == {"routes": {DEVICE: ["10.10.2.0/24", "172.21.8.0/21"]}}

    again = FIX_VPN_ROUTES.apply(host, route_plan())
    assert not again.changed
    assert again.to_dict()["before"]["replaced"] == []


def test_rollback_puts_the_old_routes_back_and_only_removes_what_apply_added() -> None:
    host = FakeHost(routes={DEVICE: ["10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21"]})
    result = FIX_VPN_ROUTES.apply(host, route_plan())
    host.calls.clear()
    undone = FIX_VPN_ROUTES.rollback(host, result.before)
    assert host.calls == [
        ("endpoint.set-vpn-route", {"ConnectionName": DEVICE, "OldPrefix": "", "NewPrefix": "172.21.13.0/21",
                                    "AllUserConnection": True}),
        ("endpoint.set-vpn-route", {"ConnectionName": DEVICE, "OldPrefix": "172.21.8.0/21",
                                    "NewPrefix": "172.21.12.0/21", "AllUserConnection": True}),
    ]  # fmt: skip
    assert sorted(host.routes[DEVICE]) == ["10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21"]
    assert undone.changed
    assert not FIX_VPN_ROUTES.rollback(host, result.before).changed


def test_a_network_route_that_was_already_there_survives_the_rollback() -> None:
    facts = endpoint(connections=[connection(DEVICE, "172.21.8.0/21", "172.21.12.0/21")])
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    host = FakeHost(routes={DEVICE: ["172.21.8.0/21", "172.21.12.0/21"]})
    result = FIX_VPN_ROUTES.apply(host, plan)
    assert host.routes[DEVICE] == ["172.21.8.0/21"]
    FIX_VPN_ROUTES.rollback(host, result.before)
    assert host.routes[DEVICE] == ["172.21.8.0/21", "172.21.12.0/21"]


def test_a_failure_after_a_change_keeps_the_change_in_the_journal() -> None:
    host = FakeHost(routes={DEVICE: ["10.10.2.0/24", "172.21.12.0/21", "172.21.13.0/21"]}, fail_on=1)
    result = FIX_VPN_ROUTES.apply(host, route_plan())
    assert result.changed
    assert result.message.startswith("stopped after 1 route(s)")
    assert result.to_dict()["after"]["failed"]["kind"] == "script_failed"
    assert len(result.to_dict()["before"]["replaced"]) == 1


def test_a_failure_before_any_change_raises() -> None:
    host = FakeHost(routes={DEVICE: ["172.21.12.0/21"]}, fail_on=0)
    with pytest.raises(ScriptFailedError):
        FIX_VPN_ROUTES.apply(host, route_plan())


# == endpoint.install-ca-certificates ======================================================================


def test_a_missing_root_is_planned_from_the_fleet() -> None:
    facts = endpoint(certificates=(("CA", ISSUING, False), ("My", DEVICE_CERT, True)))
    plan = INSTALL_CA_CERTIFICATES.plan(context(facts, "EP-CERT-04"), {})
    assert plan.changes == (Change(f"Cert:\\LocalMachine\\Root\\{ROOT.thumbprint}", None, ROOT.subject),)
    assert plan.to_dict()["arguments"] == {
        "certificates": [{"store": "Root", "thumbprint": ROOT.thumbprint, "der": ROOT.b64}]
    }


def test_a_missing_intermediate_goes_to_the_ca_store() -> None:
    facts = endpoint(certificates=(("Root", ROOT, False), ("My", DEVICE_CERT, True)))
    plan = INSTALL_CA_CERTIFICATES.plan(context(facts, "EP-CERT-04"), {})
    assert plan.changes == (Change(f"Cert:\\LocalMachine\\CA\\{ISSUING.thumbprint}", None, ISSUING.subject),)


def test_no_missing_ca_is_an_empty_plan() -> None:
    plan = INSTALL_CA_CERTIFICATES.plan(context(endpoint(), "EP-CERT-04"), {})
    assert plan.noop
    assert "no EP-CERT-04 finding" in plan.note


def missing(store: str, thumb: str) -> Finding:
    return Finding(
        check_id="EP-CERT-04",
        host=HOST,
        severity=EP_CERT_02.severity,
        title="missing",
        message="missing",
        subject=f"{store}:{thumb}",
        evidence={"reason": "missing_root" if store == "Root" else "missing_intermediate"},
    )


def test_a_certificate_nowhere_in_the_fleet_is_an_input_error() -> None:
    stranger = issue("Fabrikam Root CA", ca=True)
    ctx = context(endpoint(), findings=[missing("Root", stranger.thumbprint)])
    with pytest.raises(InputError, match=f"Root certificate {stranger.thumbprint} is in no host's facts"):
        INSTALL_CA_CERTIFICATES.plan(ctx, {})


def test_only_ca_certificates_are_installed() -> None:
    ctx = context(endpoint(), findings=[missing("CA", DEVICE_CERT.thumbprint)])
    with pytest.raises(InputError, match="is not a CA certificate"):
        INSTALL_CA_CERTIFICATES.plan(ctx, {})


def test_only_a_self_signed_certificate_goes_to_root() -> None:
    ctx = context(endpoint(), findings=[missing("Root", ISSUING.thumbprint)])
    with pytest.raises(InputError, match="is not self-signed"):
        INSTALL_CA_CERTIFICATES.plan(ctx, {})


def test_a_malformed_subject_is_an_input_error() -> None:
    ctx = context(endpoint(), findings=[missing("My", ROOT.thumbprint)])
    with pytest.raises(InputError, match="is not Root:<thumbprint> or CA:<thumbprint>"):
        INSTALL_CA_CERTIFICATES.plan(ctx, {})


def test_the_fleet_s_certificates_include_the_ca_hosts_own() -> None:
    fleet = context(endpoint(certificates=())).fleet
    assert set(fleet_certificates(fleet)) == {ROOT.thumbprint, ISSUING.thumbprint}


def ca_plan() -> ActionPlan:
    facts = endpoint(certificates=(("My", DEVICE_CERT, True),))
    return INSTALL_CA_CERTIFICATES.plan(context(facts, "EP-CERT-04"), {})


def test_apply_imports_and_rollback_removes_exactly_what_was_imported() -> None:
    plan = ca_plan()
    assert [change.field.split("\\")[2] for change in plan.changes] == ["CA", "Root"]
    host = FakeHost(stores={"Root": {ROOT.thumbprint}, "CA": set()})  # the root came back since the plan
    result = INSTALL_CA_CERTIFICATES.apply(host, plan)
    assert [call[0] for call in host.calls] == ["endpoint.import-certificate"] * 2
    assert host.calls[0][1] == {"Store": "CA", "CertificateBase64": ISSUING.b64}
    assert result.changed
    assert result.to_dict()["before"] == {"imported": [{"store": "CA", "thumbprint": ISSUING.thumbprint}]}
    assert [item["thumbprint"] for item in result.to_dict()["after"]["certificates"]] == [
        ISSUING.thumbprint,
        ROOT.thumbprint,
    ]
    assert not INSTALL_CA_CERTIFICATES.apply(host, plan).changed

    host.calls.clear()
    undone = INSTALL_CA_CERTIFICATES.rollback(host, result.before)
    assert host.calls == [("endpoint.remove-certificate", {"Store": "CA", "Thumbprint": ISSUING.thumbprint})]
    assert host.stores == {"Root": {ROOT.thumbprint}, "CA": set()}  # the root that was there stays
    assert undone.changed
    assert not INSTALL_CA_CERTIFICATES.rollback(host, result.before).changed


def test_an_import_that_fails_after_another_keeps_the_first_in_the_journal() -> None:
    host = FakeHost(fail_on=1)
    result = INSTALL_CA_CERTIFICATES.apply(host, ca_plan())
    assert result.changed
    assert result.to_dict()["before"] == {"imported": [{"store": "CA", "thumbprint": ISSUING.thumbprint}]}
    assert result.to_dict()["after"]["failed"]["kind"] == "script_failed"


# == endpoint.cert-autoenroll ==============================================================================


def test_an_expired_device_certificate_is_planned_for_autoenrollment() -> None:
    facts = endpoint(certificates=(("Root", ROOT, False), ("CA", ISSUING, False), ("My", EXPIRED_CERT, True)))
    plan = CERT_AUTOENROLL.plan(context(facts, "EP-CERT-01", "EP-CERT-02"), {})
    assert plan.changes == (
        Change(
            "Cert:\\LocalMachine\\My (device certificate)",
            f"expired: CN={FQDN}, {EXPIRED_CERT.thumbprint}",
            "new certificate from autoenrollment",
        ),
    )
    assert plan.to_dict()["arguments"] == {"not_before": "2026-03-01T02:00:00Z"}


def test_a_missing_device_certificate_is_planned_too() -> None:
    facts = endpoint(certificates=(("Root", ROOT, False), ("CA", ISSUING, False)))
    plan = CERT_AUTOENROLL.plan(context(facts, "EP-CERT-01", "EP-CERT-02"), {})
    assert [change.before for change in plan.changes] == [f"missing: no device certificate for {FQDN}"]


def test_an_expiring_device_certificate_is_renewed() -> None:
    expiring = issue(FQDN, ISSUING, not_after=AT + timedelta(days=5))
    facts = endpoint(certificates=(("Root", ROOT, False), ("CA", ISSUING, False), ("My", expiring, True)))
    plan = CERT_AUTOENROLL.plan(context(facts, "EP-CERT-01", "EP-CERT-02", "EP-CERT-05"), {})
    assert [change.before for change in plan.changes] == [f"expiring: CN={FQDN}, {expiring.thumbprint}"]


def revoked() -> Finding:
    return EP_CERT_02.finding(
        HOST,
        reason="revoked",
        subject="device-certificate",
        message="revoked",
        evidence={"certificate": {"subject": f"CN={FQDN}", "thumbprint": DEVICE_CERT.thumbprint}},
    )


def test_a_revoked_device_certificate_is_planned() -> None:
    plan = CERT_AUTOENROLL.plan(context(endpoint(), findings=[revoked()]), {})
    assert [change.before for change in plan.changes] == [f"revoked: CN={FQDN}, {DEVICE_CERT.thumbprint}"]


def test_a_chain_problem_is_not_fixed_by_a_new_certificate() -> None:
    partial = EP_CERT_02.finding(
        HOST, reason="partial_chain", subject="device-certificate", message="partial"
    )
    plan = CERT_AUTOENROLL.plan(context(endpoint(), findings=[partial]), {})
    assert plan.noop
    assert "EP-CERT-02 partial_chain: a chain problem" in plan.note


def test_a_healthy_device_certificate_is_an_empty_plan() -> None:
    plan = CERT_AUTOENROLL.plan(context(endpoint(), "EP-CERT-01", "EP-CERT-02"), {})
    assert plan.noop
    assert "the device certificate is fine" in plan.note


def test_a_workgroup_device_cannot_autoenroll() -> None:
    facts = endpoint(certificates=(("Root", ROOT, False), ("CA", ISSUING, False)), domain=None)
    plan = CERT_AUTOENROLL.plan(context(facts, "EP-CERT-01"), {})
    assert plan.noop
    assert "not domain-joined" in plan.note


def enrolled(changed: bool = True) -> CertPulseResult:
    return CertPulseResult.model_validate(
        {
            "triggered": changed,
            "certificate": {
                "thumbprint": DEVICE_CERT.thumbprint,
                "subject": f"CN={FQDN}",
                "not_after": AT + timedelta(days=365),
                "der": DEVICE_CERT.b64,
            },
            "changed": changed,
        }
    )


def autoenroll_plan() -> ActionPlan:
    facts = endpoint(certificates=(("Root", ROOT, False), ("CA", ISSUING, False)))
    return CERT_AUTOENROLL.plan(context(facts, "EP-CERT-01"), {})


def test_apply_pulses_and_reports_the_new_certificate() -> None:
    host = FakeHost(pulse=lambda _since: enrolled())
    result = CERT_AUTOENROLL.apply(host, autoenroll_plan())
    assert host.calls == [("endpoint.cert-pulse", {"NotBefore": "2026-03-01T02:00:00Z"})]
    assert result.changed
    assert result.to_dict()["after"] == {
        "certificate": {
            "thumbprint": DEVICE_CERT.thumbprint,
            "subject": f"CN={FQDN}",
            "not_after": "2027-03-01T02:00:00Z",
        }
    }


def test_a_certificate_issued_since_planning_is_not_enrolled_again() -> None:
    result = CERT_AUTOENROLL.apply(FakeHost(pulse=lambda _since: enrolled(changed=False)), autoenroll_plan())
    assert not result.changed
    assert "already there" in result.message


def test_no_certificate_in_time_fails_the_step() -> None:
    nothing = CertPulseResult(triggered=True, certificate=None, changed=False)
    with pytest.raises(ActionFailedError, match="no new device certificate arrived in time"):
        CERT_AUTOENROLL.apply(FakeHost(pulse=lambda _since: nothing), autoenroll_plan())


def test_autoenrollment_cannot_be_rolled_back() -> None:
    host = FakeHost()
    assert not CERT_AUTOENROLL.rollback(host, {"not_before": "2026-03-01T02:00:00Z"}).changed
    assert host.calls == []


def test_a_route_removed_since_planning_is_not_brought_back_by_the_rollback() -> None:
    facts = endpoint(connections=[connection(DEVICE, "172.21.12.0/21")])
    plan = FIX_VPN_ROUTES.plan(context(facts, "EP-ROUTE-01"), {})
    host = FakeHost(routes={DEVICE: []})  # someone removed the bad route by hand meanwhile
    result = FIX_VPN_ROUTES.apply(host, plan)
    assert host.routes[DEVICE] == ["172.21.8.0/21"]
    host.calls.clear()
    FIX_VPN_ROUTES.rollback(host, result.before)
    assert host.calls == [
        ("endpoint.set-vpn-route", {"ConnectionName": DEVICE, "OldPrefix": "172.21.8.0/21", "NewPrefix": "",
                                    "AllUserConnection": True}),
    ]  # fmt: skip
    assert host.routes[DEVICE] == []
