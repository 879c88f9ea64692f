"""``fleetfix inventory list`` through the installed console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
import yaml

from tests.clirun import Cli

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "examples" / "inventory.yaml"
HOST_KEYS = ["name", "role", "address", "winrm", "credential", "groups", "tags", "vars", "source", "intune"]


def listed(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["count"] == len(document["hosts"])
    hosts: list[dict[str, Any]] = document["hosts"]
    return hosts


def tag_dict(tags: object) -> dict[str, str]:
    if isinstance(tags, list):
        return {item.partition("=")[0]: item.partition("=")[2] for item in tags}
    return {str(key): str(value) for key, value in (tags or {}).items()}  # type: ignore[attr-defined]


def example_tags(name: str, raw: dict[str, Any]) -> dict[str, str]:
    """A host's tags in the example, merged by hand: defaults, its groups, then the host."""
    entry = raw["hosts"][name]
    tags = tag_dict(raw.get("defaults", {}).get("tags"))
    for group in entry.get("groups", []):
        tags.update(tag_dict(raw["groups"][group].get("tags")))
    tags.update(tag_dict(entry.get("tags")))
    return tags


def test_limit_selects_exactly_the_expected_example_hosts(cli: Cli, tmp_path: Path) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    expected = sorted(
        name
        for name, entry in raw["hosts"].items()
        if entry["role"] == "endpoint" and example_tags(name, raw).get("ring") != "canary"
    )
    assert 0 < len(expected) < len(raw["hosts"])

    limit = "role:endpoint and not tag:ring=canary"
    result = cli.run("inventory", "list", "--inventory", str(EXAMPLE), "--limit", limit, "--output", "json")
    hosts = listed(result)
    assert [host["name"] for host in hosts] == expected
    for host in hosts:
        assert list(host) == HOST_KEYS
        assert host["role"] == "endpoint"
        assert host["credential"].startswith("vault:")
        assert host["tags"] == example_tags(host["name"], raw)


