"""Run reports of runs the engine really made: the ``seed-article`` lab, driven through the console
script the way an admin does (``fleetfix sweep``, ``run``, ``runs approve``, ``runs resume``), with
webhooks subscribed to runs on a receiver on 127.0.0.1.

One lab serves the module; the runs happen once, in this order, and each test reads what the store
recorded through ``fleetfix report run``:

1. a risky playbook requested by alice (awaiting approval: reported then), approved by bob,
   resumed by alice: succeeded;
2. the same playbook pinning the wrong root with a short verification: rolled back;
3. a saved plan whose first host is fixed by hand meanwhile: that host refused, the other applied;
4. a playbook outside its change window: paused (reported then), resumed ignoring the window.

``fleetfix demo`` (its own lab) posts each of its runs to the webhooks subscribed to runs too.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.clirun import Cli
from tests.remediation.support import LabFleet, lab_fleet
from tests.reports.receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "run-report.v1.json").read_text())
WEBHOOK_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "webhook-run.v1.json").read_text())
TOKEN = "LAB-T0KEN-77aa"
LEGACY_ROOT = "147AAC975972A35DC9CD44F5DF96A54CE303525C"  # Contoso Root CA 2015, pinned on rras-05
ENTERPRISE_ROOT = "660EA560F596CB76A4DB6AEF9629634AD0AFDFED"  # Contoso Root CA
ROOT_SETTING = "VpnAuthProtocol.RootCertificateNameToAccept"
ALICE, BOB = {"USER": "alice", "LOGNAME": "alice"}, {"USER": "bob", "LOGNAME": "bob"}


@dataclass
class Lab:
    fleet: LabFleet
    receiver: Receiver
    directory: Path
    runs: dict[str, str] = field(default_factory=dict)
    """what happened -> run id"""
    early: dict[str, dict[str, Any]] = field(default_factory=dict)
    """JSON reports made while a run was awaiting approval or paused"""
    stderr: list[str] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def cli(self, *args: str, code: int, env: dict[str, str] | None = None, name: str = "") -> Any:
        result = self.fleet.run(*args, "--output", "json", env=env)
        self.stderr.append(result.stderr)
        assert result.returncode == code, f"{args}: exit {result.returncode}\n{result.stderr}"
        document = json.loads(result.stdout)
        if name:
            self.runs[name] = document["id"]
            self.codes[name] = result.returncode
        return document

    def report(self, run_id: str, fmt: str = "json") -> Any:
        target = self.directory / f"{run_id}.{fmt}"
        written = self.fleet.json("report", "run", run_id, "--format", fmt, "-o", str(target))
        assert written["run_id"] == run_id
        text = target.read_text(encoding="utf-8")
        if fmt == "json":
            document = json.loads(text)
            jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
            return document
        if fmt == "csv":
            return list(csv.DictReader(io.StringIO(text, newline="")))
        return text


def closed_window() -> str:
    start = datetime.now(UTC) - timedelta(hours=2)
    return f"{start:%H:%M}-{start + timedelta(hours=1):%H:%M} UTC"


def make_runs(lab: Lab) -> None:
    fleet = lab.fleet
    fleet.sweep()
    waiting = lab.cli("run", "rras-root-thumbprint", code=1, env=ALICE)
    assert waiting["status"] == "awaiting_approval"
    lab.early["awaiting"] = lab.report(waiting["id"])
    lab.cli("runs", "approve", waiting["id"], code=0, env=BOB)
    lab.cli("runs", "resume", waiting["id"], code=0, env=ALICE, name="approved")
    lab.cli("runs", "resume", waiting["id"], code=0, env=ALICE)  # finished: nothing happens, nothing posted

    lab.cli(
        "run", "rras-root-thumbprint", "--all-hosts", "--limit", "name:rras-05",
        "--param", f"root_thumbprint={LEGACY_ROOT}", "--yes", "--verify-timeout", "2",
        code=1, name="rolled_back",
    )  # fmt: skip

    plan = lab.directory / "install-ca-chain.plan.json"
    lab.cli("run", "install-ca-chain", "--check", "--save-plan", str(plan), code=0)
    lab.cli("run", "install-ca-chain", "--limit", "name:ep-0008", "--yes", code=0, name="by_hand")
    lab.cli("run", "install-ca-chain", "--plan", str(plan), "--yes", code=1, name="planned")

    paused = lab.cli("run", "device-cert-reenroll", "--yes", "--window", closed_window(), "--no-wait", code=1)
    assert paused["status"] == "paused"
    lab.early["paused"] = lab.report(paused["id"])
    lab.cli("runs", "resume", paused["id"], "--ignore-window", code=0, name="resumed")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("run-report-lab")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root / "home"),
        "XDG_DATA_HOME": str(root / "xdg"),
        "COLUMNS": "200",
    }
    with running_receiver() as receiver:
        hooks = [
            {"url": receiver.url(f"/ok/json/{TOKEN}"), "format": "json", "events": ["run"]},
            {"url": receiver.url("/ok/teams"), "format": "teams", "events": ["sweep", "run"]},
            {"url": receiver.url("/ok/slack"), "format": "slack", "events": ["run"]},
            {"url": receiver.url(f"/missing/{TOKEN}"), "format": "json", "events": ["run"], "retries": 0},
        ]
        env["FLEETFIX_NOTIFY__WEBHOOKS"] = json.dumps(hooks)
        cli = Cli(root, env)
        with lab_fleet("seed-article", root / "lab", cli) as fleet:
            running = Lab(fleet, receiver, root)
            make_runs(running)
            yield running


def target(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in report["targets"] if t["target"] == name)


def rows_of(report: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [row for row in report["changes"] if row["target"] == name]


def actions(report: dict[str, Any]) -> list[str]:
    return [entry["action"] for entry in report["audit"]]


def test_a_risky_run_awaiting_approval_then_approved(lab: Lab) -> None:
    before = lab.early["awaiting"]
    assert (before["run"]["status"], before["run"]["approval"]) == ("awaiting_approval", "awaiting")
    assert before["plan"]["source"] == "none"
    assert [(t["target"], t["state"]) for t in before["targets"]] == [("rras-05", "pending")]
    assert actions(before) == ["run.create"]

    report = lab.report(lab.runs["approved"])
    run = report["run"]
    assert (run["status"], run["approval"]) == ("succeeded", "approved")
    assert run["requested_by"].startswith("alice@")
    assert run["approved_by"].startswith("bob@")
    assert report["playbook"]["risk"] == "service-restart"
    rras = target(report, "rras-05")
    assert (rras["state"], rras["verification"]) == ("succeeded", "passed")
    set_root = next(row for row in rows_of(report, "rras-05") if row["step"] == "set-root")
    assert (set_root["field"], set_root["before"], set_root["after"]) == (
        ROOT_SETTING,
        LEGACY_ROOT,
        ENTERPRISE_ROOT,
    )
    assert (set_root["step_state"], set_root["verified"], set_root["rolled_back"]) == ("applied", True, False)
    assert report["plan"]["source"] == "as_applied"
    trail = report["audit"]
    assert [e["action"] for e in trail[:3]] == ["run.create", "run.approve", "run.start"]
    assert trail[0]["actor"].startswith("alice@")
    assert trail[1]["actor"].startswith("bob@")
    applies = [e for e in trail if e["action"] == "action.apply"]
    assert applies
    assert {e["details"]["approver"].split("@")[0] for e in applies} == {"bob"}
    assert trail[-1]["action"] == "run.finish"
    assert all(entry["hash_ok"] for entry in trail)
    page = lab.report(lab.runs["approved"], "html")
    assert "approved by <strong>bob@" in page


def test_a_failed_verification_and_its_rollback(lab: Lab) -> None:
    report = lab.report(lab.runs["rolled_back"])
    assert report["run"]["status"] == "failed"
    assert report["run"]["approval"] == "self_approved"
    assert report["run"]["params"] == {"root_thumbprint": LEGACY_ROOT}
    rras = target(report, "rras-05")
    assert (rras["state"], rras["verification"], rras["error_kind"]) == (
        "rolled_back",
        "failed",
        "verification",
    )
    assert any(finding.startswith("RRAS-AUTH-01") for finding in rras["remaining"])
    assert rras["rolled_back"] == ["set-root"]
    assert rras["restored"] == {"set-root": {"thumbprint": ENTERPRISE_ROOT}}  # the value the journal captured
    set_root = next(row for row in rows_of(report, "rras-05") if row["step"] == "set-root")
    assert (set_root["before"], set_root["after"]) == (ENTERPRISE_ROOT, LEGACY_ROOT)
    assert (set_root["step_state"], set_root["rolled_back"], set_root["verified"]) == (
        "rolled_back",
        True,
        False,
    )
    assert report["run"]["counts"]["rolled_back"] == 1
    assert report["run"]["rolled_back_steps"] == 1
    assert "action.rollback" in actions(report)

    rows = lab.report(lab.runs["rolled_back"], "csv")
    assert any(
        r["step"] == "set-root" and r["rolled_back"] == "true" and r["verified"] == "false" for r in rows
    )
    page = lab.report(lab.runs["rolled_back"], "html")
    assert (
        f'restored <span class="field">thumbprint</span> = <span class="before">{ENTERPRISE_ROOT}</span>'
        in page
    )

    # the audit entries as the report gives them are the chain's: verify against its head
    head = report["audit_head"]
    verified = lab.fleet.run("audit", "verify", "--expect-head", f"{head['seq']}:{head['hash']}")
    assert verified.returncode == 0, verified.stderr


def test_a_saved_plan_with_a_host_that_drifted(lab: Lab) -> None:
    report = lab.report(lab.runs["planned"])
    plan = report["plan"]
    assert (plan["source"], plan["refused"]) == ("saved_plan", ["ep-0008"])
    assert {step["target"] for step in report["planned"]} == {"ep-0008", "ep-0009"}
    assert all(step["digest"] for step in report["planned"] if step["changes"])
    refused, applied = target(report, "ep-0008"), target(report, "ep-0009")
    assert (refused["state"], refused["error_kind"], refused["planned"]) == ("refused", "drifted", True)
    assert "changed since the plan was made" in refused["message"]
    assert (applied["state"], applied["verification"]) == ("succeeded", "passed")
    (row,) = rows_of(report, "ep-0008")
    assert (row["target_state"], row["step"], row["message"]) == ("refused", None, refused["message"])
    assert any(r["step_state"] == "applied" and r["field"] for r in rows_of(report, "ep-0009"))
    page = lab.report(lab.runs["planned"], "html")
    assert "saved plan" in page
    assert 'id="plan-refused">ep-0008<' in page


def test_a_paused_run_and_its_resumption(lab: Lab) -> None:
    paused = lab.early["paused"]
    run = paused["run"]
    assert run["status"] == "paused"
    assert "outside change window" in run["pause_reason"]
    assert run["window"].endswith(" UTC")
    assert {t["state"] for t in paused["targets"]} == {"pending"}
    assert actions(paused) == ["run.create", "run.pause"]

    report = lab.report(lab.runs["resumed"])
    assert report["run"]["status"] == "succeeded"
    assert {t["state"] for t in report["targets"]} == {"succeeded"}
    assert actions(report)[:4] == ["run.create", "run.pause", "run.start", "run.ignore_window"]
    assert report["run"]["changes_applied"] > 0


def test_each_stopped_run_was_posted_to_the_run_webhooks(lab: Lab) -> None:
    posted = [request.json() for request in lab.receiver.to("ok") if "/json/" in request.path]
    for message in posted:
        jsonschema.validate(message, WEBHOOK_SCHEMA, cls=jsonschema.Draft202012Validator)
    ran = [lab.runs[name] for name in ("approved", "rolled_back", "by_hand", "planned")]
    paused = lab.early["paused"]["run"]["id"]
    assert [(m["run_id"], m["status"]) for m in posted] == [
        (ran[0], "succeeded"),
        (ran[1], "failed"),
        (ran[2], "succeeded"),
        (ran[3], "succeeded"),  # a refused target changed nothing: not a failure (exit code 1 says it)
        (paused, "paused"),
        (paused, "succeeded"),
    ]  # nothing for the run awaiting approval, nor for --check or the sweep
    assert posted[1]["attention"][0]["state"] == "rolled_back"
    teams = [
        r.json()["attachments"][0]["content"]["body"][0]["text"]
        for r in lab.receiver.to("ok")
        if r.path == "/ok/teams"
    ]
    assert sum(text.startswith("fleetfix run ") for text in teams) == 6
    assert sum(text.startswith("fleetfix sweep") for text in teams) == 1  # subscribed to both events
    assert len([r for r in lab.receiver.requests if r.path == "/ok/slack"]) == 6
    # the failing webhook is a warning, never the run's outcome, and never shows its URL
    assert sum("webhook 4 (json) not notified: HTTP 404: no_service" in text for text in lab.stderr) == 6
    assert all(TOKEN not in text for text in lab.stderr)
    assert lab.codes == {"approved": 0, "rolled_back": 1, "by_hand": 0, "planned": 1, "resumed": 0}


def test_metrics_have_each_playbooks_last_run(lab: Lab) -> None:
    written = lab.fleet.json("report", "metrics", "-o", str(lab.directory / "fleetfix.prom"))
    assert written["samples"] > 0
    text = (lab.directory / "fleetfix.prom").read_text()
    assert 'fleetfix_run_targets{playbook="install-ca-chain",state="refused"} 1' in text
    assert 'fleetfix_run_targets{playbook="rras-root-thumbprint",state="rolled_back"} 1' in text
    assert 'fleetfix_runs_total{kind="playbook",status="failed"} 1' in text


def test_the_reports_never_touch_the_lab(lab: Lab) -> None:
    changes = len(lab.fleet.changes())
    for name in lab.runs:
        for fmt in ("html", "csv", "json"):
            lab.report(lab.runs[name], fmt)
    assert len(lab.fleet.changes()) == changes


def test_the_demos_runs_are_posted_and_reported(cli: Cli, tmp_path: Path) -> None:
    with running_receiver() as receiver:
        cli.env["FLEETFIX_NOTIFY__WEBHOOKS"] = json.dumps(
            [{"url": receiver.url("/ok/demo"), "events": ["run"]}, {"url": receiver.url("/ok/sweeps")}]
        )
        demo = cli.run("demo", "--scenario", "seed-article", "--dir", "lab", "--output", "json")
        assert demo.returncode == 0, demo.stderr
        runs = json.loads(demo.stdout)["remediation"]["runs"]
        posted = [request.json() for request in receiver.to("ok") if request.path == "/ok/demo"]
        sweeps = [request.json() for request in receiver.to("ok") if request.path == "/ok/sweeps"]
    assert [(m["run_id"], m["playbook"], m["status"]) for m in posted] == [
        (run["id"], run["playbook_id"], "succeeded") for run in runs
    ]
    for message in posted:
        jsonschema.validate(message, WEBHOOK_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [m["event"] for m in sweeps] == ["sweep"]  # the sweep webhook got the sweep only

    # the kept lab directory's store, reported as an admin would
    del cli.env["FLEETFIX_NOTIFY__WEBHOOKS"]
    written = cli.run(
        "--config", "lab/fleetfix.toml", "report", "run", runs[0]["id"], "-f", "json", "-o", "run.json"
    )
    assert written.returncode == 0, written.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    jsonschema.validate(report, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert report["run"]["status"] == "succeeded"
    assert report["run"]["changes_applied"] > 0
