"""Starting and stopping labs: in a thread, as a child process, from a YAML file; change log."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from pypsrp.powershell import RunspacePool

from lab import FleetConfig, HostConfig, Lab, LabInfo, LabProcess, ScriptCall, ScriptRegistry, numbered_fleet
from lab.__main__ import load_fleet
from lab.scripts import default_registry
from tests.lab.support import REPO, run, script_with_id, shipped_script, wsman


def port_open(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((address, port)) == 0


def test_lab_in_a_thread_starts_and_stops(tmp_path: Path) -> None:
    lab = Lab(numbered_fleet(3), directory=tmp_path / "lab")
    info = lab.start()
    assert lab.start() is info  # idempotent
    endpoints = list(info.endpoints.values())
    assert [ep.name for ep in endpoints] == ["EP-0001", "EP-0002", "EP-0003"]
    assert len({ep.http_port for ep in endpoints}) == 3
    assert info.ca_bundle.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert all(port_open(ep.address, ep.http_port or 0) for ep in endpoints)
    lab.stop()
    lab.stop()  # idempotent
    assert not any(port_open(ep.address, ep.http_port or 0) for ep in endpoints)
    assert (tmp_path / "lab" / "ca.pem").exists()  # a directory the caller gave is kept


def test_hosts_on_their_own_loopback_addresses() -> None:
    fleet = FleetConfig(
        hosts=(
            HostConfig(name="EP-A", address="127.0.0.2", http_port=0, https_port=0),
            HostConfig(name="EP-B", address="127.0.0.3", http_port=0, https_port=0),
        )
    )
    with Lab(fleet) as lab:
        for name in ("EP-A", "EP-B"):
            endpoint = lab.info.endpoint(name)
            client = wsman(endpoint, ca_bundle=lab.info.ca_bundle)  # the certificate names 127.0.0.x
            with client, RunspacePool(client) as pool:
                assert json.loads(run(pool, shipped_script("host.info")).output[0])["computer_name"] == name


def test_lab_info_round_trips() -> None:
    with Lab(numbered_fleet(2)) as lab:
        assert LabInfo.from_dict(json.loads(json.dumps(lab.info.to_dict()))) == lab.info


def test_state_changes_are_logged() -> None:
    extra = ScriptRegistry()

    @extra.script("test.set-ubr")
    def set_ubr(call: ScriptCall) -> list[object]:
        before, call.host.os_ubr = call.host.os_ubr, int(call.params["Ubr"])
        call.record_change("os_ubr", before, call.host.os_ubr)
        return ["ok"]

    fleet = FleetConfig(hosts=(HostConfig(name="EP-1", allow_unencrypted=True, os_ubr=100),))
    with Lab(fleet, registry=default_registry().merged(extra)) as lab:
        client = wsman(lab.info.endpoint("EP-1"), tls=False)
        with client, RunspacePool(client) as pool:
            assert run(pool, script_with_id("test.set-ubr"), Ubr=200).output == ["ok"]
            assert json.loads(run(pool, shipped_script("host.info")).output[0])["os_ubr"] == 200
        (change,) = lab.changes("EP-1")
        assert (change.host, change.script_id, change.what, change.before, change.after) == (
            "EP-1",
            "test.set-ubr",
            "os_ubr",
            100,
            200,
        )


def test_lab_process_serves_and_stops() -> None:
    fleet = numbered_fleet(2, template=HostConfig(name="T", https_port=0))
    lab = LabProcess(fleet)
    info = lab.start()
    endpoint = info.endpoint("EP-0002")
    client = wsman(endpoint, ca_bundle=info.ca_bundle)
    with client, RunspacePool(client) as pool:
        assert json.loads(run(pool, shipped_script("diag.echo"), Value="child").output[0])["value"] == "child"
    directory = info.directory
    lab.stop()
    assert not directory.exists()  # a temporary directory is removed
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(endpoint.url(tls=False), data=b"", timeout=2)


def test_serve_from_a_yaml_file(tmp_path: Path) -> None:
    config = tmp_path / "fleet.yaml"
    config.write_text(
        "seed: demo\nhosts:\n  - name: RRAS-01\n    role: rras\n    faults:\n      latency: {fixed_ms: 5}\n",
        encoding="utf-8",
    )
    fleet = load_fleet(config)
    assert fleet.hosts[0].role == "rras"
    assert fleet.hosts[0].faults.latency.fixed_ms == 5
    process = subprocess.Popen(
        [sys.executable, "-m", "lab", "serve", "--config", str(config), "--directory", str(tmp_path / "d")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    ready = process.stdout.readline()
    assert ready.startswith("FLEETFIX-LAB-READY ")
    assert "RRAS-01" in json.loads(ready.split(" ", 1)[1])["hosts"]
    process.stdin.close()  # closing stdin stops the lab
    assert process.wait(timeout=30) == 0
    process.stdout.close()
