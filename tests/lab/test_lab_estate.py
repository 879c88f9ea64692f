"""A running estate: one loop serves WinRM, the Intune tenant and the CDP; one machine, two views.

The product's own clients talk to it with the settings ``fleetfix lab up`` writes: the WinRM
transport runs a fact probe, the Graph client changes an Intune profile, and the endpoint's state
(seen again over WinRM) follows.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from lab.estate.faults import USER_TUNNEL
from lab.estate.runtime import EstateLab
from lab.scenarios.model import FaultEntry, FleetShape, Scenario, TenantShape, WinRMShape
from lab.windows.vpnclient import VpnClient
from orchestrator.config import load_settings
from orchestrator.credentials.vault import Vault
from orchestrator.inventory import load_inventory
from orchestrator.scripts import get_script
from orchestrator.transport.graph import VpnRoute, open_intune
from orchestrator.transport.winrm import WinRMSession

SCENARIO = Scenario(
    name="estate",
    seed="estate",
    fleet=FleetShape(endpoints=4, rras=1, ca=1),
    winrm=WinRMShape(addressing="shared"),
    tenant=TenantShape(sync_delay_s=0.05),
    faults=(FaultEntry(type="win11-pre-kb5008353", hosts=("EP-0002",)),),
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EstateLab]:
    with EstateLab(SCENARIO, directory=tmp_path_factory.mktemp("estate")) as running:
        yield running


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_the_lab_directory_has_what_fleetfix_needs(lab: EstateLab) -> None:
    directory = lab.info.directory
    assert {p.name for p in directory.iterdir()} >= {
        "fleetfix.toml",
        "inventory.yaml",
        "ca.pem",
        "lab.json",
        "data",
    }
    assert (directory / "lab.json").stat().st_mode & 0o077 == 0
    settings = load_settings(directory / "fleetfix.toml")
    hosts = load_inventory(settings.inventory)
    assert sorted(host.name for host in hosts) == [
        "ca-01",
        "ep-0001",
        "ep-0002",
        "ep-0003",
        "ep-0004",
        "rras-01",
    ]
    assert Vault.from_settings(settings, environ={}).get("lab").username == "fleetfix"


def test_the_product_collects_facts_over_winrm(lab: EstateLab) -> None:
    settings = load_settings(lab.info.directory / "fleetfix.toml")
    host = load_inventory(settings.inventory).get("ep-0002")
    assert host is not None
    credential = Vault.from_settings(settings, environ={}).get("lab")
    spec = get_script("endpoint.facts")
    with WinRMSession(host, credential) as session:
        facts = session.run(spec.parse_params([])).value
    assert (facts.os.build, facts.os.ubr) == (22000, 318)
    assert {c.name for c in facts.vpn_connections} == {"Contoso Device Tunnel"}
    assert any(entry.scope == "user" and entry.name == USER_TUNNEL for entry in facts.phonebook_entries)


def test_the_cdp_serves_the_crls_the_certificates_name(lab: EstateLab) -> None:
    pki = lab.built.estate.pki
    with urllib.request.urlopen(pki.issuing.crl_url, timeout=5) as response:
        crl = x509.load_der_x509_crl(response.read())
    assert crl.issuer == pki.issuing.certificate.subject
    with urllib.request.urlopen(pki.url(f"{pki.issuing.name}.crt"), timeout=5) as response:
        assert response.read() == pki.issuing.der


def test_a_route_patched_in_intune_reaches_the_endpoint_and_kb5008353_deletes_the_profile(
    lab: EstateLab, tmp_path: Path
) -> None:
    settings = load_settings(lab.info.directory / "fleetfix.toml")
    estate = lab.built.estate
    fine, affected = estate.host("EP-0001"), estate.host("EP-0002")
    with open_intune(settings, vault=Vault.from_settings(settings, environ={})) as intune:
        profile = next(p for p in intune.vpn_profiles() if p.connection_name == USER_TUNNEL)
        routes = [VpnRoute("10.0.0.0", 8), VpnRoute("172.21.8.0", 21), VpnRoute("192.168.50.0", 24)]
        intune.set_vpn_routes(profile.id, routes)
        assert lab.run(lambda: affected.component(VpnClient).get(USER_TUNNEL)) is None  # KB5008353
        devices = {device.device_name: device.id for device in intune.managed_devices()}
        intune.sync_devices([devices["EP-0001"], devices["EP-0002"]])

    def delivered(state: object) -> list[str]:
        held = lab.run(lambda: state.component(VpnClient).get(USER_TUNNEL))  # type: ignore[attr-defined]
        return [] if held is None else [route.prefix for route in held.routes]

    wait_for(lambda: "192.168.50.0/24" in delivered(fine) and "192.168.50.0/24" in delivered(affected))
    changes = lab.changes()
    assert [c["what"] for c in changes["EP-0002"]][:1] == [f"vpn profile {USER_TUNNEL} (KB5008353)"]
    assert all(c["script_id"] == "intune.check-in" for host in changes.values() for c in host)


def test_status_reports_the_fleet(lab: EstateLab) -> None:
    status = lab.run(lab.server.status)
    assert status["hosts"] == {"endpoint": 4, "rras": 1, "ca": 1}
    assert status["faults_injected"] == 1
    assert status["crl_base_url"] == lab.info.crl_base_url


@pytest.mark.slow
def test_mixed_1k_starts_and_serves(tmp_path: Path) -> None:
    from lab.scenarios import load_scenario  # noqa: PLC0415

    scenario = load_scenario("mixed-1k")
    # Its own address block, so a lab someone runs on 127.1.x.y does not collide with this one.
    scenario = scenario.model_copy(update={"winrm": scenario.winrm.model_copy(update={"network": 61})})
    with EstateLab(scenario, directory=tmp_path / "lab") as lab:
        assert len(lab.info.fleet.endpoints) == 1004
        assert lab.info.fleet.endpoint("EP-0500").address == "127.61.1.244"
        assert lab.run(lab.server.status)["hosts"] == {"endpoint": 1000, "rras": 3, "ca": 1}
        truth = lab.truth()
        assert len(truth["truth"]) > 50
        assert truth["transport_faults"]
