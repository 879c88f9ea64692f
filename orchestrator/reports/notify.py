"""Webhook notifications after a sweep: a generic JSON document, a Microsoft Teams card, a Slack
message (docs/reports.md, "Webhooks").

* The messages are pure functions of a :class:`SweepNotice` (:func:`json_payload`,
  :func:`teams_payload`, :func:`slack_payload`).
* Delivery (:func:`deliver`) posts with a timeout and retries connection errors, timeouts, 429 and
  5xx with exponential backoff, honouring ``Retry-After`` up to :data:`MAX_RETRY_AFTER_S`; any
  other answer (a 404, a 400) is final.
* :func:`after_sweep` is what the CLI calls once a sweep is stored: it posts to every configured
  webhook whose ``events`` include ``sweep`` and never raises -- a webhook that fails is a warning
  in the log and a note in the sweep's output, never a failed sweep.

Webhook URLs carry their token, so they are secrets: a URL (written in the settings or resolved
from ``vault:NAME`` / ``env:VAR``) is registered for log redaction before any request, and no
message of this module names it; a webhook is named by its position and format
(``webhook 2 (teams)``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from orchestrator import __version__
from orchestrator.config import Settings, WebhookSettings
from orchestrator.credentials.secret import Secret
from orchestrator.errors import FleetfixError
from orchestrator.store.models import HostStatus
from orchestrator.sweep.findings import sort_key
from orchestrator.sweep.report import iso

if TYPE_CHECKING:
    from orchestrator.credentials.vault import Vault
    from orchestrator.sweep.service import SweepResult

log = logging.getLogger("fleetfix.reports.notify")

NOTIFY_SCHEMA_VERSION = 1
SWEEP_EVENT = "sweep"
MAX_LISTED = 10
"""New findings and uncollected hosts named in a message; the counts cover the rest."""
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 10.0
MAX_RETRY_AFTER_S = 30.0
WEBHOOK_USERNAME = "webhook"
"""The username given to credential resolution (an ``env:`` reference needs one; unused)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


# --- the message ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoticeFinding:
    host: str
    check_id: str
    severity: str
    title: str
    subject: str
    playbook: str | None
    advice: str | None


@dataclass(frozen=True)
class NoticeHost:
    host: str
    role: str
    status: str
    error_kind: str | None


@dataclass(frozen=True)
class SweepNotice:
    """What a sweep notification says, whatever the format."""

    run_id: str
    previous_run: str | None
    finished_at: datetime | None
    selector: str | None
    compliant: bool
    complete: bool
    hosts: Mapping[str, int]
    findings_total: int
    by_severity: Mapping[str, int]
    changes: Mapping[str, int]
    """``new``, ``still_open``, ``resolved``, ``unverified``"""
    new_findings: tuple[NoticeFinding, ...]
    not_collected: tuple[NoticeHost, ...]
    notes: tuple[str, ...]


def sweep_notice(result: SweepResult) -> SweepNotice:
    """The notice of a finished sweep (pure: reads the result only)."""
    summary = result.summary
    new = sorted(result.diff.new, key=sort_key)[:MAX_LISTED]
    missing = [record for record in result.hosts if record.status is not HostStatus.OK][:MAX_LISTED]
    findings = summary.get("findings") or {}
    return SweepNotice(
        run_id=result.run.id,
        previous_run=result.diff.previous_run,
        finished_at=result.run.finished_at,
        selector=result.run.selector,
        compliant=result.compliant,
        complete=bool(summary.get("complete")),
        hosts=dict(summary.get("hosts") or {}),
        findings_total=len(result.findings),
        by_severity=dict(findings.get("by_severity") or {}),
        changes=result.diff.counts(),
        new_findings=tuple(
            NoticeFinding(f.host, f.check_id, f.severity, f.title, f.subject, f.playbook, f.advice)
            for f in new
        ),
        not_collected=tuple(NoticeHost(h.host, h.role, h.status.value, h.error_kind) for h in missing),
        notes=tuple(str(note) for note in summary.get("notes") or ()),
    )


def _verdict(notice: SweepNotice) -> str:
    return "compliant" if notice.compliant else "not compliant"


