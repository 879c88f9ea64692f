"""``fleetfix lab`` through the installed console script: up --detach, status, truth, changes, down.

The lab started here runs detached, in its own process group, as an admin would start it; every
test module that starts one stops it, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Cli

SCENARIO = """\
name: cli
seed: cli
fleet: {endpoints: 3, rras: 1, ca: 1}
winrm: {addressing: shared}
faults:
  - {type: device-cert-expired, hosts: [EP-0002]}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, dict[str, Any]]]:
    home = tmp_path_factory.mktemp("lab-cli")
    cli = Cli(home, {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "COLUMNS": "200"})
    (home / "cli.yaml").write_text(SCENARIO, encoding="utf-8")
    started = cli.run("lab", "up", "--scenario", "cli.yaml", "--detach", "--dir", "lab", "--output", "json")
    assert started.returncode == 0, started.stderr
    document = json.loads(started.stdout)
    try:
        yield cli, document
    finally:
        stopped = cli.run("lab", "down", "--dir", "lab", "--output", "json")
        if stopped.returncode != 0 or not json.loads(stopped.stdout)["stopped"]:
            os.kill(document["pid"], signal.SIGKILL)


def test_up_reports_where_everything_is(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, document = lab
    assert document["scenario"] == "cli"
    assert document["detached"] is True
    assert document["hosts"] == {"endpoint": 3, "rras": 1, "ca": 1}
    assert Path(document["config"]) == cli.cwd / "lab" / "fleetfix.toml"
    assert document["tenant_url"].startswith("https://127.0.0.1:")


def test_status(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, document = lab
    status = cli.json("lab", "status", "--dir", "lab")
    assert status["running"] is True
    assert status["pid"] == document["pid"]
    assert status["hosts"] == {"endpoint": 3, "rras": 1, "ca": 1}


def test_the_generated_config_works_for_inventory_and_exec_probe(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ = lab
    listed = cli.json("-c", "lab/fleetfix.toml", "inventory", "list")
    assert listed["count"] == 5
    probed = cli.json("-c", "lab/fleetfix.toml", "exec-probe", "rras-01", "rras.facts")
    assert probed["result"]["registry"]["cert_auth_flags"] == 4


def test_truth_lists_the_injected_fault(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ = lab
    truth = cli.json("lab", "truth", "--dir", "lab")
    assert truth["scenario"] == "cli"
    assert truth["transport_faults"] == {}
    entries = {(e["host"], e["check_id"], e["reason"]) for e in truth["truth"]}
    assert entries == {("EP-0002", "EP-CERT-01", "expired"), ("EP-0002", "EP-EVT-01", "connection_failed")}
    first = truth["truth"][0]
    assert list(first) == ["host", "fault", "check_id", "reason", "subject", "playbook", "cause_host"]
    assert first["fault"] == "device-cert-expired"


def test_changes_are_empty_before_anything_changed(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ = lab
    assert cli.json("lab", "changes", "--dir", "lab") == {"scenario": "cli", "count": 0, "hosts": {}}


def test_a_second_lab_in_the_same_directory_is_refused(lab: tuple[Cli, dict[str, Any]]) -> None:
    cli, _ = lab
    again = cli.run("lab", "up", "--scenario", "cli.yaml", "--detach", "--dir", "lab", "--output", "json")
    assert again.returncode == 2
    assert "already running" in json.loads(again.stdout)["error"]["message"]


def test_scenarios_lists_built_ins_and_fault_types(cli: Cli) -> None:
    document = cli.json("lab", "scenarios")
    assert [s["name"] for s in document["scenarios"]] == ["healthy", "mixed-1k", "scale-10k", "seed-article"]
    assert {"device-cert-missing", "crl-expired", "intune-route-host-bits"} <= {
        f["type"] for f in document["fault_types"]
    }


def test_a_bad_scenario_file_exits_2_with_its_line(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\nfleet:\n  endpoint: 3\n", encoding="utf-8")
    result = cli.run("lab", "up", "--scenario", "bad.yaml", "--detach", "--output", "json")
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert (error["line"], error["field"]) == (3, "fleet.endpoint")
    assert not (tmp_path / "fleetfix-lab" / "lab.json").exists()


def test_commands_without_a_lab(cli: Cli) -> None:
    assert cli.run("lab", "status", "--output", "json").returncode == 1
    assert cli.json("lab", "down") == {"directory": "fleetfix-lab", "stopped": False, "pid": None}
    missing = cli.run("lab", "truth", "--output", "json")
    assert missing.returncode == 2
    assert "no lab is running" in json.loads(missing.stdout)["error"]["message"]
