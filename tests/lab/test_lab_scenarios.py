"""Scenario files: built-ins load, mistakes are reported as file:line: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from lab.estate.build import build_estate, host_names
from lab.estate.pki import EnterprisePKI, der
from lab.scenarios import ScenarioError, builtin_names, load_scenario
from lab.windows.certstore import CertificateStores

CDP = "http://127.0.0.1:9"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_four_built_ins_load() -> None:
    assert builtin_names() == ["healthy", "mixed-1k", "scale-10k", "seed-article"]
    sizes = {name: load_scenario(name).fleet.endpoints for name in builtin_names()}
    assert sizes == {"healthy": 20, "mixed-1k": 1000, "scale-10k": 10000, "seed-article": 24}


def test_hosts_overrides_the_number_of_endpoints() -> None:
    scenario = load_scenario("mixed-1k", hosts=50)
    assert scenario.fleet.endpoints == 50
    assert host_names(scenario)["endpoint"][-1] == "EP-0050"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: x\nfleet:\n  endpoints: 3\n  rrass: 1\n", "scenario.yaml:4: fleet.rrass: unknown key"),
        ("name: x\nfaults:\n  - type: device-cert-gone\n    count: 1\n",
         "scenario.yaml:3: faults[0].type: unknown fault"),
        ("name: x\nfaults:\n  - type: crl-expired\n    rate: 1.5\n", "scenario.yaml:4: faults[0].rate:"),
        ("name: x\nfaults:\n  - type: crl-expired\n",
         "scenario.yaml:3: faults[0]: choose hosts with exactly one"),
        ("name: x\nfaults:\n  - type: route-host-bits\n    count: 1\n    params: {prefx: 1.2.3.4/8}\n",
         "scenario.yaml:3: faults[0]: unknown parameter 'prefx'"),
        ("name: x\nfleet: {endpoints: 2}\nfaults:\n  - {type: device-cert-missing, hosts: [EP-0009]}\n",
         "scenario.yaml:4: faults[0].hosts[0]: no host 'EP-0009'"),
        ("name: x\ncertificates:\n  - {host: EP-0001, file: nowhere.pem}\n",
         "scenario.yaml:3: certificates[0].file: file nowhere.pem not found"),
        ("name: X Y\n", "scenario.yaml:1: name:"),
        ("fleet: {}\n", "scenario.yaml:1: name: is required"),
        ("name: x\nname: y\n", "scenario.yaml:2: name: duplicate key"),
    ],
)  # fmt: skip
def test_mistakes_name_file_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert where in str(caught.value).replace(str(tmp_path) + "/", "")


def test_an_unknown_name_lists_the_built_ins() -> None:
    with pytest.raises(ScenarioError, match="built in: healthy, mixed-1k, scale-10k, seed-article"):
        load_scenario("no-such-scenario")


def test_a_customers_certificate_is_placed_on_the_named_host(tmp_path: Path) -> None:
    # A certificate issued by another PKI for the device, as a customer would send it (PEM).
    other = EnterprisePKI("customer", CDP, organization="Customer")
    leaf = other.issue("customer-device", other.device_request("ep-0002.corp.contoso.test"))
    (tmp_path / "customer.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    path = write(
        tmp_path,
        "name: customer\nfleet: {endpoints: 3, rras: 1}\nwinrm: {addressing: shared}\n"
        "certificates:\n  - {host: EP-0002, file: customer.pem}\n",
    )
    built = build_estate(load_scenario(path), cdp_base_url=CDP)
    mine = built.estate.host("EP-0002").component(CertificateStores).certificates("My")
    assert [entry.der for entry in mine] == [der(leaf)]
    assert [item.fault for item in built.estate.injected] == ["outside-certificate"]