def _hosts_line(notice: SweepNotice) -> str:
    hosts = notice.hosts
    line = f"{hosts.get('ok', 0)}/{hosts.get('selected', 0)} collected"
    missing = [f"{hosts[key]} {key}" for key in ("unreachable", "failed") if hosts.get(key)]
    return f"{line} ({', '.join(missing)})" if missing else line


def _findings_line(notice: SweepNotice) -> str:
    parts = [f"{count} {severity}" for severity, count in notice.by_severity.items() if count]
    return f"{notice.findings_total} ({', '.join(parts)})" if parts else str(notice.findings_total)


def _changes_line(notice: SweepNotice) -> str:
    changes = notice.changes
    line = (
        f"{changes.get('new', 0)} new, {changes.get('still_open', 0)} still open, "
        f"{changes.get('resolved', 0)} resolved"
    )
    return line if notice.previous_run else f"{line} (first sweep)"


def _finding_line(finding: NoticeFinding) -> str:
    return f"{finding.severity} {finding.check_id} on {finding.host}: {finding.title} ({finding.subject})"


def _host_line(host: NoticeHost) -> str:
    return f"{host.host} ({host.role}): {host.status}, {host.error_kind or 'no error kind'}"


def _plain(text: str, limit: int = 300) -> str:
    """One line of plain text: control characters folded, long text cut."""
    flat = _CONTROL.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def one_line(text: str, limit: int = 300) -> str:
    """Text for a chat message: one line, control characters folded, cut at ``limit``."""
    return _plain(text, limit)


def json_payload(notice: SweepNotice) -> dict[str, Any]:
    """The generic JSON message (schema: docs/schemas/webhook-sweep.v1.json)."""
    return {
        "schema_version": NOTIFY_SCHEMA_VERSION,
        "event": SWEEP_EVENT,
        "source": f"fleetfix {__version__}",
        "run_id": notice.run_id,
        "previous_run": notice.previous_run,
        "finished_at": iso(notice.finished_at),
        "selector": notice.selector,
        "compliant": notice.compliant,
        "complete": notice.complete,
        "hosts": dict(notice.hosts),
        "findings": {
            "total": notice.findings_total,
            "by_severity": dict(notice.by_severity),
            **notice.changes,
        },
        "new_findings": [
            {
                "host": f.host,
                "check_id": f.check_id,
                "severity": f.severity,
                "title": f.title,
                "subject": f.subject,
                "playbook": f.playbook,
                "advice": f.advice,
            }
            for f in notice.new_findings
        ],
        "not_collected": [
            {"host": h.host, "role": h.role, "status": h.status, "error_kind": h.error_kind}
            for h in notice.not_collected
        ],
        "notes": list(notice.notes),
    }


def teams_payload(notice: SweepNotice) -> dict[str, Any]:
    """A Teams incoming-webhook message: an Adaptive Card (1.4) in a ``message`` envelope, which
    both Teams Workflows webhooks and the older Office 365 connector webhooks accept."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": "Good" if notice.compliant else "Attention",
            "text": f"fleetfix sweep: {_verdict(notice)}",
        },
        {
            "type": "TextBlock",
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
            "text": _plain(f"sweep {notice.run_id}, finished {iso(notice.finished_at) or 'unknown'}"),
        },
        {
            "type": "FactSet",
            "facts": [
                {"title": "Hosts", "value": _hosts_line(notice)},
                {"title": "Findings", "value": _findings_line(notice)},
                {"title": "Changes", "value": _changes_line(notice)},
                *([{"title": "Selection", "value": _plain(notice.selector)}] if notice.selector else []),
            ],
        },
    ]
    if notice.new_findings:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "New findings", "wrap": True})
        body.extend(
            {"type": "TextBlock", "spacing": "None", "wrap": True, "text": _plain(f"- {_finding_line(f)}")}
            for f in notice.new_findings
        )
    if notice.not_collected:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Hosts not collected", "wrap": True})
        body.extend(
            {
                "type": "TextBlock",
                "spacing": "None",
                "wrap": True,
                "text": _plain(f"- {_host_line(h)}"),
            }
            for h in notice.not_collected
        )
    body.extend(
        {"type": "TextBlock", "isSubtle": True, "wrap": True, "text": _plain(f"Note: {note}")}
        for note in notice.notes
    )
    return teams_message(body)


def teams_message(body: list[dict[str, Any]]) -> dict[str, Any]:
    """A Teams incoming-webhook ``message`` carrying one Adaptive Card (1.4) with ``body``."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def slack_escape(text: str) -> str:
    """Text for Slack's ``mrkdwn`` and ``text``: ``&``, ``<`` and ``>`` escaped, so a host name
    can never become a link, a mention or ``<!channel>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notice: SweepNotice) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (notifications, fallback) and ``blocks``."""
    verdict = _verdict(notice)
    fields = [
        {"type": "mrkdwn", "text": f"*Hosts*\n{slack_escape(_hosts_line(notice))}"},
        {"type": "mrkdwn", "text": f"*Findings*\n{slack_escape(_findings_line(notice))}"},
        {"type": "mrkdwn", "text": f"*Changes*\n{slack_escape(_changes_line(notice))}"},
        {"type": "mrkdwn", "text": f"*Sweep*\n`{slack_escape(notice.run_id)}`"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"fleetfix sweep: {verdict}"}},
        {"type": "section", "fields": fields},
    ]
    if notice.new_findings:
        lines = "\n".join(
            f"\u2022 {slack_escape(_plain(_finding_line(f), 200))}" for f in notice.new_findings
        )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*New findings*\n{lines}"[:2900]}}
        )
    if notice.not_collected:
        lines = "\n".join(f"\u2022 {slack_escape(_plain(_host_line(h), 200))}" for h in notice.not_collected)
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Hosts not collected*\n{lines}"[:2900]}}
        )
    if notice.notes:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": slack_escape(_plain(n, 500))} for n in notice.notes[:10]
                ],
            }
        )
    text = (
        f"fleetfix sweep {notice.run_id}: {verdict}. Findings {_findings_line(notice)}; "
        f"{_changes_line(notice)}; hosts {_hosts_line(notice)}."
    )
    return {"text": slack_escape(text), "blocks": blocks}


