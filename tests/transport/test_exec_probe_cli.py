"""``fleetfix exec-probe`` through the installed console script, against lab hosts.

Each test writes an inventory and a vault in its tmp dir (``fleetfix creds set`` with the secret on
stdin, FLEETFIX_DATA_DIR in tmp), as an admin would, and runs the real command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import FaultSpec, FleetConfig, HostConfig, Lab
from lab.config import LAB_PASSWORD, LAB_USERNAME
from tests.clirun import Cli

FLEET = FleetConfig(
    hosts=(
        HostConfig(name="EP-CLI", https_port=0, os_build=26100, os_ubr=2314),
        HostConfig(name="EP-HANG", https_port=0, faults=FaultSpec(hang=True)),
        HostConfig(
            name="EP-THROW", https_port=0, faults=FaultSpec(terminating_error="WMI repository is corrupt.")
        ),
        HostConfig(name="EP-AUTHFAIL", https_port=0, faults=FaultSpec(auth_failure=True)),
    )
)
HOSTILE = 'x\'; Remove-Item C:\\ -Recurse; $(Stop-Computer) `n "q"\nsecond line'


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(FLEET) as running:
        yield running


@pytest.fixture
def fleetfix(cli: Cli, tmp_path: Path, lab: Lab) -> Cli:
    """``fleetfix`` with a vault entry ``vault:lab`` and ``inventory.yaml`` naming every lab host."""
    cli.env["FLEETFIX_DATA_DIR"] = str(tmp_path / "data")
    stored = cli.run("creds", "set", "lab", "--username", LAB_USERNAME, stdin=LAB_PASSWORD + "\n")
    assert stored.returncode == 0, stored.stderr
    hosts: dict[str, Any] = {}
    for name, endpoint in lab.info.endpoints.items():
        hosts[name.lower()] = {
            "role": endpoint.role,
            "address": endpoint.address,
            "winrm": {"port": endpoint.https_port, "auth": "ntlm"},
        }
    inventory = {
        "defaults": {
            "winrm": {"transport": "https", "ca_bundle": str(lab.info.ca_bundle)},
            "credential": "vault:lab",
        },
        "hosts": hosts,
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return cli


def probe(cli: Cli, *args: str, code: int = 0) -> Any:
    result = cli.run("exec-probe", *args, "--inventory", "inventory.yaml", "--output", "json")
    assert result.returncode == code, result.stderr
    assert LAB_PASSWORD not in result.stdout + result.stderr
    return json.loads(result.stdout)


def test_host_info_document(fleetfix: Cli) -> None:
    document = probe(fleetfix, "ep-cli", "host.info")
    assert list(document) == ["host", "probe", "result", "errors", "elapsed_ms"]
    assert document["host"] == "ep-cli"
    assert document["probe"] == "host.info"
    assert document["result"] == {
        "computer_name": "EP-CLI",
        "fqdn": "ep-cli.lab.fleetfix.test",
        "os_caption": "Microsoft Windows 11 Enterprise",
        "os_build": 26100,
        "os_ubr": 2314,
        "ps_version": "5.1.22621.4391",
    }
    assert document["errors"] == []
    assert isinstance(document["elapsed_ms"], int)
    assert document["elapsed_ms"] >= 0


def test_parameter_value_is_data(fleetfix: Cli) -> None:
    document = probe(fleetfix, "EP-CLI", "diag.echo", "--param", f"Value={HOSTILE}")
    assert document["result"] == {"value": HOSTILE, "length": len(HOSTILE)}


def test_table_output(fleetfix: Cli) -> None:
    result = fleetfix.run("exec-probe", "ep-cli", "host.info", "-i", "inventory.yaml")
    assert result.returncode == 0, result.stderr
    assert "host.info on ep-cli" in result.stdout
    assert "ep-cli.lab.fleetfix.test" in result.stdout


def test_env_credential_with_inventory_username(fleetfix: Cli, tmp_path: Path) -> None:
    inventory = yaml.safe_load((tmp_path / "inventory.yaml").read_text(encoding="utf-8"))
    inventory["hosts"]["ep-cli"] |= {"credential": "env:LAB_SECRET"}
    inventory["hosts"]["ep-cli"]["winrm"]["username"] = LAB_USERNAME
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    fleetfix.env["LAB_SECRET"] = LAB_PASSWORD
    assert probe(fleetfix, "ep-cli", "diag.echo", "-p", "Value=env")["result"]["value"] == "env"


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (["ep-cli", "host.inf"], "PROBE_ID", "did you mean 'host.info'"),
        (["ep-cli", "diag.echo", "--param", "Valeu=x"], "param Valeu", "did you mean 'Value'"),
        (["ep-cli", "diag.echo", "--param", "Value"], "--param", "expected NAME=VALUE"),
        (["ep-cl", "host.info"], "HOST", "did you mean 'ep-cli'"),
    ],
)
def test_bad_input_exits_2(fleetfix: Cli, args: list[str], field: str, message: str) -> None:
    error = probe(fleetfix, *args, code=2)["error"]
    assert error["kind"] == "input"
    assert error["field"] == field
    assert message in error["message"]


def test_hung_host_exits_3_within_the_timeout(fleetfix: Cli) -> None:
    started = time.monotonic()
    error = probe(fleetfix, "ep-hang", "host.info", "--timeout", "2", code=3)["error"]
    assert time.monotonic() - started < 2 + 4  # plus interpreter start-up
    assert error["kind"] == "timed_out"
    assert error["host"] == "ep-hang"


def test_script_failure_exits_3_with_the_error_record(fleetfix: Cli) -> None:
    error = probe(fleetfix, "ep-throw", "host.info", code=3)["error"]
    assert error["kind"] == "script_failed"
    assert error["message"] == "ep-throw: host.info failed: WMI repository is corrupt."
    assert error["error_record"].startswith("WMI repository is corrupt.\n    + CategoryInfo")


def test_refused_login_exits_3_naming_the_user(fleetfix: Cli) -> None:
    error = probe(fleetfix, "ep-authfail", "host.info", code=3)["error"]
    assert error["kind"] == "auth_failed"
    assert f"user '{LAB_USERNAME}' was refused (ntlm authentication" in error["message"]


def test_missing_vault_entry_exits_3(fleetfix: Cli) -> None:
    assert fleetfix.run("creds", "delete", "lab").returncode == 0
    error = probe(fleetfix, "ep-cli", "host.info", code=3)["error"]
    assert error["kind"] == "credential"
    assert "vault:lab" in error["message"]
