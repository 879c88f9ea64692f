"""``fleetfix demo`` through the installed console script: lab up, sweep, truth, fixes, re-sweep, lab down."""

from __future__ import annotations

import json
from pathlib import Path

from lab.estate.workspace import STATE_FILE
from tests.clirun import Cli


def test_demo_of_the_healthy_scenario_is_exact_and_compliant(cli: Cli, tmp_path: Path) -> None:
    # a shell's settings must not leak into the demo: the store and vault are the lab's own
    cli.env |= {"FLEETFIX_STORE_URL": "postgresql://nobody@127.0.0.1:1/none", "FLEETFIX_MASTER_KEY": "x" * 44}
    result = cli.run("demo", "--scenario", "healthy", "--dir", "lab", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["scenario", "directory", "truth", "sweep", "remediation"]
    assert document["scenario"] == "healthy"
    assert document["directory"] == "lab"
    truth = document["truth"]
    assert (truth["expected"], truth["found"], truth["precision"], truth["recall"]) == (0, 0, 1.0, 1.0)
    assert document["sweep"]["compliant"] is True
    assert document["sweep"]["tenant"]["status"] == "collected"
    remediation = document["remediation"]
    assert (remediation["runs"], remediation["remediable_left"], remediation["clean"]) == ([], 0, True)
    assert (tmp_path / "lab" / "data" / "fleetfix.db").is_file()
    assert not (tmp_path / "lab" / STATE_FILE).exists()  # the lab was stopped


def test_demo_table_shows_findings_and_the_score(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("demo")
    assert result.returncode == 0, result.stderr
    assert "EP-CERT-01" in result.stdout
    assert "precision 100%, recall 100%" in result.stdout
    assert "exactly what was injected" in result.stdout
    assert "playbooks applied" in result.stdout
    assert "0 that a playbook could fix" in result.stdout
    assert "the lab is stopped" in result.stderr
    assert not list(tmp_path.iterdir()) or all(p.name in {"home", "xdg"} for p in tmp_path.iterdir())


def test_an_unknown_scenario_is_bad_input(cli: Cli) -> None:
    result = cli.run("demo", "--scenario", "no-such-scenario", "--output", "json")
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["error"]["field"] == "--scenario"


def test_the_kept_lab_directory_answers_findings_list(cli: Cli, tmp_path: Path) -> None:
    assert cli.run("demo", "--dir", "lab", "--no-fix", "--output", "json").returncode == 0
    config = ("--config", "lab/fleetfix.toml")
    listed = cli.run(*config, "findings", "list", "--check", "ep-cert-01", "--output", "json")
    assert listed.returncode == 1, listed.stderr  # open findings listed
    document = json.loads(listed.stdout)
    assert document["count"] == 6
    assert {finding["check_id"] for finding in document["findings"]} == {"EP-CERT-01"}
    assert {finding["status"] for finding in document["findings"]} == {"new"}
    one = cli.run(*config, "findings", "list", "--limit", "name:ep-0010", "--output", "json")
    hosts = {finding["host"] for finding in json.loads(one.stdout)["findings"]}
    assert hosts == {"ep-0010"}
    resolved = cli.run(*config, "findings", "list", "--status", "resolved", "--output", "json")
    assert (resolved.returncode, json.loads(resolved.stdout)["count"]) == (0, 0)


def test_the_demo_fixes_what_a_playbook_can_and_the_store_shows_it(cli: Cli) -> None:
    result = cli.run("demo", "--dir", "lab", "--output", "json")
    assert result.returncode == 0, result.stderr
    remediation = json.loads(result.stdout)["remediation"]
    assert remediation["clean"] is True
    assert remediation["remediable_left"] == 0
    assert {run["playbook_id"] for run in remediation["runs"]} == {
        "rras-root-thumbprint", "republish-crl", "install-ca-chain",
        "device-cert-reenroll", "intune-resync", "fix-route-prefixes",
    }  # fmt: skip
    assert {run["status"] for run in remediation["runs"]} == {"succeeded"}
    config = ("--config", "lab/fleetfix.toml")
    runs = json.loads(cli.run(*config, "runs", "list", "--output", "json").stdout)["runs"]
    assert len(runs) == len(remediation["runs"])
    fixed = cli.run(
        *config, "findings", "list", "--check", "ep-cert-01", "--status", "resolved", "--output", "json"
    )
    assert json.loads(fixed.stdout)["count"] == 6
