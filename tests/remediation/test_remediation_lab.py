"""Playbooks end to end against the ``seed-article`` lab, through the console script.

The acceptance of the run engine: the shipped playbooks, applied to what a sweep found, leave no
remediable finding; each change lands exactly once per host; running them again changes nothing;
``--check`` changes nothing; a saved plan refuses a host that drifted; a failed verification
rolls back to the value the journal captured; a risky playbook needs a second person.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Cli
from tests.remediation.support import LabFleet, applied_once, lab_fleet, remediable

# Server-side fixes first: devices judge their tunnels by the servers and the CRLs.
ORDER = (
    "rras-root-thumbprint",
    "republish-crl",
    "install-ca-chain",
    "device-cert-reenroll",
    "intune-resync",
    "fix-route-prefixes",
)
LEGACY_ROOT = "147AAC975972A35DC9CD44F5DF96A54CE303525C"  # Contoso Root CA 2015, pinned on rras-05
ROOT = "660EA560F596CB76A4DB6AEF9629634AD0AFDFED"  # Contoso Root CA, the enterprise root


@pytest.fixture
def fleet(tmp_path: Path, cli: Cli) -> Any:
    with lab_fleet("seed-article", tmp_path / "lab", cli) as running:
        yield running


def states(run: dict[str, Any]) -> dict[str, str]:
    return {target["name"]: target["state"] for target in run["targets"]}


def root_setting_changes(fleet: LabFleet, host: str) -> list[tuple[Any, Any]]:
    return [
        (change["before"], change["after"])
        for change in fleet.changes()
        if change["host"] == host and change["what"] == "VpnAuthProtocol.RootCertificateNameToAccept"
    ]


def test_the_shipped_playbooks_fix_what_the_sweep_found_once_and_only_once(fleet: LabFleet) -> None:
    first = fleet.sweep()
    playbooks = {finding["playbook"] for finding in remediable(first["findings"])}
    assert playbooks == set(ORDER)
    for playbook in ORDER:
        run = fleet.json("run", playbook, "--yes")
        assert run["status"] == "succeeded", (playbook, run["status_message"], states(run))
        assert set(states(run).values()) == {"succeeded"}, (playbook, run["targets"])

    second = fleet.sweep()
    assert remediable(second["findings"]) == [], json.dumps(remediable(second["findings"]), indent=1)[:3000]
    assert [entry for entry in fleet.lab("/truth")["truth"] if entry["playbook"]] == []
    changes = fleet.product_changes()
    assert applied_once(changes) == []
    # a host Intune fixes changes at its check-in (device side), the others by our scripts
    changed_hosts = {change["host"].casefold() for change in fleet.changes()}
    flagged = {finding["host"] for finding in remediable(first["findings"]) if finding["host"] != "intune"}
    assert flagged <= changed_hosts

    # the same playbooks again, on every host of their role: nothing to do, nothing done
    count = len(fleet.changes())
    for playbook in ORDER:
        again = fleet.json("run", playbook, "--yes", "--all-hosts")
        assert again["status"] == "succeeded", (playbook, again["status_message"])
        assert set(states(again).values()) == {"unchanged"}, (playbook, again["targets"])
    assert len(fleet.changes()) == count

    # the journal holds each step once per run and host, and the audit log names every change
    duplicates = fleet.store_rows(
        "select run_id, host, step, count(*) from action_journal"
        " group by run_id, host, step having count(*) > 1"
    )
    assert duplicates == []
    applied = fleet.store_rows("select count(*) from action_journal where state = 'applied'")[0][0]
    audited = fleet.store_rows("select count(*) from audit_log where action = 'action.apply'")[0][0]
    assert applied == audited > 0
    assert fleet.run("audit", "verify").returncode == 0


def test_check_shows_the_exact_change_and_changes_nothing(fleet: LabFleet) -> None:
    fleet.sweep()
    plan = fleet.json("run", "rras-root-thumbprint", "--check")
    assert [target["target"] for target in plan["targets"]] == ["rras-05"]
    set_root, restart = plan["targets"][0]["steps"]
    assert set_root["plan"]["changes"] == [
        {"field": "VpnAuthProtocol.RootCertificateNameToAccept", "before": LEGACY_ROOT, "after": ROOT}
    ]
    assert [change["field"] for change in restart["plan"]["changes"]] == ["Service[RemoteAccess]"]
    assert plan["changes"] == 2
    assert fleet.changes() == []
    assert fleet.json("runs", "list")["runs"] == []


def test_a_saved_plan_refuses_a_host_that_drifted_and_applies_the_rest(
    fleet: LabFleet, tmp_path: Path
) -> None:
    fleet.sweep()
    saved = tmp_path / "install-ca-chain.plan.json"
    plan = fleet.json("run", "install-ca-chain", "--check", "--save-plan", str(saved))
    assert sorted(target["target"] for target in plan["targets"]) == ["ep-0008", "ep-0009"]
    # someone fixes ep-0008 after the plan was approved
    fixed = fleet.json("run", "install-ca-chain", "--limit", "name:ep-0008", "--yes")
    assert states(fixed) == {"ep-0008": "succeeded"}

    run = fleet.json("run", "install-ca-chain", "--plan", str(saved), "--yes", code=1)
    assert states(run) == {"ep-0008": "refused", "ep-0009": "succeeded"}
    refused = next(target for target in run["targets"] if target["name"] == "ep-0008")
    assert "changed since the plan was made" in refused["message"]
    assert applied_once(fleet.product_changes()) == []


def test_a_failed_verification_restores_the_captured_value(fleet: LabFleet) -> None:
    fleet.sweep()
    fixed = fleet.json("run", "rras-root-thumbprint", "--yes")
    assert states(fixed) == {"rras-05": "succeeded"}
    # an admin pins the wrong root (it is in the server's Root store, so the change is made)
    run = fleet.json(
        "run", "rras-root-thumbprint", "--all-hosts", "--limit", "name:rras-05",
        "--param", f"root_thumbprint={LEGACY_ROOT}", "--yes", "--verify-timeout", "2",
        code=1,
    )  # fmt: skip
    target = run["targets"][0]
    assert target["state"] == "rolled_back", target
    assert "RRAS-AUTH-01" in target["message"]
    assert root_setting_changes(fleet, "RRAS-05") == [
        (LEGACY_ROOT, ROOT),
        (ROOT, LEGACY_ROOT),
        (LEGACY_ROOT, ROOT),
    ]
    restarts = [c for c in fleet.changes() if c["host"] == "RRAS-05" and c["what"] == "Service[RemoteAccess]"]
    assert len(restarts) == 3  # the fix, the wrong pin, and the rollback put each into effect
    rolled = fleet.store_rows(
        f"select step, before from action_journal where run_id = '{run['id']}' and state = 'rolled_back'"
    )
    assert [(step, json.loads(before)) for step, before in rolled] == [("set-root", {"thumbprint": ROOT})]
    # the server is as before the wrong pin: the next sweep finds nothing on it
    assert [f for f in fleet.sweep()["findings"] if f["host"] == "rras-05" and f["playbook"]] == []


def test_a_risky_playbook_waits_for_a_second_person(fleet: LabFleet) -> None:
    fleet.sweep()
    alice, bob = {"USER": "alice", "LOGNAME": "alice"}, {"USER": "bob", "LOGNAME": "bob"}
    waiting = fleet.json("run", "rras-root-thumbprint", env=alice, code=1)
    assert waiting["status"] == "awaiting_approval"
    assert fleet.changes() == []
    self_approval = fleet.run("runs", "approve", waiting["id"], env=alice)
    assert self_approval.returncode == 2, self_approval.stderr
    approved = fleet.json("runs", "approve", waiting["id"], env=bob)
    assert approved["approved_by"].startswith("bob@")
    done = fleet.json("runs", "resume", waiting["id"], env=alice)
    assert done["status"] == "succeeded"
    details = [
        json.loads(row[0])
        for row in fleet.store_rows("select details from audit_log where action = 'action.apply'")
    ]
    assert details
    assert {entry["approver"].split("@")[0] for entry in details} == {"bob"}


def closed_window() -> str:
    """A one-hour window that closed an hour ago (UTC), so a run now is outside it."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    start = datetime.now(UTC) - timedelta(hours=2)
    end = start + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M} UTC"


