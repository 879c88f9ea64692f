"""Ground truth: what each fault must make a sweep find, and agreement with the product's checks.

Truth (:mod:`lab.estate.truth`) and the checks (``orchestrator/checks``) are written apart and
read the same estate from two sides: truth from the simulated state, the checks from what the lab
handlers print.  They must agree finding for finding.
"""

from __future__ import annotations

import datetime

import pytest

from lab.estate.build import BuiltEstate, build_estate
from lab.estate.faults import DEVICE_TUNNEL, FAULTS
from lab.estate.pki import der
from lab.estate.truth import TruthEntry, derive_truth
from lab.scenarios import load_scenario
from lab.scenarios.model import FaultEntry, FleetShape, Scenario, WinRMShape
from lab.windows.certstore import CertificateStores
from tests.lab.minisweep import keys, sweep

CDP = "http://127.0.0.1:9"


def small(*faults: FaultEntry, rras: int = 3) -> Scenario:
    return Scenario(
        name="truth",
        seed="truth",
        fleet=FleetShape(endpoints=6, rras=rras, ca=1),
        winrm=WinRMShape(addressing="shared"),
        faults=faults,
    )


def compare(built: BuiltEstate) -> tuple[list[TruthEntry], set[tuple[str, str, str, str]]]:
    """Truth, and the findings on which truth and the checks disagree (should be none)."""
    now = built.estate.now()
    truth = derive_truth(built.estate, built.tenant_state, now)
    return truth, keys(truth) ^ keys(sweep(built, now))


def on(truth: list[TruthEntry], host: str) -> set[tuple[str, str]]:
    return {(entry.check_id, entry.reason) for entry in truth if entry.host == host}


FAILED = ("EP-EVT-01", "connection_failed")
# fault -> the findings it must cause on its own host (knock-ons elsewhere are checked below)
MAPPING = {
    "device-cert-missing": ("EP-0001", {("EP-CERT-01", "missing"), FAILED}),
    "device-cert-wrong-eku": ("EP-0001", {("EP-CERT-01", "wrong_eku"), FAILED}),
    "device-cert-subject-mismatch": (
        "EP-0001", {("EP-CERT-01", "subject_mismatch"), FAILED}),
    "device-cert-expired": ("EP-0001", {("EP-CERT-01", "expired"), FAILED}),
    "device-cert-no-private-key": (
        "EP-0001", {("EP-CERT-01", "no_private_key"), FAILED}),
    "device-cert-untrusted": ("EP-0001", {("EP-CERT-01", "missing"), FAILED}),
    "device-cert-revoked": ("EP-0001", {("EP-CERT-02", "revoked"), FAILED}),
    "endpoint-root-missing": ("EP-0001", {("EP-CERT-04", "missing_root"), FAILED}),
    "endpoint-intermediate-missing": (
        "EP-0001", {("EP-CERT-04", "missing_intermediate"), FAILED}),
    "route-host-bits": ("EP-0001", {("EP-ROUTE-01", "host_bits")}),
    "route-not-plumbed": ("EP-0001", {("EP-ROUTE-02", "missing_from_routing_table")}),
    "profile-missing": ("EP-0001", {("EP-PROF-01", "missing_on_device")}),
    "win11-pre-kb5008353": ("EP-0001", {("EP-OS-01", "missing_kb5008353")}),
    "ike-blocked": ("EP-0001", {FAILED}),
    "rras-root-mismatch": ("RRAS-01", {("RRAS-AUTH-01", "mismatch"), ("RRAS-DRIFT-01", "drift")}),
    "rras-cert-wrong-eku": ("RRAS-01", {("RRAS-CERT-01", "wrong_eku")}),
    "rras-cert-subject-mismatch": ("RRAS-01", {("RRAS-CERT-01", "subject_mismatch")}),
    "rras-cert-expired": ("RRAS-01", {("RRAS-CERT-01", "expired")}),
    "rras-intermediate-missing": ("RRAS-01", {("RRAS-CERT-01", "partial_chain")}),
    "crl-expired": ("CA-01", {("CA-CRL-01", "expired")}),
    "crl-expiring": ("CA-01", {("CA-CRL-01", "expiring")}),
    "intune-route-host-bits": ("intune", {("INT-PROF-02", "host_bits")}),
    "intune-profilexml-host-bits": ("intune", {("INT-PROF-02", "host_bits")}),
}  # fmt: skip


def test_the_mapping_covers_every_fault_type() -> None:
    assert set(MAPPING) == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(MAPPING))
def test_each_fault_alone_is_found_where_it_is_and_the_checks_agree(fault: str) -> None:
    host, expected = MAPPING[fault]
    entry = FaultEntry(type=fault, count=1) if host == "intune" else FaultEntry(type=fault, hosts=(host,))
    truth, differ = compare(build_estate(small(entry), cdp_base_url=CDP))
    assert differ == set()
    assert on(truth, host) == expected
    assert {item.fault for item in truth} == {fault}