def test_json_output_shape_of_one_host(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("inventory", "list", "-i", str(EXAMPLE), "--limit", "vpn-ams-01", "-o", "json")
    (host,) = listed(result)
    assert host == {
        "name": "vpn-ams-01",
        "role": "rras",
        "address": "vpn-ams-01.corp.example.com",
        "winrm": {
            "transport": "https",
            "port": 5986,
            "auth": "kerberos",
            "username": None,
            "ca_bundle": None,
            "cert_validation": True,
            "client_certificate": None,
            "client_key": None,
            "connection_timeout": 10.0,
            "operation_timeout": 20.0,
            "read_timeout": 30.0,
            "configuration_name": "Microsoft.PowerShell",
            "allow_unencrypted": False,
        },
        "credential": "vault:server-admin",
        "groups": ["ams", "servers"],
        "tags": {"owner": "netops", "site": "ams", "tier": "0"},
        "vars": {"public_name": "vpn.ams.example.com"},
        "source": "inventory",
        "intune": None,
    }


def test_table_output_lists_every_example_host(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("inventory", "list", "--inventory", str(EXAMPLE), env={"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert f"{len(raw['hosts'])} hosts" in result.stdout
    for name in raw["hosts"]:
        assert name in result.stdout


def test_inventory_paths_come_from_the_config_unless_given(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "fleetfix.toml").write_text('inventory = ["hosts.yaml"]\n', encoding="utf-8")
    (tmp_path / "site" / "hosts.yaml").write_text(
        "defaults: {credential: vault:x}\nhosts:\n  from-config: {role: ca, address: ca.corp}\n",
        encoding="utf-8",
    )
    from_config = cli.run("--config", "site/fleetfix.toml", "inventory", "list", "-o", "json")
    assert [host["name"] for host in listed(from_config)] == ["from-config"]
    config = ("--config", "site/fleetfix.toml")
    overridden = cli.run(*config, "inventory", "list", "-i", str(EXAMPLE), "-l", "role:ca", "-o", "json")
    assert [host["name"] for host in listed(overridden)] == ["ca-issuing-01"]


def test_several_inventory_files_are_merged(cli: Cli, tmp_path: Path) -> None:
    extra = tmp_path / "lab.yaml"
    lab_host = "{role: endpoint, address: 127.0.0.1, credential: env:LAB, winrm: {username: lab}}"
    extra.write_text(f"hosts:\n  lab-01: {lab_host}\n", encoding="utf-8")
    files = ("-i", str(EXAMPLE), "-i", str(extra))
    result = cli.run("inventory", "list", *files, "-l", "address:127.*", "-o", "json")
    assert [(host["name"], host["credential"]) for host in listed(result)] == [("lab-01", "env:LAB")]


def test_no_inventory_anywhere_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("inventory", "list", "--output", "json")
    assert result.returncode == 2
    assert "set `inventory` in fleetfix.toml or pass --inventory" in result.stderr
    assert json.loads(result.stdout)["error"]["field"] == "inventory"


CREDENTIAL = "defaults: {credential: vault:x}\n"
MALFORMED = {
    "unknown-role": ("hosts:\n  ep-1:\n    address: a.corp\n    role: vpn\n", 4, "hosts.ep-1.role"),
    "unknown-key": ("hosts:\n  ep-1:\n    role: ca\n    adress: x.corp\n", 4, "hosts.ep-1.adress"),
    "bad-address": (CREDENTIAL + "hosts:\n  ep-1: {role: ca, address: 'a b'}\n", 3, "hosts.ep-1.address"),
    "unknown-group": (
        CREDENTIAL + "hosts:\n  ep-1:\n    role: ca\n    address: a.corp\n    groups: [nope]\n",
        6,
        "hosts.ep-1.groups[0]",
    ),
    "duplicate": ("hosts:\n  ep-1: {}\n  ep-1: {}\n", 3, "hosts.ep-1"),
    "no-credential": ("hosts:\n  ep-1: {role: ca, address: a.corp}\n", 2, "hosts.ep-1.credential"),
    "bad-yaml": ("hosts:\n  ep-1: [\n", 3, None),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_inventory_is_one_line_with_file_and_line(cli: Cli, tmp_path: Path, case: str) -> None:
    text, line, field = MALFORMED[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(dedent(text), encoding="utf-8")

    human = cli.run("inventory", "list", "--inventory", str(path))
    assert human.returncode == 2
    lines = human.stderr.strip().splitlines()
    assert len(lines) == 1, human.stderr
    assert lines[0].startswith(f"error: {path}:{line}")
    if field is not None:
        assert f":{line}: {field}: " in lines[0]

    scripted = cli.run("inventory", "list", "--inventory", str(path), "--output", "json")
    assert scripted.returncode == 2
    error = json.loads(scripted.stdout)["error"]
    assert (error["kind"], error["file"], error["line"], error["field"]) == (
        "inventory",
        str(path),
        line,
        field,
    )


def test_bad_selector_exits_2_and_points_at_the_token(cli: Cli, tmp_path: Path) -> None:
    expression = "role:endpoint and site:ams"
    human = cli.run("inventory", "list", "-i", str(EXAMPLE), "--limit", expression)
    assert human.returncode == 2
    first, shown, caret = human.stderr.rstrip("\n").splitlines()
    assert "unknown selector prefix 'site:'" in first
    assert "column 19" in first
    assert shown == f"  {expression}"
    assert caret == "  " + " " * 18 + "^"

    scripted = cli.run("inventory", "list", "-i", str(EXAMPLE), "--limit", expression, "-o", "json")
    assert scripted.returncode == 2
    error = json.loads(scripted.stdout)["error"]
    assert (error["kind"], error["column"], error["expression"]) == ("selector", 19, expression)


def test_selector_is_checked_before_the_inventory_is_read(cli: Cli, tmp_path: Path) -> None:
    result = cli.run("inventory", "list", "-i", str(tmp_path / "missing.yaml"), "--limit", "(", "-o", "json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["error"]["kind"] == "selector"


def test_empty_selection_is_not_an_error(cli: Cli, tmp_path: Path) -> None:
    result = cli.run(
        "inventory", "list", "-i", str(EXAMPLE), "--limit", "role:ca and role:rras", "-o", "json"
    )
    assert listed(result) == []
    table = cli.run("inventory", "list", "-i", str(EXAMPLE), "--limit", "nothing-like-this")
    assert table.returncode == 0
    assert "no hosts match" in table.stderr
