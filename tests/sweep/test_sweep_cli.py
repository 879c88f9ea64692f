"""``fleetfix sweep`` and ``fleetfix findings list`` through the installed console script, against lab
hosts that answer, hang, refuse the login or fail the probe."""

from __future__ import annotations

import json
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
        HostConfig(name="EP-1", https_port=0),
        HostConfig(name="EP-2", https_port=0),
        HostConfig(name="EP-HANG", https_port=0, faults=FaultSpec(hang=True)),
        HostConfig(name="EP-AUTH", https_port=0, faults=FaultSpec(auth_failure=True)),
        HostConfig(name="EP-THROW", https_port=0, faults=FaultSpec(terminating_error="WMI is corrupt")),
    )
)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(FLEET) as running:
        yield running


@pytest.fixture
def fleetfix(cli: Cli, tmp_path: Path, lab: Lab) -> Cli:
    """``fleetfix`` with ``inventory.yaml`` naming every lab host, the password in ``env:LAB_PW``."""
    cli.env |= {"FLEETFIX_DATA_DIR": str(tmp_path / "data"), "LAB_PW": LAB_PASSWORD}
    hosts: dict[str, Any] = {
        name.lower(): {
            "role": endpoint.role,
            "address": endpoint.address,
            "winrm": {"port": endpoint.https_port, "auth": "ntlm", "username": LAB_USERNAME},
        }
        for name, endpoint in lab.info.endpoints.items()
    }
    inventory = {
        "defaults": {"winrm": {"ca_bundle": str(lab.info.ca_bundle)}, "credential": "env:LAB_PW"},
        "hosts": hosts,
    }
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory), encoding="utf-8")
    return cli


def run_json(cli: Cli, *args: str, code: int) -> Any:
    result = cli.run(*args, "--inventory", "inventory.yaml", "--output", "json")
    assert result.returncode == code, result.stderr
    assert LAB_PASSWORD not in result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_sweep_reports_every_host_and_exits_1_for_hosts_it_could_not_collect(fleetfix: Cli) -> None:
    document = run_json(fleetfix, "sweep", "--timeout", "3", "--concurrency", "2", code=1)
    assert document["compliant"] is False
    assert document["counts"]["hosts"] == {"selected": 5, "ok": 2, "unreachable": 1, "failed": 2}
    errors = {host["host"]: (host["error"] or {}).get("kind") for host in document["hosts"]}
    assert errors == {
        "ep-1": None,
        "ep-2": None,
        "ep-auth": "auth_failed",
        "ep-hang": "timed_out",
        "ep-throw": "script_failed",
    }
    assert document["tenant"] == {"status": "not_configured", "error": None}
    assert document["previous_run"] is None
    assert document["finished_at"].endswith("Z")
    assert document["findings"] == []

    again = run_json(fleetfix, "sweep", "--limit", "name:ep-1 or name:ep-2", code=0)
    assert again["compliant"] is True
    assert again["selector"] == "name:ep-1 or name:ep-2"
    assert again["previous_run"] == document["run_id"]

    listed = run_json(fleetfix, "findings", "list", code=0)
    assert listed["run_id"] == again["run_id"]
    assert (listed["status"], listed["count"], listed["findings"]) == ("open", 0, [])
    older = run_json(fleetfix, "findings", "list", "--run", document["run_id"], "--status", "new", code=0)
    assert older["previous_run"] is None


def test_audit_entries_name_each_sweep(fleetfix: Cli) -> None:
    document = run_json(fleetfix, "sweep", "--limit", "name:ep-1", code=0)
    shown = fleetfix.run("audit", "show", "--output", "json")
    assert shown.returncode == 0, shown.stderr
    assert document["run_id"] in shown.stdout
    assert "sweep.complete" in shown.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["findings", "list"], "--run"),  # no sweep yet
        (["findings", "list", "--run", "no-such-run"], "--run"),
        (["sweep", "--limit", "role:"], "--limit"),
    ],
)
def test_bad_input_exits_2(fleetfix: Cli, args: list[str], field: str) -> None:
    document = run_json(fleetfix, *args, code=2)
    assert document["error"]["field"] == field


def test_table_output(fleetfix: Cli) -> None:
    result = fleetfix.run("sweep", "--inventory", "inventory.yaml", "--limit", "name:ep-1 or name:ep-throw")
    assert result.returncode == 1
    assert "ep-throw" in result.stdout
    assert "WMI is corrupt" in result.stdout
    assert "1/2 hosts collected" in result.stdout
    assert "[graph] in fleetfix.toml" in result.stderr


def test_a_store_that_cannot_be_opened_exits_3_before_any_host_is_contacted(fleetfix: Cli) -> None:
    fleetfix.env["FLEETFIX_STORE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    document = run_json(fleetfix, "sweep", code=3)
    assert document["error"]["kind"] == "store"
