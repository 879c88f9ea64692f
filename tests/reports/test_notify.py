"""Webhook notifications against a receiver on 127.0.0.1: the three formats, retries, timeouts, final
answers, references, and that a failing webhook never fails anything."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from orchestrator.config import NotifySettings, Settings, WebhookSettings
from orchestrator.credentials.masterkey import MasterKeySource
from orchestrator.credentials.vault import Vault
from orchestrator.logs import redact
from orchestrator.reports.notify import (
    MAX_RETRY_AFTER_S,
    after_sweep,
    deliver,
    notify_sweep,
    retry_delay,
    slack_escape,
)
from orchestrator.store import RunStatus
from orchestrator.store.sweeps import FindingRecord, HostRecord, SweepRun
from orchestrator.sweep.diff import Coverage, diff_findings
from orchestrator.sweep.service import SweepResult
from orchestrator.sweep.summary import TenantOutcome, summarize
from tests.reports.receiver import Receiver, running_receiver
from tests.reports.support import T0, down, finding, ok

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "webhook-sweep.v1.json").read_text())
HOSTILE_HOST = "<!channel> <http://evil|x>"
TOKEN = "T0KEN-b1c2d3e4f5"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


def sweep_result(hosts: list[HostRecord], findings: list[FindingRecord]) -> SweepResult:
    collected = [h.host for h in hosts if h.error_kind is None]
    diff = diff_findings(
        findings, None, coverage=Coverage.of(collected, complete=True), inventory_hosts=collected
    )
    tenant = TenantOutcome(configured=False)
    summary = summarize(hosts, findings, diff, tenant, (), complete=len(collected) == len(hosts))
    run = SweepRun(
        id="5da4d8bb-742d-4505-b4d9-dca57b625a5c",
        status=RunStatus.SUCCEEDED,
        selector="role:endpoint",
        parameters={},
        requested_by="admin@adm01",
        created_at=T0,
        started_at=T0,
        finished_at=T0 + timedelta(minutes=1),
        summary=summary,
    )
    return SweepResult(run, tuple(hosts), tenant, (), tuple(findings), diff, summary)


@pytest.fixture
def result() -> SweepResult:
    findings = [
        finding("EP-1", "EP-CERT-01"),
        finding(HOSTILE_HOST, "RRAS-AUTH-01", "root", severity="critical", playbook="rras-root-thumbprint"),
    ]
    return sweep_result([ok("EP-1"), ok(HOSTILE_HOST), down("EP-3")], findings)


def settings(tmp_path: Path, *hooks: dict[str, Any]) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        notify=NotifySettings(webhooks=tuple(WebhookSettings.model_validate(hook) for hook in hooks)),
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_the_three_formats(tmp_path: Path, receiver: Receiver, result: SweepResult) -> None:
    config = settings(
        tmp_path,
        {"url": receiver.url(f"/ok/json/{TOKEN}"), "format": "json"},
        {"url": receiver.url("/ok/teams"), "format": "teams"},
        {"url": receiver.url("/ok/slack"), "format": "slack"},
        {"url": receiver.url("/ok/runs-only"), "events": ["run"]},  # not subscribed to sweeps
    )
    assert notify_sweep(config, result, environ={}) == ()
    assert len(receiver.requests) == 3
    generic, teams, slack = (r.json() for r in receiver.requests)
    assert receiver.requests[0].headers["Content-Type"].startswith("application/json")

    jsonschema.validate(generic, WEBHOOK_SCHEMA, cls=jsonschema.Draft202012Validator)
    assert (generic["event"], generic["run_id"], generic["compliant"]) == ("sweep", result.run.id, False)
    assert generic["hosts"] == {"selected": 3, "ok": 2, "unreachable": 1, "failed": 0}
    assert generic["findings"]["new"] == 2
    assert [f["severity"] for f in generic["new_findings"]] == ["critical", "high"]
    assert generic["not_collected"] == [
        {"host": "EP-3", "role": "endpoint", "status": "unreachable", "error_kind": "timed_out"}
    ]

    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "fleetfix sweep: not compliant"
    facts = {fact["title"]: fact["value"] for fact in card["body"][2]["facts"]}
    assert facts["Hosts"] == "2/3 collected (1 unreachable)"
    assert facts["Findings"] == "2 (1 critical, 1 high)"
    assert facts["Changes"] == "2 new, 0 still open, 0 resolved (first sweep)"
    texts = [block.get("text", "") for block in card["body"]]
    assert any("RRAS-AUTH-01" in text for text in texts)

    assert "not compliant" in slack["text"]
    assert slack["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "fleetfix sweep: not compliant"},
    }
    assert len(slack["blocks"][1]["fields"]) == 4
    rendered = json.dumps(slack)
    assert "<!channel>" not in rendered
    assert "&lt;!channel&gt; &lt;http://evil|x&gt;" in slack["blocks"][2]["text"]["text"]


def test_a_500_is_retried_then_delivered(receiver: Receiver) -> None:
    sleeps = Sleeps()
    with httpx.Client() as client:
        outcome = deliver(client, receiver.url("/flaky"), b"{}", retries=3, timeout_s=5, sleep=sleeps)
    assert (outcome.ok, outcome.attempts) == (True, 2)
    assert len(receiver.to("flaky")) == 2
    assert sleeps == [1.0]  # the first backoff step


def test_retry_after_is_honoured_and_bounded(receiver: Receiver) -> None:
    for after, expected in (("7", 7.0), ("3600", MAX_RETRY_AFTER_S)):
        receiver.seen.clear()
        sleeps = Sleeps()
        with httpx.Client() as client:
            outcome = deliver(
                client, receiver.url(f"/busy?after={after}"), b"{}", retries=1, timeout_s=5, sleep=sleeps
            )
        assert outcome.ok
        assert sleeps == [expected]


def test_a_404_is_final(tmp_path: Path, receiver: Receiver, result: SweepResult) -> None:
    sleeps = Sleeps()
    config = settings(tmp_path, {"url": receiver.url(f"/missing/{TOKEN}"), "format": "slack", "retries": 5})
    notes = notify_sweep(config, result, environ={}, sleep=sleeps)
    assert notes == ("webhook 1 (slack) not notified: HTTP 404: no_service",)
    assert len(receiver.to("missing")) == 1
    assert sleeps == []


def test_a_hanging_receiver_times_out_and_retries_are_bounded(receiver: Receiver) -> None:
    sleeps = Sleeps()
    with httpx.Client() as client:
        outcome = deliver(client, receiver.url("/hang"), b"{}", retries=1, timeout_s=0.3, sleep=sleeps)
    assert not outcome.ok
    assert outcome.detail == "no answer within 0.3 s after 2 attempts"
    assert len(receiver.to("hang")) == 2
    assert sleeps == [1.0]


def test_nothing_listens(tmp_path: Path, result: SweepResult) -> None:
    with running_receiver() as gone:
        url = gone.url("/ok")
    sleeps = Sleeps()
    notes = notify_sweep(settings(tmp_path, {"url": url, "retries": 2}), result, environ={}, sleep=sleeps)
    assert notes == ("webhook 1 (json) not notified: connection failed (ConnectError) after 3 attempts",)
    assert sleeps == [1.0, 2.0]


def test_references_resolve_and_unresolvable_ones_are_notes(
    tmp_path: Path, receiver: Receiver, result: SweepResult
) -> None:
    data = tmp_path / "data"
    Vault(data / "credentials.json", MasterKeySource(data / "master.key", {})).set(
        "teams-hook", "webhook", receiver.url(f"/ok/vault/{TOKEN}")
    )
    config = settings(
        tmp_path,
        {"url": "env:NOT_SET_ANYWHERE", "format": "teams"},
        {"url": "vault:teams-hook", "format": "teams"},
        {"url": "env:HOOK_URL"},
        {"url": "vault:no-such-entry"},
        {"url": "env:NOT_A_URL"},
    )
    environ = {"HOOK_URL": receiver.url("/ok/env"), "NOT_A_URL": "mailto:someone@example.com"}
    notes = notify_sweep(config, result, environ=environ)
    assert [r.path for r in receiver.requests] == [f"/ok/vault/{TOKEN}", "/ok/env"]
    assert notes[0] == (
        "webhook 1 (teams) not notified: its URL cannot be resolved: "
        "env:NOT_SET_ANYWHERE: environment variable NOT_SET_ANYWHERE is not set"
    )
    assert notes[1].startswith(
        "webhook 4 (json) not notified: its URL cannot be resolved: vault:no-such-entry"
    )
    assert notes[2] == (
        "webhook 5 (json) not notified: its URL cannot be resolved: "
        "env:NOT_A_URL does not hold an http(s) URL"
    )
    assert "someone@example.com" not in " ".join(notes)


def test_urls_never_reach_notes_or_logs(
    tmp_path: Path, receiver: Receiver, result: SweepResult, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = receiver.url(f"/missing/{TOKEN}")
    notes = notify_sweep(settings(tmp_path, {"url": url}), result, environ={})
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("fleetfix")]
    assert ours == list(notes)
    assert all(TOKEN not in text for text in [*notes, *ours])
    assert redact(f"posting to {url}") == "posting to ********"  # the URL is registered for redaction
    assert "url" not in repr(settings(tmp_path, {"url": url}).notify.webhooks[0])


def test_after_sweep_adds_notes_and_never_raises(tmp_path: Path, result: SweepResult) -> None:
    config = settings(tmp_path)

    def broken(*args: Any, **kwargs: Any) -> tuple[str, ...]:
        raise RuntimeError("a defect")

    noted = after_sweep(config, result, notify=broken)
    assert noted.summary["notes"][-1] == "webhook notifications failed: internal error (RuntimeError)"
    assert noted.summary["notes"][:-1] == result.summary["notes"]
    assert noted.run == result.run
    assert noted.findings == result.findings
    assert after_sweep(config, result) is result  # no webhook configured: nothing to say
    failing = after_sweep(config, result, notify=lambda *a, **k: ["webhook 1 (json) not notified: HTTP 404"])
    assert failing.summary["notes"][-1] == "webhook 1 (json) not notified: HTTP 404"
    assert "webhook" not in " ".join(result.summary["notes"])  # the original is unchanged


def test_retry_delay() -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert [retry_delay(n, None) for n in (1, 2, 3, 4, 5, 9)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert retry_delay(1, "Sun, 01 Mar 2026 12:00:05 GMT", now=now) == 5.0
    assert retry_delay(1, "Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_delay(2, "soon", now=now) == 2.0
    assert retry_delay(1, "-3") == 1.0


def test_slack_escape() -> None:
    assert slack_escape("<@U123> & <!here>") == "&lt;@U123&gt; &amp; &lt;!here&gt;"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.slack.com/services/T/B/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("vault:teams-hook", True),
        ("env:HOOK", True),
        ("ftp://example.com/x", False),
        ("hooks.slack.com/services/T/B/x", False),
        ("vault:", False),
    ],
)
def test_webhook_urls_are_urls_or_references(url: str, ok: bool) -> None:
    if ok:
        assert WebhookSettings(url=url).url == url
    else:
        with pytest.raises(ValueError, match="reference") as raised:
            WebhookSettings(url=url)
        assert "hooks.slack.com/services" not in str(raised.value).split("input_value")[0]
