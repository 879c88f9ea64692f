"""``fleetfix playbooks list|show`` through the installed console script."""

from __future__ import annotations

import json
from pathlib import Path

from tests.clirun import Cli
from tests.playbook.support import VALID, edited

SHIPPED = [
    "device-cert-reenroll",
    "fix-route-prefixes",
    "install-ca-chain",
    "intune-resync",
    "republish-crl",
    "rras-root-thumbprint",
]
SUMMARY_KEYS = ["id", "target", "risk", "fixes", "source", "replaces_shipped"]

# An admin's version of the shipped rras-root-thumbprint: a canary-free, two-at-a-time rollout.
ADMIN_RRAS = edited("  serial: true\n", "  canary: 0\n  wave_size: 2\n").replace(
    "Pin the root RRAS accepts.", "Our change board's version."
)


def admin_dir(tmp_path: Path, text: str, name: str = "rras-root-thumbprint.yaml") -> Path:
    directory = tmp_path / "site-playbooks"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    (tmp_path / "fleetfix.toml").write_text('playbook_paths = ["site-playbooks"]\n', encoding="utf-8")
    return directory / name


def test_list_json(cli: Cli) -> None:
    document = cli.json("playbooks", "list")
    assert document["count"] == len(document["playbooks"]) == len(SHIPPED)
    assert [item["id"] for item in document["playbooks"]] == SHIPPED
    for item in document["playbooks"]:
        assert list(item) == SUMMARY_KEYS
        assert (item["source"], item["replaces_shipped"]) == ("shipped", False)
    rras = document["playbooks"][-1]
    assert rras == {
        "id": "rras-root-thumbprint",
        "target": "rras",
        "risk": "service-restart",
        "fixes": ["RRAS-AUTH-01", "RRAS-DRIFT-01"],
        "source": "shipped",
        "replaces_shipped": False,
    }


def test_list_table(cli: Cli) -> None:
    result = cli.run("playbooks", "list")
    assert result.returncode == 0, result.stderr
    assert "6 playbooks" in result.stdout
    lines = [line for line in result.stdout.splitlines() if "fix-route-prefixes" in line]
    assert len(lines) == 1
    for cell in ("endpoint", "user-disruption", "EP-ROUTE-01, INT-PROF-02", "shipped"):
        assert cell in lines[0]


def test_show_json(cli: Cli) -> None:
    document = cli.json("playbooks", "show", "rras-root-thumbprint")
    assert list(document) == [
        *SUMMARY_KEYS,
        "file",
        "description",
        "parameters",
        "tenant_steps",
        "steps",
        "verify",
        "rollback",
        "rollout",
    ]
    assert document["file"].endswith("rras-root-thumbprint.yaml")
    assert "13806" in document["description"]
    assert document["parameters"] == [
        {
            "name": "root_thumbprint",
            "type": "string",
            "required": False,
            "default": "",
            "description": document["parameters"][0]["description"],
            "pattern": "^([0-9A-Fa-f]{40})?$",
            "min": None,
            "max": None,
            "choices": None,
        }
    ]
    assert document["tenant_steps"] == []
    assert document["steps"] == [
        {
            "id": "set-root",
            "action": "rras.set-root-certificate",
            "args": {"thumbprint": "${params.root_thumbprint}"},
            "when_changed": [],
            "when": None,
        },
        {
            "id": "restart",
            "action": "rras.restart-remoteaccess",
            "args": {},
            "when_changed": ["set-root"],
            "when": None,
        },
    ]
    assert document["verify"] == {
        "checks": ["RRAS-AUTH-01", "RRAS-DRIFT-01"],
        "timeout_s": 120,
        "interval_s": 5,
    }
    assert document["rollback"] == {"on_verify_failure": True}
    assert document["rollout"] == {"canary": 1, "wave_size": 10, "serial": True, "max_fail": "1"}


def test_show_json_with_tenant_steps(cli: Cli) -> None:
    document = cli.json("playbooks", "show", "fix-route-prefixes")
    assert [step["action"] for step in document["tenant_steps"]] == ["intune.fix-vpn-routes"]
    assert document["steps"][1]["when"] == "${params.sync}"
    assert document["parameters"][0]["default"] is True


def test_show_table(cli: Cli) -> None:
    result = cli.run("playbooks", "show", "fix-route-prefixes")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "fix-route-prefixes"
    assert "risk: user-disruption" in out
    assert "Windows never installs such a route" in out
    assert "tenant (once)" in out
    assert "when ${params.sync}" in out
    assert "verify: EP-ROUTE-01 no longer reported, polled every 3 s for up to 180 s" in out
    assert "rollout: canary 1, then waves of 25; max fail 5%" in out


def test_show_unknown_id_suggests_one(cli: Cli) -> None:
    result = cli.run("playbooks", "show", "republish-crls")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().endswith("did you mean 'republish-crl'?")
    document = cli.json("playbooks", "show", "republish-crls", code=2)
    assert (document["error"]["kind"], document["error"]["field"]) == ("playbook", "ID")


def test_admin_playbook_replaces_the_shipped_one(cli: Cli, tmp_path: Path) -> None:
    path = admin_dir(tmp_path, ADMIN_RRAS)
    listed = cli.json("playbooks", "list")
    rras = next(item for item in listed["playbooks"] if item["id"] == "rras-root-thumbprint")
    assert (Path(rras["source"]), rras["replaces_shipped"]) == (path.resolve(), True)
    assert listed["count"] == len(SHIPPED)
    shown = cli.json("playbooks", "show", "rras-root-thumbprint")
    assert shown["description"] == "Our change board's version."
    assert shown["rollout"] == {"canary": 0, "wave_size": 2, "serial": False, "max_fail": "1"}
    table = cli.run("playbooks", "list")
    assert "(replaces shipped)" in table.stdout


def test_admin_directory_from_the_environment(cli: Cli, tmp_path: Path) -> None:
    directory = tmp_path / "mine"
    directory.mkdir()
    text = VALID.replace("rras-root-thumbprint", "pin-root")
    (directory / "pin-root.yaml").write_text(text, encoding="utf-8")
    result = cli.run("playbooks", "list", "-o", "json", env={"FLEETFIX_PLAYBOOK_PATHS": str(directory)})
    assert result.returncode == 0, result.stderr
    ids = [item["id"] for item in json.loads(result.stdout)["playbooks"]]
    assert ids == sorted([*SHIPPED, "pin-root"])


def test_broken_admin_playbook_is_one_line_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    path = admin_dir(tmp_path, edited("    when_changed: [set-root]", "    when_changed: [restrat]"))
    result = cli.run("playbooks", "list")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        f"error: {path.resolve()}:21: steps[1].when_changed[0]: unknown step 'restrat' "
        "(earlier steps: set-root)"
    )
    document = cli.json("playbooks", "show", "rras-root-thumbprint", code=2)["error"]
    assert document["kind"] == "playbook"
    assert (Path(document["file"]), document["line"], document["field"]) == (
        path.resolve(),
        21,
        "steps[1].when_changed[0]",
    )


def test_missing_admin_directory_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "fleetfix.toml").write_text('playbook_paths = ["nowhere"]\n', encoding="utf-8")
    result = cli.run("playbooks", "list")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: {(tmp_path / 'nowhere').resolve()}: playbook_paths: playbook directory not found"
    )
