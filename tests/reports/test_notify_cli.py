"""Webhooks after ``fleetfix sweep`` and ``fleetfix demo`` through the installed console script: the
sweep succeeds whatever the webhooks do, and says which ones failed, never their URLs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.clirun import Cli
from tests.reports.receiver import Receiver, running_receiver

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "T0KEN-9f8e7d6c5b"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def test_a_sweep_notifies_and_failing_webhooks_are_notes(
    cli: Cli, tmp_path: Path, receiver: Receiver
) -> None:
    inventory = {"hosts": {"ep-1": {"role": "endpoint", "address": "127.0.0.1", "credential": "vault:x"}}}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "fleetfix.toml").write_text(
        f"""
data_dir = "data"
inventory = ["inventory.yaml"]

[[notify.webhooks]]
url = "{receiver.url(f"/ok/json/{TOKEN}")}"

[[notify.webhooks]]
url = "{receiver.url(f"/missing/{TOKEN}")}"
format = "slack"

[[notify.webhooks]]
url = "{receiver.url(f"/hang/{TOKEN}")}"
format = "teams"
timeout_s = 0.5
retries = 0

[[notify.webhooks]]
url = "env:FLEETFIX_TEST_HOOK_UNSET"
format = "json"

[[notify.webhooks]]
url = "env:HOOK_FROM_ENV"
format = "slack"
""",
        encoding="utf-8",
    )
    cli.env["HOOK_FROM_ENV"] = receiver.url(f"/ok/slack/{TOKEN}")
    # an empty selection: a complete, compliant sweep without contacting any host
    result = cli.run("sweep", "--limit", "name:nothing-matches", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["compliant"] is True
    webhook_notes = [note for note in document["notes"] if note.startswith("webhook")]
    assert webhook_notes == [
        "webhook 2 (slack) not notified: HTTP 404: no_service",
        "webhook 3 (teams) not notified: no answer within 0.5 s",
        "webhook 4 (json) not notified: its URL cannot be resolved: env:FLEETFIX_TEST_HOOK_UNSET: "
        "environment variable FLEETFIX_TEST_HOOK_UNSET is not set",
    ]
    assert TOKEN not in result.stdout + result.stderr
    assert "webhook 2 (slack) not notified" in result.stderr  # the warning in the log

    (generic,) = receiver.to("ok")[:1]
    schema = json.loads((ROOT / "docs" / "schemas" / "webhook-sweep.v1.json").read_text())
    jsonschema.validate(generic.json(), schema, cls=jsonschema.Draft202012Validator)
    assert generic.json()["run_id"] == document["run_id"]
    assert [r.path for r in receiver.requests if r.path.startswith("/ok")] == [
        f"/ok/json/{TOKEN}",
        f"/ok/slack/{TOKEN}",
    ]

    table = cli.run("sweep", "--limit", "name:nothing-matches")
    assert table.returncode == 0
    assert "webhook 2 (slack) not notified: HTTP 404" in table.stderr
    assert TOKEN not in table.stdout + table.stderr


@pytest.mark.slow
def test_the_demo_notifies_and_its_store_makes_reports(cli: Cli, tmp_path: Path, receiver: Receiver) -> None:
    hooks = [{"url": receiver.url("/ok/demo")}, {"url": receiver.url("/missing/demo"), "format": "teams"}]
    cli.env["FLEETFIX_NOTIFY__WEBHOOKS"] = json.dumps(hooks)
    demo = cli.run("demo", "--scenario", "healthy", "--dir", "lab", "--output", "json")
    assert demo.returncode == 0, demo.stderr
    sweep = json.loads(demo.stdout)["sweep"]
    assert "webhook 2 (teams) not notified: HTTP 404: no_service" in sweep["notes"]
    (posted,) = receiver.to("ok")
    assert posted.json()["run_id"] == sweep["run_id"]

    # the kept lab directory's store, reported as an admin would (real checks, real evidence)
    del cli.env["FLEETFIX_NOTIFY__WEBHOOKS"]
    config = ("--config", "lab/fleetfix.toml")
    for fmt in ("html", "csv", "json"):
        written = cli.run(*config, "report", "sweep", "-f", fmt, "-o", f"report.{fmt}", "--output", "json")
        assert written.returncode == 0, written.stderr
        assert json.loads(written.stdout)["run_id"] == sweep["run_id"]
    export = json.loads((tmp_path / "report.json").read_text())
    schema = json.loads((ROOT / "docs" / "schemas" / "sweep-report.v1.json").read_text())
    jsonschema.validate(export, schema, cls=jsonschema.Draft202012Validator)
    assert export["run"]["hosts"]["selected"] == sweep["counts"]["hosts"]["selected"]
    assert export["run"]["hosts"]["compliant"] == sweep["counts"]["hosts"]["ok"]  # healthy: no finding
    assert (
        f'id="hosts-selected">{sweep["counts"]["hosts"]["selected"]}<'
        in (tmp_path / "report.html").read_text()
    )
