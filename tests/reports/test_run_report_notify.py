"""Webhook notifications after a playbook run: the three formats from a stored run, delivery
through the sweep notifications' code to a receiver on 127.0.0.1 (only to webhooks subscribed to
``run``), and a notification that can never fail the run."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.config import NotifySettings, Settings, WebhookSettings
from orchestrator.engine import get_run
from orchestrator.engine.runs import RunView
from orchestrator.reports.runnotify import (
    after_run,
    notify_run,
    run_json_payload,
    run_notice,
    run_slack_payload,
    run_teams_payload,
)
from orchestrator.store import Store
from tests.reports.receiver import Receiver, running_receiver
from tests.reports.test_run_report import failed, fixed, not_run, rolled_back, store_run, unchanged

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "webhook-run.v1.json").read_text())
TOKEN = "R0N-T0KEN-5c4b3a"
HOSTILE = "<!channel> <http://evil|x>"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def settings(tmp_path: Path, *hooks: dict[str, Any]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        notify=NotifySettings(webhooks=tuple(WebhookSettings.model_validate(hook) for hook in hooks)),
    )


@pytest.fixture
def view(sqlite_store: Store) -> RunView:
    run_id = store_run(
        sqlite_store,
        [
            fixed("ep-0001"),
            unchanged("ep-0002", 2),
            rolled_back("ep-0003", 2),
            not_run(HOSTILE, "skipped", "host is locked by run 7f1e", "locked", 2),
            failed("ep-0005", 2),
        ],
        status="failed",
        status_message="failure budget exceeded: 2 of 5 targets failed (max 0)",
    )
    return get_run(sqlite_store, run_id)


def test_the_notice_of_a_stopped_run(view: RunView) -> None:
    notice = run_notice(view)
    assert (notice.run_id, notice.playbook, notice.status) == (view.id, "fix-route-prefixes", "failed")
    assert (notice.total, notice.failures, notice.changes_applied) == (5, 2, 1)
    assert [(t.name, t.state) for t in notice.attention] == [
        ("ep-0003", "rolled_back"),
        ("ep-0005", "failed"),
        (HOSTILE, "skipped"),
    ]
    document = run_json_payload(notice)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["targets"]["by_state"]["rolled_back"] == 1
    assert (document["approved_by"], document["requested_by"]) == ("bob@adm01", "alice@adm01")
    assert document["status_message"] == "failure budget exceeded: 2 of 5 targets failed (max 0)"

    teams = run_teams_payload(notice)
    card = teams["attachments"][0]["content"]
    assert card["body"][0]["text"] == "fleetfix run fix-route-prefixes: failed"
    assert card["body"][0]["color"] == "Attention"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Targets"] == "5 (1 succeeded, 1 unchanged, 1 failed, 1 rolled back, 1 skipped)"
    assert facts["People"] == "requested by alice@adm01, approved by bob@adm01"
    assert facts["Why"] == "failure budget exceeded: 2 of 5 targets failed (max 0)"

    slack = run_slack_payload(notice)
    assert slack["blocks"][0]["text"]["text"] == "fleetfix run fix-route-prefixes: failed"
    rendered = json.dumps(slack)
    assert "<!channel>" not in rendered
    assert "&lt;!channel&gt; &lt;http://evil|x&gt;" in rendered


def test_attention_names_ten_and_counts_all(sqlite_store: Store) -> None:
    run_id = store_run(sqlite_store, [failed(f"ep-{i:04d}") for i in range(15)], status="failed")
    notice = run_notice(get_run(sqlite_store, run_id))
    assert (len(notice.attention), notice.attention_total) == (10, 15)
    document = run_json_payload(notice)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert "and 5 more" in json.dumps(run_teams_payload(notice))
    assert "and 5 more" in json.dumps(run_slack_payload(notice))


def test_posted_to_the_webhooks_subscribed_to_runs(
    tmp_path: Path, receiver: Receiver, view: RunView, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = settings(
        tmp_path,
        {"url": receiver.url(f"/ok/json/{TOKEN}"), "format": "json", "events": ["run"]},
        {"url": receiver.url("/ok/teams"), "format": "teams", "events": ["sweep", "run"]},
        {"url": receiver.url("/ok/slack"), "format": "slack", "events": ["run"]},
        {"url": receiver.url("/ok/sweeps-only"), "format": "json"},  # the default: sweeps
        {"url": receiver.url(f"/missing/{TOKEN}"), "format": "json", "events": ["run"], "retries": 0},
        {"url": receiver.url("/flaky/run"), "format": "json", "events": ["run"], "retries": 1},
    )
    notes = notify_run(config, view, environ={}, sleep=lambda seconds: None)
    assert notes == ("webhook 5 (json) not notified: HTTP 404: no_service",)
    assert [r.path for r in receiver.requests] == [
        f"/ok/json/{TOKEN}",
        "/ok/teams",
        "/ok/slack",
        f"/missing/{TOKEN}",
        "/flaky/run",
        "/flaky/run",  # a 500 is retried
    ]
    generic = receiver.requests[0].json()
    jsonschema.validate(generic, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert (generic["event"], generic["run_id"]) == ("run", view.id)
    assert receiver.requests[4].json() == generic
    assert receiver.requests[1].json()["type"] == "message"
    assert "blocks" in receiver.requests[2].json()
    logged = " ".join(record.getMessage() for record in caplog.records if record.name.startswith("fleetfix"))
    assert "webhook 5 (json) not notified: HTTP 404" in logged
    assert TOKEN not in logged + " ".join(notes)


def test_after_run_never_raises_and_says_nothing_before_a_run(
    tmp_path: Path, view: RunView, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)  # whatever level an earlier test left the root logger at
    config = settings(tmp_path, {"url": "http://127.0.0.1:9/run", "events": ["run"]})
    calls: list[str] = []

    def broken(settings: Settings, stopped: RunView, **kwargs: Any) -> tuple[str, ...]:
        calls.append(stopped.id)
        raise RuntimeError("a defect")

    assert after_run(config, view, notify=broken) is view
    assert calls == [view.id]
    assert "run notifications failed: internal error (RuntimeError)" in caplog.text

    waiting = get_run(
        sqlite_store,
        store_run(
            sqlite_store, [not_run("rras-05", "pending", "")], status="awaiting_approval", approved_by=None
        ),
    )
    assert after_run(config, waiting, notify=broken) is waiting
    assert calls == [view.id]  # a run that has not run is not announced
    assert after_run(settings(tmp_path), view) is view  # no webhook: nothing to do


def test_only_a_run_that_moved_is_announced(tmp_path: Path, sqlite_store: Store) -> None:
    config = settings(tmp_path, {"url": "http://127.0.0.1:9/run", "events": ["run"]})
    calls: list[str] = []

    def record(settings: Settings, stopped: RunView, **kwargs: Any) -> tuple[str, ...]:
        calls.append(stopped.status.value)
        return ()

    pending = get_run(
        sqlite_store, store_run(sqlite_store, [not_run("ep-1", "pending", "")], status="pending")
    )
    paused = get_run(
        sqlite_store,
        store_run(
            sqlite_store, [not_run("ep-1", "pending", "")], status="paused", pause_reason="outside window"
        ),
    )
    done = get_run(sqlite_store, store_run(sqlite_store, [fixed("ep-1")]))
    after_run(config, done, before=pending, notify=record)  # it ran
    after_run(config, done, before=paused, notify=record)  # it was resumed and ran
    after_run(config, paused, before=pending, notify=record)  # it paused
    after_run(config, done, before=done, notify=record)  # resuming a finished run does nothing
    after_run(config, paused, before=paused, notify=record)  # still outside its window
    assert calls == ["succeeded", "succeeded", "paused"]