def test_outside_the_window_a_run_pauses_and_resume_continues(fleet: LabFleet) -> None:
    fleet.sweep()
    paused = fleet.json("run", "install-ca-chain", "--window", closed_window(), "--no-wait", code=1)
    assert paused["status"] == "paused"
    assert "outside change window" in paused["pause_reason"]
    assert fleet.changes() == []
    still = fleet.json("runs", "resume", paused["id"], "--no-wait", code=1)
    assert still["status"] == "paused"
    done = fleet.json("runs", "resume", paused["id"], "--ignore-window")
    assert done["status"] == "succeeded"
    assert set(states(done).values()) == {"succeeded"}
    ignored = fleet.store_rows("select actor from audit_log where action = 'run.ignore_window'")
    assert len(ignored) == 1


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["run", "no-such-playbook"], "ID"),
        (["run", "install-ca-chain", "--max-fail", "lots"], "--max-fail"),
        (["run", "install-ca-chain", "--window", "22:00-04:00 Mars/Olympus"], "--window"),
        (["run", "install-ca-chain", "--param", "nope=1"], "--param"),
        (["run", "install-ca-chain", "--save-plan", "x.json"], "--save-plan"),
        (["runs", "show", "00000000-0000-0000-0000-000000000000"], None),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    fleet: LabFleet, args: list[str], field: str | None
) -> None:
    fleet.sweep()
    result = fleet.run(*args, "--output", "json")
    assert result.returncode == 2, result.stderr
    error = json.loads(result.stdout)["error"]
    if field is not None:
        assert error["field"] == field, error
    assert fleet.changes() == []


def test_the_route_fix_warns_of_devices_that_lose_an_updated_profile(fleet: LabFleet) -> None:
    first = fleet.sweep()
    exposed = sorted(f["host"] for f in first["findings"] if f["check_id"] == "EP-OS-01")
    assert exposed  # seed-article has Windows 11 21H2 devices without KB5008353
    plan = fleet.json("run", "fix-route-prefixes", "--check")
    tenant = next(target for target in plan["targets"] if target["target"] == "intune")
    note = tenant["steps"][0]["plan"]["note"]
    assert f"{len(exposed)} Windows 11 21H2 devices without KB5008353" in note
    assert all(name.upper() in note.upper() for name in exposed)
    assert "intune-resync" in note
