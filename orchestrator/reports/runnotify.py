"""Webhook notifications after a playbook run stops (finished or paused): a generic JSON document
(docs/schemas/webhook-run.v1.json), a Microsoft Teams card, a Slack message.

* The messages are pure functions of a :class:`RunNotice`, itself a pure function of the engine's
  :class:`~orchestrator.engine.runs.RunView` (:func:`run_notice`).
* Delivery is the sweep notifications' (:func:`orchestrator.reports.notify.post_to_webhooks`): the
  same URL resolution and redaction, timeouts, retries and backoff, to the webhooks whose
  ``events`` include ``run``.
* :func:`after_run` is what ``fleetfix run``, ``fleetfix runs resume`` and ``fleetfix demo`` call
  once the run stops; it never raises: a webhook that fails is a warning in the log (naming the
  webhook by position and format, never by URL), never a failed run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from orchestrator import __version__
from orchestrator.config import Settings
from orchestrator.reports.notify import (
    MAX_LISTED,
    NOTIFY_SCHEMA_VERSION,
    one_line,
    post_to_webhooks,
    slack_escape,
    subscribed,
    teams_message,
)
from orchestrator.reports.runmodel import FAILURES, TARGET_STATES
from orchestrator.sweep.report import iso

if TYPE_CHECKING:
    from orchestrator.engine.runs import RunView

log = logging.getLogger("fleetfix.reports.notify")

RUN_EVENT = "run"
_GOOD, _BAD = "succeeded", frozenset({"failed", "cancelled"})


@dataclass(frozen=True)
class NoticeTarget:
    name: str
    role: str
    wave: int
    state: str
    error_kind: str | None
    message: str


@dataclass(frozen=True)
class RunNotice:
    """What a run notification says, whatever the format."""

    run_id: str
    playbook: str | None
    status: str
    status_message: str | None
    pause_reason: str | None
    selector: str | None
    requested_by: str
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    by_state: Mapping[str, int]
    """every target state, zeros included"""
    changes_applied: int
    """changes made and kept (rolled-back ones not counted)"""
    attention: tuple[NoticeTarget, ...]
    """failures first, then refused and skipped targets (at most :data:`MAX_LISTED`)"""
    attention_total: int

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def failures(self) -> int:
        return sum(count for state, count in self.by_state.items() if state in FAILURES)


def _kept_changes(detail: Mapping[str, Any]) -> int:
    rolled = set(detail.get("rolled_back") or ())
    steps = detail.get("steps")
    return sum(
        len(step.get("changes") or ())
        for step in (steps if isinstance(steps, list) else ())
        if isinstance(step, Mapping) and step.get("state") == "applied" and step.get("step") not in rolled
    )


def run_notice(view: RunView) -> RunNotice:
    """The notice of a run that stopped (pure: reads the view only)."""
    counts: Counter[str] = Counter(target.state.value for target in view.targets)
    if not view.targets:  # a view without its targets (runs list) still has the counts
        counts.update({state.value: count for state, count in view.counts.items()})
    by_state = {state: counts.get(state, 0) for state in TARGET_STATES}
    listed = [t for t in view.targets if t.state.value in FAILURES] + [
        t for t in view.targets if t.state.value in {"refused", "skipped"}
    ]
    return RunNotice(
        run_id=view.id,
        playbook=view.playbook_id,
        status=view.status.value,
        status_message=view.status_message,
        pause_reason=view.pause_reason,
        selector=view.selector,
        requested_by=view.requested_by,
        approved_by=view.approved_by,
        approved_at=view.approved_at,
        created_at=view.created_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        by_state=by_state,
        changes_applied=sum(_kept_changes(target.detail) for target in view.targets),
        attention=tuple(
            NoticeTarget(t.name, t.role.value, t.wave, t.state.value, t.error_kind, t.message)
            for t in listed[:MAX_LISTED]
        ),
        attention_total=len(listed),
    )


# --- the messages -----------------------------------------------------------------------------


def _title(notice: RunNotice) -> str:
    return f"fleetfix run {notice.playbook or ''}: {notice.status.replace('_', ' ')}"


def _targets_line(notice: RunNotice) -> str:
    parts = [f"{count} {state.replace('_', ' ')}" for state, count in notice.by_state.items() if count]
    return f"{notice.total} ({', '.join(parts)})" if parts else str(notice.total)


def _why(notice: RunNotice) -> str:
    return notice.pause_reason or notice.status_message or ""


def _approval_line(notice: RunNotice) -> str:
    requested = f"requested by {notice.requested_by}"
    return f"{requested}, approved by {notice.approved_by}" if notice.approved_by else requested


def _target_line(target: NoticeTarget) -> str:
    kind = f" ({target.error_kind})" if target.error_kind else ""
    return f"{target.name}: {target.state.replace('_', ' ')}{kind}: {target.message or 'no message'}"


def run_json_payload(notice: RunNotice) -> dict[str, Any]:
    """The generic JSON message (schema: docs/schemas/webhook-run.v1.json)."""
    return {
        "schema_version": NOTIFY_SCHEMA_VERSION,
        "event": RUN_EVENT,
        "source": f"fleetfix {__version__}",
        "run_id": notice.run_id,
        "playbook": notice.playbook,
        "status": notice.status,
        "status_message": notice.status_message,
        "pause_reason": notice.pause_reason,
        "selector": notice.selector,
        "requested_by": notice.requested_by,
        "approved_by": notice.approved_by,
        "approved_at": iso(notice.approved_at),
        "created_at": iso(notice.created_at),
        "started_at": iso(notice.started_at),
        "finished_at": iso(notice.finished_at),
        "targets": {"total": notice.total, "failures": notice.failures, "by_state": dict(notice.by_state)},
        "changes_applied": notice.changes_applied,
        "attention": [
            {
                "target": t.name,
                "role": t.role,
                "wave": t.wave,
                "state": t.state,
                "error_kind": t.error_kind,
                "message": one_line(t.message, 500),
            }
            for t in notice.attention
        ],
        "attention_total": notice.attention_total,
    }


def run_teams_payload(notice: RunNotice) -> dict[str, Any]:
    """A Teams message: one Adaptive Card (the sweep notification's envelope)."""
    color = "Good" if notice.status == _GOOD else "Attention" if notice.status in _BAD else "Warning"
    when = iso(notice.finished_at) or iso(notice.started_at) or iso(notice.created_at) or "unknown"
    facts = [
        {"title": "Targets", "value": _targets_line(notice)},
        {"title": "Changes", "value": f"{notice.changes_applied} made and kept"},
        {"title": "People", "value": one_line(_approval_line(notice))},
        *([{"title": "Why", "value": one_line(_why(notice))}] if _why(notice) else []),
        *([{"title": "Selection", "value": one_line(notice.selector)}] if notice.selector else []),
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": color,
            "text": _title(notice),
        },
        {
            "type": "TextBlock",
            "isSubtle": True,
            "spacing": "None",
            "wrap": True,
            "text": one_line(f"run {notice.run_id}, {notice.status.replace('_', ' ')} at {when}"),
        },
        {"type": "FactSet", "facts": facts},
    ]
    if notice.attention:
        body.append({"type": "TextBlock", "weight": "Bolder", "text": "Needs attention", "wrap": True})
        body.extend(
            {"type": "TextBlock", "spacing": "None", "wrap": True, "text": one_line(f"- {_target_line(t)}")}
            for t in notice.attention
        )
        if notice.attention_total > len(notice.attention):
            more = notice.attention_total - len(notice.attention)
            body.append({"type": "TextBlock", "isSubtle": True, "wrap": True, "text": f"and {more} more"})
    return teams_message(body)