def test_an_rras_fault_stops_the_device_tunnels_behind_that_node_only() -> None:
    built = build_estate(small(FaultEntry(type="rras-cert-wrong-eku", hosts=("RRAS-01",))), cdp_base_url=CDP)
    truth, differ = compare(built)
    assert differ == set()
    failing = {e.host for e in truth if e.check_id == "EP-EVT-01"}
    behind = {s.name for s in built.estate.by_role("endpoint") if built.estate.pick_rras(s.name) == "RRAS-01"}
    assert failing == behind
    assert {e.cause_host for e in truth if e.check_id == "EP-EVT-01"} == {"RRAS-01"}


def test_an_expired_crl_stops_every_device_tunnel() -> None:
    built = build_estate(small(FaultEntry(type="crl-expired", hosts=("CA-01",))), cdp_base_url=CDP)
    truth, differ = compare(built)
    assert differ == set()
    events = {e.host: e for e in truth if e.check_id == "EP-EVT-01"}
    assert set(events) == {f"EP-000{i}" for i in range(1, 7)}
    assert {(e.subject, e.fault, e.cause_host) for e in events.values()} == {
        (f"{DEVICE_TUNNEL}:13806", "crl-expired", "CA-01")
    }
    assert {e.subject for e in truth if e.check_id == "CA-CRL-01"} == {
        "crl:Contoso Issuing CA 01.crl",
        f"cdp:{CDP}/CertEnroll/Contoso%20Issuing%20CA%2001.crl",
    }


def test_a_healthy_estate_has_no_truth_and_the_checks_find_nothing() -> None:
    truth, differ = compare(build_estate(load_scenario("healthy"), cdp_base_url=CDP))
    assert truth == []
    assert differ == set()


def test_seed_article_shows_every_injected_fault_and_explains_every_finding() -> None:
    built = build_estate(load_scenario("seed-article"), cdp_base_url=CDP)
    truth, differ = compare(built)
    assert differ == set()
    assert {entry.fault for entry in truth} == {item.fault for item in built.estate.injected}
    assert "unexplained" not in {entry.fault for entry in truth}
    assert all(
        entry.playbook or entry.check_id not in {"EP-CERT-01", "EP-ROUTE-01", "CA-CRL-01"} for entry in truth
    )


def test_a_healthy_estate_stays_healthy_as_days_pass() -> None:
    """The CA republishes on schedule: at no time is a CRL expiring, overdue or expired."""
    start = datetime.datetime(2026, 3, 14, 8, 0, tzinfo=datetime.UTC)
    now = [start]
    built = build_estate(small(), cdp_base_url=CDP, clock=lambda: now[0])
    for hours in range(0, 24 * 15, 7):
        now[0] = start + datetime.timedelta(hours=hours)
        truth, differ = compare(built)
        assert (truth, differ) == ([], set()), f"after {hours} h"


def test_truth_follows_the_state_when_a_host_is_fixed() -> None:
    built = build_estate(small(FaultEntry(type="device-cert-expired", hosts=("EP-0002",))), cdp_base_url=CDP)
    estate = built.estate
    assert on(derive_truth(estate, built.tenant_state), "EP-0002")
    # device-cert-reenroll, by hand: a fresh certificate from the issuing CA replaces the expired one
    state = estate.host("EP-0002")
    stores = state.component(CertificateStores)
    for entry in stores.certificates("My"):
        stores.remove("My", entry.thumbprint)
    fresh = estate.pki.issue("endpoint:ep-0002:renewed", estate.pki.device_request(state.fqdn))
    stores.add("My", der(fresh), has_private_key=True)
    later = estate.now() + datetime.timedelta(minutes=5)
    assert on(derive_truth(estate, built.tenant_state, later), "EP-0002") == set()  # a 20225 now follows


def test_the_same_scenario_builds_the_same_estate() -> None:
    first = build_estate(load_scenario("mixed-1k", hosts=300), cdp_base_url=CDP).estate.injected
    second = build_estate(load_scenario("mixed-1k", hosts=300), cdp_base_url=CDP).estate.injected
    assert first == second
    assert len({item.host for item in first if item.host.startswith("EP-")}) == len(
        [item for item in first if item.host.startswith("EP-")]
    )  # one random fault per endpoint


@pytest.mark.slow
def test_mixed_1k_truth_agrees_with_the_checks() -> None:
    built = build_estate(load_scenario("mixed-1k"), cdp_base_url=CDP)
    truth, differ = compare(built)
    assert differ == set()
    assert len(truth) > 50
    assert "unexplained" not in {entry.fault for entry in truth}
