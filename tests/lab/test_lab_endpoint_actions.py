"""The endpoint actions against a running estate, through the product's WinRM transport.

Each fault of the seed article sits on a named endpoint of ``seed-article``; the action plans from
the facts the lab's handlers print (``tests/lab/minisweep.py``) and the product's checks, applies
over a real :class:`WinRMSession` (pypsrp, NTLM over HTTPS), and then the lab's ground truth (derived
from the simulated state, never from the checks) must no longer list the finding.  A second
identical call changes nothing, and the lab's change log shows each change exactly once.

A small estate without Intune adds what ``seed-article`` cannot show: a device tunnel provisioned
locally, an endpoint whose tunnel comes up once its certificate is renewed, and a CA that cannot
be reached.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from lab.estate.build import build_estate
from lab.estate.enrollment import EnrollmentError, autoenroll
from lab.estate.faults import DEVICE_TUNNEL
from lab.estate.runtime import EstateLab
from lab.estate.tunnels import device_tunnel
from lab.scenarios import load_scenario
from lab.scenarios.model import FaultEntry, FleetShape, Scenario, TenantShape, WinRMShape
from lab.windows.certstore import CertificateStores
from lab.windows.certsvc import CERTSVC
from lab.windows.services import Services
from orchestrator.actions import Action, ActionPlan, ApplyResult, PlanContext
from orchestrator.actions.endpoint import CERT_AUTOENROLL, FIX_VPN_ROUTES, INSTALL_CA_CERTIFICATES
from orchestrator.checks import run_checks
from orchestrator.config import load_settings
from orchestrator.credentials.vault import Vault
from orchestrator.errors import ScriptFailedError
from orchestrator.inventory import load_inventory
from orchestrator.inventory.models import Host
from orchestrator.scripts import Invocation
from orchestrator.scripts.catalog import CERT_PULSE, IMPORT_CERTIFICATE, REMOVE_CERTIFICATE, SET_VPN_ROUTE
from orchestrator.transport.winrm import WinRMSession
from tests.lab.minisweep import fleet_facts

DEVICE_CERT_FAULTS = [
    ("EP-0001", "EP-CERT-01", "missing"),  # device-cert-missing
    ("EP-0002", "EP-CERT-01", "wrong_eku"),
    ("EP-0003", "EP-CERT-01", "subject_mismatch"),
    ("EP-0004", "EP-CERT-01", "expired"),
    ("EP-0005", "EP-CERT-01", "missing"),  # device-cert-untrusted: a foreign CA's certificate
    ("EP-0006", "EP-CERT-02", "revoked"),
    ("EP-0007", "EP-CERT-01", "no_private_key"),
]


# -- the product's side: a Connection over WinRMSession -----------------------------------------------


class WinRMConnection:
    """The :class:`~orchestrator.actions.Connection` the engine gives an action, over one session."""

    def __init__(self, session: WinRMSession, now: datetime.datetime) -> None:
        self._session = session
        self._now = now

    @property
    def target(self) -> str:
        return self._session.host.name

    @property
    def host(self) -> Host:
        return self._session.host

    @property
    def now(self) -> datetime.datetime:
        return self._now

    @property
    def intune(self) -> Any:
        raise AssertionError("endpoint actions never talk to Graph")

    def run(self, invocation: Invocation[Any], /) -> Any:
        return self._session.run(invocation).value


class Estate:
    """A running estate as the product sees it: inventory, vault, facts, findings, truth, changes."""

    def __init__(self, lab: EstateLab) -> None:
        self.lab = lab
        settings = load_settings(lab.info.directory / "fleetfix.toml")
        self.inventory = load_inventory(settings.inventory)
        self.credential = Vault.from_settings(settings, environ={}).get("lab")

    def session(self, name: str) -> WinRMSession:
        host = self.inventory.get(name.lower())
        assert host is not None
        return WinRMSession(host, self.credential)

    def context(self, name: str) -> PlanContext:
        """Fresh facts of every host (the lab's handlers) and the product's findings on ``name``."""
        built = self.lab.built
        fleet, now = self.lab.run(lambda: (fleet_facts(built, built.estate.now()), built.estate.now()))
        facts = next(host.facts for host in fleet.hosts if host.name == name)
        assert facts is not None
        findings = tuple(f for f in run_checks(fleet, at=now) if f.host == name)
        return PlanContext(target=name, facts=facts, fleet=fleet, findings=findings, at=now)

    def apply(self, action: Action, name: str, plan: ActionPlan) -> ApplyResult:
        with self.session(name) as session:
            return action.apply(WinRMConnection(session, self.now()), plan)

    def rollback(self, action: Action, name: str, before: Any) -> ApplyResult:
        with self.session(name) as session:
            return action.rollback(WinRMConnection(session, self.now()), before)

    def run(self, name: str, invocation: Invocation[Any]) -> Any:
        with self.session(name) as session:
            return session.run(invocation).value

    def now(self) -> datetime.datetime:
        return self.lab.run(self.lab.built.estate.now)

    def personal(self, name: str) -> list[tuple[str, bool]]:
        """``Cert:\\LocalMachine\\My`` of a host: thumbprints and whether the key is there."""
        state = self.lab.built.estate.host(name)
        held = self.lab.run(lambda: state.component(CertificateStores).certificates("My"))
        return [(entry.thumbprint, entry.has_private_key) for entry in held]

    def truth(self, name: str, *check_ids: str) -> set[tuple[str, str, str]]:
        return {
            (entry["check_id"], entry["subject"], entry["reason"])
            for entry in self.lab.truth()["truth"]
            if entry["host"] == name and (not check_ids or entry["check_id"] in check_ids)
        }

    def changes(self, name: str, script_id: str) -> list[dict[str, Any]]:
        return [change for change in self.lab.changes().get(name, []) if change["script_id"] == script_id]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    with EstateLab(load_scenario("seed-article"), directory=tmp_path_factory.mktemp("seed")) as lab:
        yield Estate(lab)


# -- device certificates: autoenrollment ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "check_id", "reason"), DEVICE_CERT_FAULTS, ids=[f[0] for f in DEVICE_CERT_FAULTS]
)
def test_autoenrollment_replaces_an_unfit_or_revoked_device_certificate(
    seed: Estate, name: str, check_id: str, reason: str
) -> None:
    assert seed.truth(name, "EP-CERT-01", "EP-CERT-02") == {(check_id, "device-certificate", reason)}
    old = {thumb for thumb, _key in seed.personal(name)}
    plan = CERT_AUTOENROLL.plan(seed.context(name), {})
    assert [change.before.split(":")[0] for change in plan.changes] == [reason]  # type: ignore[union-attr]

    result = seed.apply(CERT_AUTOENROLL, name, plan)
    assert result.changed
    new = result.to_dict()["after"]["certificate"]["thumbprint"]
    assert seed.truth(name, "EP-CERT-01", "EP-CERT-02") == set()
    assert seed.truth(name, "EP-CERT-04") == set()  # the new certificate chains on the device

    again = seed.apply(CERT_AUTOENROLL, name, plan)
    assert (again.changed, again.to_dict()["after"]["certificate"]["thumbprint"]) == (False, new)
    assert [(c["what"], set(c["before"]), c["after"]) for c in seed.changes(name, "endpoint.cert-pulse")] == [
        ("Cert:\\LocalMachine\\My (autoenrollment)", old, [new])
    ]
    assert seed.personal(name) == [(new, True)]  # the others archived: out of Cert:\LocalMachine\My
    assert CERT_AUTOENROLL.plan(seed.context(name), {}).noop  # the product's checks agree


# -- CA certificates ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "store"), [("EP-0008", "Root"), ("EP-0009", "CA")])
def test_a_missing_root_or_intermediate_is_imported_and_rolled_back(
    seed: Estate, name: str, store: str
) -> None:
    (finding,) = seed.truth(name, "EP-CERT-04")
    assert finding[1].startswith(f"{store}:")
    thumb = finding[1].split(":", 1)[1]
    plan = INSTALL_CA_CERTIFICATES.plan(seed.context(name), {})
    assert [change.field for change in plan.changes] == [f"Cert:\\LocalMachine\\{store}\\{thumb}"]

    result = seed.apply(INSTALL_CA_CERTIFICATES, name, plan)
    assert result.changed
    assert seed.truth(name, "EP-CERT-04") == set()
    assert not seed.apply(INSTALL_CA_CERTIFICATES, name, plan).changed
    imports = seed.changes(name, "endpoint.import-certificate")
    assert [(c["what"], c["before"]) for c in imports] == [(f"Cert:\\LocalMachine\\{store}\\{thumb}", None)]

    undone = seed.rollback(INSTALL_CA_CERTIFICATES, name, result.before)
    assert undone.changed
    assert seed.truth(name, "EP-CERT-04") == {finding}
    assert not seed.rollback(INSTALL_CA_CERTIFICATES, name, result.before).changed
    assert [c["what"] for c in seed.changes(name, "endpoint.remove-certificate")] == [
        f"Cert:\\LocalMachine\\{store}\\{thumb}"
    ]


# -- routes -------------------------------------------------------------------------------------------------


def test_a_route_added_locally_is_fixed_and_the_intune_route_is_left_to_intune(seed: Estate) -> None:
    name = "EP-0010"
    local, from_intune = f"{DEVICE_TUNNEL}:192.168.20.77/24", f"{DEVICE_TUNNEL}:10.10.3.0/23"
    assert {subject for _, subject, _ in seed.truth(name, "EP-ROUTE-01")} == {local, from_intune}
    plan = FIX_VPN_ROUTES.plan(seed.context(name), {})
    assert [(c.field, c.before, c.after) for c in plan.changes] == [
        (f"VpnConnection[{DEVICE_TUNNEL}].Route", "192.168.20.77/24", "192.168.20.0/24")
    ]
    assert f"{from_intune}: not changed here, Intune owns this route" in plan.note

    result = seed.apply(FIX_VPN_ROUTES, name, plan)
    assert result.changed
    assert {subject for _, subject, _ in seed.truth(name, "EP-ROUTE-01")} == {from_intune}
    assert not seed.apply(FIX_VPN_ROUTES, name, plan).changed
    (change,) = seed.changes(name, "endpoint.set-vpn-route")
    assert change["what"] == f"VpnConnection[{DEVICE_TUNNEL}].Routes"
    assert (change["before"][-1], change["after"][-1]) == ("192.168.20.77/24", "192.168.20.0/24")

    assert seed.rollback(FIX_VPN_ROUTES, name, result.before).changed
    assert {subject for _, subject, _ in seed.truth(name, "EP-ROUTE-01")} == {local, from_intune}
    assert not seed.rollback(FIX_VPN_ROUTES, name, result.before).changed
    assert len(seed.changes(name, "endpoint.set-vpn-route")) == 2


# -- bad input fails as Windows fails, and changes nothing -------------------------------------------------


@pytest.mark.parametrize(
    ("invocation", "message"),
    [
        (SET_VPN_ROUTE.bind(ConnectionName="Nope", OldPrefix="10.0.0.1/8", NewPrefix="10.0.0.0/8"), "found"),
        (
            SET_VPN_ROUTE.bind(
                ConnectionName=DEVICE_TUNNEL, OldPrefix="10.10.2.0/24", NewPrefix="10.10.9.0/24",
                AllUserConnection=False,
            ),
            "not found",
        ),
        (SET_VPN_ROUTE.bind(ConnectionName=DEVICE_TUNNEL, OldPrefix="", NewPrefix="10.10.0/24"), "incorrect"),
        (SET_VPN_ROUTE.bind(ConnectionName=DEVICE_TUNNEL, OldPrefix="", NewPrefix=""), "nothing to replace"),
        (IMPORT_CERTIFICATE.bind(Store="My", CertificateBase64="AAAA"), "ValidateSet"),
        (IMPORT_CERTIFICATE.bind(Store="Root", CertificateBase64="bm90IGEgY2VydA=="), "not a base64 DER"),
        (REMOVE_CERTIFICATE.bind(Store="CA", Thumbprint="12AB"), "not a certificate thumbprint"),
        (CERT_PULSE.bind(NotBefore="yesterday"), "is not a time"),
    ],
    ids=["no-connection", "not-all-user", "bad-prefix", "no-prefix", "bad-store", "not-a-cert", "bad-thumb",
         "bad-time"],
)  # fmt: skip
def test_bad_input_is_a_terminating_error(seed: Estate, invocation: Invocation[Any], message: str) -> None:
    with pytest.raises(ScriptFailedError, match=message):
        seed.run("EP-0013", invocation)
    assert seed.lab.changes().get("EP-0013", []) == []


# -- a small estate without Intune: local tunnels, a tunnel that comes up, a CA out of reach ----------------


class SteppedClock:
    """The estate's clock, moved by the test: a tunnel's new outcome is an event *after* the old ones."""

    def __init__(self) -> None:
        self.at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)

    def __call__(self) -> datetime.datetime:
        return self.at

    def step(self) -> None:
        self.at += datetime.timedelta(minutes=5)


LOCAL = Scenario(
    name="endpoint-actions",
    seed="endpoint-actions",
    fleet=FleetShape(endpoints=3, rras=1, ca=1),
    winrm=WinRMShape(addressing="shared"),
    tenant=TenantShape(enabled=False),
    faults=(
        FaultEntry(type="device-cert-revoked", hosts=("EP-0001",)),
        FaultEntry(type="route-host-bits", hosts=("EP-0002",), params={"prefix": "172.21.12.0/21"}),
        FaultEntry(type="device-cert-expired", hosts=("EP-0003",)),
    ),
)


@pytest.fixture(scope="module")
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, clock: SteppedClock) -> Iterator[Estate]:
    with EstateLab(LOCAL, directory=tmp_path_factory.mktemp("local"), clock=clock) as lab:
        yield Estate(lab)


def test_a_renewed_certificate_brings_the_device_tunnel_up(local: Estate, clock: SteppedClock) -> None:
    name = "EP-0001"
    before = local.truth(name)
    assert ("EP-CERT-02", "device-certificate", "revoked") in before
    assert any(check_id == "EP-EVT-01" for check_id, _, _ in before)  # 13801 retried every 30 minutes
    result = local.apply(CERT_AUTOENROLL, name, CERT_AUTOENROLL.plan(local.context(name), {}))
    assert result.changed
    clock.step()
    state = local.lab.built.estate.host(name)
    assert local.lab.run(lambda: device_tunnel(local.lab.built.estate, state, clock()).connected)
    assert local.truth(name) == set()  # nothing else was wrong: the tunnel connected (20225)


def test_a_locally_provisioned_tunnel_gets_its_route_fixed_and_plumbed(
    local: Estate, clock: SteppedClock
) -> None:
    name = "EP-0002"
    plan = FIX_VPN_ROUTES.plan(local.context(name), {})
    assert [(c.before, c.after) for c in plan.changes] == [("172.21.12.0/21", "172.21.8.0/21")]
    assert "Intune" not in plan.note
    assert local.apply(FIX_VPN_ROUTES, name, plan).changed
    clock.step()
    assert local.truth(name) == set()
    facts = local.context(name).facts
    routed = {(row.destination_prefix, row.interface_alias) for row in facts.routes or ()}  # type: ignore[union-attr]
    assert ("172.21.8.0/21", DEVICE_TUNNEL) in routed  # Windows plumbs the network on the connected tunnel


def test_enrollment_fails_and_changes_nothing_when_no_ca_answers(local: Estate) -> None:
    name = "EP-0003"
    estate = local.lab.built.estate
    ca_services = estate.host("CA-01").component(Services)
    plan = CERT_AUTOENROLL.plan(local.context(name), {})
    local.lab.run(lambda: ca_services.stop(CERTSVC))
    try:
        with pytest.raises(ScriptFailedError, match="RPC server is unavailable"):
            local.apply(CERT_AUTOENROLL, name, plan)
        assert local.changes(name, "endpoint.cert-pulse") == []
        assert ("EP-CERT-01", "device-certificate", "expired") in local.truth(name)
    finally:
        local.lab.run(lambda: ca_services.start(CERTSVC, estate.now()))
    assert local.apply(CERT_AUTOENROLL, name, plan).changed


def test_an_estate_without_a_ca_host_cannot_enroll() -> None:
    scenario = LOCAL.model_copy(update={"fleet": FleetShape(endpoints=1, rras=1, ca=0), "faults": ()})
    built = build_estate(scenario, cdp_base_url="http://127.0.0.1:9")
    device = built.estate.host("EP-0001")
    held = device.component(CertificateStores).certificates("My")
    with pytest.raises(EnrollmentError, match="no enterprise CA could be reached"):
        autoenroll(built.estate, device, built.estate.now())
    assert device.component(CertificateStores).certificates("My") == held