def run_slack_payload(notice: RunNotice) -> dict[str, Any]:
    """A Slack message: ``text`` (notifications, fallback) and ``blocks``; every value escaped."""
    fields = [
        {"type": "mrkdwn", "text": f"*Targets*\n{slack_escape(_targets_line(notice))}"},
        {"type": "mrkdwn", "text": f"*Changes*\n{notice.changes_applied} made and kept"},
        {"type": "mrkdwn", "text": f"*People*\n{slack_escape(one_line(_approval_line(notice), 200))}"},
        {"type": "mrkdwn", "text": f"*Run*\n`{slack_escape(notice.run_id)}`"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": one_line(_title(notice), 150)}},
        {"type": "section", "fields": fields},
    ]
    if _why(notice):
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": slack_escape(one_line(_why(notice), 500))}],
            }
        )
    if notice.attention:
        lines = "\n".join(f"\u2022 {slack_escape(one_line(_target_line(t), 200))}" for t in notice.attention)
        if notice.attention_total > len(notice.attention):
            lines += f"\nand {notice.attention_total - len(notice.attention)} more"
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Needs attention*\n{lines}"[:2900]}}
        )
    text = f"{_title(notice)} (run {notice.run_id}). Targets {_targets_line(notice)}." + (
        f" {one_line(_why(notice), 300)}" if _why(notice) else ""
    )
    return {"text": slack_escape(text), "blocks": blocks}


RUN_PAYLOADS: Mapping[str, Callable[[RunNotice], dict[str, Any]]] = {
    "json": run_json_payload,
    "teams": run_teams_payload,
    "slack": run_slack_payload,
}


# --- after a run --------------------------------------------------------------------------------


def notify_run(
    settings: Settings,
    view: RunView,
    *,
    environ: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str, ...]:
    """Post the run to every webhook subscribed to runs; a note for each that failed."""
    if not subscribed(settings, RUN_EVENT):
        return ()
    notice = run_notice(view)
    return post_to_webhooks(
        settings,
        RUN_EVENT,
        lambda form: RUN_PAYLOADS[form](notice),
        environ=environ,
        client=client,
        sleep=sleep,
    )


def _news(view: RunView, before: RunView | None) -> bool:
    """Whether the run did something worth announcing: it ran (not awaiting approval, planned or
    still pending), and it moved since ``before`` (``runs resume`` of a finished run, or of a
    paused run whose window is still closed, changes nothing and says nothing)."""
    if view.status.value in {"awaiting_approval", "planned", "pending"}:
        return False
    if before is None:
        return True
    if before.finished:
        return False
    return before.status != view.status or dict(before.counts) != dict(view.counts)


def after_run(
    settings: Settings,
    view: RunView,
    *,
    before: RunView | None = None,
    environ: Mapping[str, str] | None = None,
    notify: Callable[..., Sequence[str]] = notify_run,
) -> RunView:
    """Notify the configured webhooks of a run that stopped (``before``: the run as it was when
    the command took it up); ``view`` unchanged.  Never raises: a notification is not the run
    (each webhook that failed is already a warning in the log)."""
    if not _news(view, before):
        return view
    try:
        notify(settings, view, environ=environ)
    except Exception as exc:  # a defect here must not fail a run that is already stored
        log.warning(
            "run notifications failed: internal error (%s)",
            type(exc).__name__,
            exc_info=log.isEnabledFor(logging.DEBUG),
        )
    return view


__all__ = [
    "RUN_EVENT",
    "RUN_PAYLOADS",
    "NoticeTarget",
    "RunNotice",
    "after_run",
    "notify_run",
    "run_json_payload",
    "run_notice",
    "run_slack_payload",
    "run_teams_payload",
]