PAYLOADS: Mapping[str, Callable[[SweepNotice], dict[str, Any]]] = {
    "json": json_payload,
    "teams": teams_payload,
    "slack": slack_payload,
}


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How posting to one webhook went; ``detail`` never contains the URL."""

    ok: bool
    attempts: int
    detail: str


def retry_delay(attempt: int, retry_after: str | None, *, now: datetime | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: the server's ``Retry-After`` (seconds or an
    HTTP date) up to :data:`MAX_RETRY_AFTER_S`, else ``1, 2, 4 … 10`` seconds."""
    if retry_after:
        text = retry_after.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError, IndexError):
                seconds = -1.0
            else:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                seconds = max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
        if 0 <= seconds < float("inf"):
            return min(seconds, MAX_RETRY_AFTER_S)
    return float(min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S))


def _answer(response: httpx.Response) -> str:
    """``HTTP 404`` plus the start of the body, which for Slack and Teams says what is wrong."""
    text = _plain(response.text, 80) if response.content else ""
    return f"HTTP {response.status_code}" + (f": {text}" if text else "")


def deliver(
    client: httpx.Client,
    url: str,
    body: bytes,
    *,
    retries: int,
    timeout_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``body`` (JSON) to ``url``; retry what may pass on a second try, at most ``retries``
    times.  Never raises for what the network or the server does."""
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"fleetfix/{__version__}"}
    attempt = 0
    while True:
        attempt += 1
        retry_after: str | None = None
        try:
            response = client.post(url, content=body, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException:
            detail, retryable = f"no answer within {timeout_s:g} s", True
        except httpx.HTTPError as exc:
            detail, retryable = f"connection failed ({type(exc).__name__})", True
        else:
            status = response.status_code
            if 200 <= status < 300:
                return Delivery(True, attempt, f"HTTP {status}")
            detail = _answer(response)
            retryable = status == 429 or status >= 500
            retry_after = response.headers.get("Retry-After")
        if not retryable or attempt > retries:
            return Delivery(False, attempt, detail if attempt == 1 else f"{detail} after {attempt} attempts")
        sleep(retry_delay(attempt, retry_after))


# --- after a sweep -----------------------------------------------------------------------------


def _resolve(hook: WebhookSettings, vault: Callable[[], Vault], environ: Mapping[str, str] | None) -> str:
    """The webhook's URL (registered for redaction); FleetfixError when it cannot be had."""
    if not hook.is_reference:
        return Secret(hook.url).reveal()
    from orchestrator.credentials.resolve import resolve_credential  # noqa: PLC0415

    reference_vault = vault() if hook.url.startswith("vault:") else None
    url = resolve_credential(hook.url, username=WEBHOOK_USERNAME, vault=reference_vault, environ=environ)
    text = url.secret.reveal().strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise FleetfixError(f"{hook.url} does not hold an http(s) URL")
    Secret(text)  # the stripped spelling is redacted too
    return text


def subscribed(settings: Settings, event: str) -> list[tuple[int, WebhookSettings]]:
    """The webhooks (numbered from 1, as messages name them) whose ``events`` include ``event``."""
    return [
        (index, hook) for index, hook in enumerate(settings.notify.webhooks, start=1) if event in hook.events
    ]


def post_to_webhooks(
    settings: Settings,
    event: str,
    message: Callable[[str], Mapping[str, Any]],
    *,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, ...]:
    """Post ``message(format)`` to every webhook subscribed to ``event``; a note for each that
    failed (named by position and format, never by URL).  The delivery of every notification
    (sweeps, playbook runs): URLs resolved and registered for redaction, retries, timeouts."""
    hooks = subscribed(settings, event)
    if not hooks:
        return ()
    opened: list[Vault] = []

    def vault() -> Vault:
        if not opened:
            from orchestrator.credentials.vault import Vault  # noqa: PLC0415

            opened.append(Vault.from_settings(settings, environ))
        return opened[0]

    bodies: dict[str, bytes] = {}
    notes: list[str] = []
    with contextlib.nullcontext(client) if client else httpx.Client(follow_redirects=False) as http:
        for index, hook in hooks:
            name = f"webhook {index} ({hook.format})"
            try:
                url = _resolve(hook, vault, environ)
            except FleetfixError as exc:  # names the reference, never a secret
                notes.append(f"{name} not notified: its URL cannot be resolved: {exc}")
                log.warning("%s", notes[-1])
                continue
            if hook.format not in bodies:
                bodies[hook.format] = json.dumps(message(hook.format), ensure_ascii=False).encode("utf-8")
            body = bodies[hook.format]
            outcome = deliver(http, url, body, retries=hook.retries, timeout_s=hook.timeout_s, sleep=sleep)
            if outcome.ok:
                log.info("%s notified (%d attempt(s))", name, outcome.attempts)
            else:
                notes.append(f"{name} not notified: {outcome.detail}")
                log.warning("%s", notes[-1])
    return tuple(notes)


def notify_sweep(
    settings: Settings,
    result: SweepResult,
    *,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, ...]:
    """Post ``result`` to every webhook subscribed to sweeps; a note for each that failed."""
    if not subscribed(settings, SWEEP_EVENT):
        return ()
    notice = sweep_notice(result)
    return post_to_webhooks(
        settings,
        SWEEP_EVENT,
        lambda form: PAYLOADS[form](notice),
        environ=environ,
        client=client,
        sleep=sleep,
    )


def after_sweep(
    settings: Settings,
    result: SweepResult,
    *,
    environ: Mapping[str, str] | None = None,
    notify: Callable[..., Sequence[str]] = notify_sweep,
) -> SweepResult:
    """Notify the configured webhooks of a stored sweep; the result with a note per failed
    webhook added to ``summary["notes"]``.  Never raises: a notification is not the sweep."""
    try:
        notes = tuple(notify(settings, result, environ=environ))
    except Exception as exc:  # a defect here must not fail a sweep that is already stored
        log.warning(
            "webhook notifications failed: %s", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG)
        )
        notes = (f"webhook notifications failed: internal error ({type(exc).__name__})",)
    if not notes:
        return result
    summary = {**result.summary, "notes": [*result.summary.get("notes", []), *notes]}
    return replace(result, summary=summary)


__all__ = [
    "BACKOFF_BASE_S",
    "MAX_LISTED",
    "MAX_RETRY_AFTER_S",
    "NOTIFY_SCHEMA_VERSION",
    "PAYLOADS",
    "Delivery",
    "NoticeFinding",
    "NoticeHost",
    "SweepNotice",
    "after_sweep",
    "deliver",
    "json_payload",
    "notify_sweep",
    "one_line",
    "post_to_webhooks",
    "retry_delay",
    "slack_escape",
    "slack_payload",
    "subscribed",
    "sweep_notice",
    "teams_message",
    "teams_payload",
]
