"""``fleetfix checks list`` through the installed console script."""

from __future__ import annotations

from orchestrator.checks import catalogue
from tests.clirun import Cli


def test_list_json_documents_every_check(cli: Cli) -> None:
    document = cli.json("checks", "list")
    assert document["count"] == len(document["checks"]) == len(catalogue())
    first = document["checks"][0]
    assert list(first) == [
        "id", "title", "severity", "roles", "cross_host", "reasons", "error_codes", "playbook", "advice",
    ]  # fmt: skip
    by_id = {check["id"]: check for check in document["checks"]}
    assert by_id["EP-CERT-01"]["playbook"] == "device-cert-reenroll"
    assert "13806" in by_id["EP-CERT-01"]["error_codes"]
    assert set(by_id["EP-CERT-01"]["reasons"]) >= {"missing", "wrong_eku", "subject_mismatch", "expired"}
    assert all((check["playbook"] is None) != (check["advice"] is None) for check in document["checks"])


def test_list_by_role(cli: Cli) -> None:
    document = cli.json("checks", "list", "--role", "rras")
    assert document["checks"]
    assert all("rras" in check["roles"] for check in document["checks"])


def test_list_table(cli: Cli) -> None:
    result = cli.run("checks", "list")
    assert result.returncode == 0, result.stderr
    assert "RRAS-AUTH-01" in result.stdout


def test_unknown_role_is_bad_input(cli: Cli) -> None:
    assert cli.run("checks", "list", "--role", "nps").returncode == 2
