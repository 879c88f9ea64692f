"""The playbook-run report from synthetic stored runs: the model's edge cases, the bounded store
queries, 10,000 targets, hostile values in HTML, the CSV and JSON exports against their documented
schema, the ``fleetfix_run_targets`` metric and ``fleetfix report run`` through the console script.

Runs are written straight into the store's tables (runs, run_waves, run_targets, action_journal)
with their audit entries appended through the audit log's own ``append_audit`` (so the chain is
valid), shaped like what the engine and the host work record; the lab tests
(``test_run_report_lab.py``) report runs the engine really made.
"""

from __future__ import annotations

import csv
import html.parser
import io
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event, insert, update

from orchestrator.checks.model import thaw
from orchestrator.reports.metrics import MetricsData, metrics_text
from orchestrator.reports.output import write_atomic
from orchestrator.reports.runexport import RUN_CSV_COLUMNS, run_csv, run_json, run_json_document
from orchestrator.reports.runhtml import render_run_html, run_html
from orchestrator.reports.runmodel import (
    Approval,
    PlanSource,
    RunReport,
    Verification,
    build_run_report,
)
from orchestrator.reports.runsource import (
    last_run_targets,
    load_run_data,
    playbook_info,
    report_run,
)
from orchestrator.store import Store, append_audit
from orchestrator.store.models import AuditLogRow, JournalEntry, Run, RunTarget, RunWave
from tests.clirun import Cli
from tests.reports.support import T0, ok, record_sweep

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "run-report.v1.json").read_text())
PLAYBOOK = "fix-route-prefixes"
ROUTES = "VpnConnection[Contoso Device Tunnel].Routes"
BAD, GOOD = ["172.21.12.0/21"], ["172.21.8.0/21"]
OPTIONS = {
    "canary": 1,
    "wave_size": 25,
    "serial": False,
    "max_fail": "5%",
    "window": "22:00-04:00 Europe/Amsterdam",
    "window_name": "nightly",
    "concurrency": 32,
    "extra": {},
}


# --- writing runs -------------------------------------------------------------------------------


@dataclass
class Target:
    """A run target as the engine and the host work leave it."""

    name: str
    state: str = "succeeded"
    wave: int = 1
    role: str = "endpoint"
    message: str = "changed by local-routes; verified"
    error_kind: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    planned: dict[str, Any] | None = None
    journal: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1


def fixed(name: str, wave: int = 1, *, before: Any = BAD, after: Any = GOOD) -> Target:
    """A device whose routes were fixed and verified."""
    change = {"field": ROUTES, "before": before, "after": after}
    return Target(
        name,
        wave=wave,
        detail={
            "steps": [
                {"step": "local-routes", "state": "applied", "changes": [change]},
                {"step": "sync", "state": "skipped", "reason": "condition 'when' is false"},
            ],
            "verified": ["EP-ROUTE-01"],
        },
        journal=[
            {
                "step": "local-routes",
                "action": "endpoint.fix-vpn-routes",
                "state": "applied",
                "before": {"routes": before},
                "after": {"routes": after},
                "changes": [change],  # what its action.apply audit entry records
            }
        ],
    )


def rolled_back(name: str, wave: int = 1) -> Target:
    """A device whose change did not verify and was restored."""
    return Target(
        name,
        state="rolled_back",
        wave=wave,
        message=(
            "verification failed: still reported: EP-ROUTE-01 route:172.21.8.0/21; rolled back local-routes"
        ),
        error_kind="verification",
        detail={
            "steps": [
                {
                    "step": "local-routes",
                    "state": "applied",
                    "changes": [{"field": ROUTES, "before": BAD, "after": GOOD}],
                }
            ],
            "remaining": ["EP-ROUTE-01 route:172.21.8.0/21"],
            "rolled_back": ["local-routes"],
            "rollback_errors": [],
        },
        journal=[
            {
                "step": "local-routes",
                "action": "endpoint.fix-vpn-routes",
                "state": "rolled_back",
                "before": {"routes": BAD},
                "after": {"routes": GOOD},
            }
        ],
    )


def unchanged(name: str, wave: int = 1) -> Target:
    return Target(
        name,
        state="unchanged",
        wave=wave,
        message="already right",
        detail={
            "steps": [{"step": "local-routes", "state": "unchanged", "note": "routes are network prefixes"}],
            "verified": ["EP-ROUTE-01"],
        },
        journal=[{"step": "local-routes", "action": "endpoint.fix-vpn-routes", "state": "unchanged"}],
    )


def failed(name: str, wave: int = 1) -> Target:
    return Target(
        name,
        state="failed",
        wave=wave,
        message="step local-routes (endpoint.fix-vpn-routes) failed: access is denied",
        error_kind="action",
        detail={
            "steps": [
                {
                    "step": "local-routes",
                    "state": "failed",
                    "error": "access is denied",
                    "kind": "script_failed",
                }
            ],
            "remaining": [],
        },
        journal=[
            {
                "step": "local-routes",
                "action": "endpoint.fix-vpn-routes",
                "state": "failed",
                "error": "access is denied",
            }
        ],
    )


def not_run(name: str, state: str, message: str, error_kind: str | None = None, wave: int = 1) -> Target:
    return Target(name, state=state, wave=wave, message=message, error_kind=error_kind, attempts=0)


def _journal_row(run_id: str, target: Target, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "host": target.name,
        "step": entry["step"],
        "action": entry["action"],
        "state": entry["state"],
        "claimed_by": "adm01:4242",
        "attempts": 1,
        "before": entry.get("before"),
        "after": entry.get("after"),
        "error": entry.get("error"),
        "claimed_at": T0,
        "finished_at": None if entry["state"] == "claimed" else T0,
    }


def store_run(
    store: Store,
    targets: Sequence[Target],
    *,
    playbook: str = PLAYBOOK,
    status: str = "succeeded",
    waves: Sequence[tuple[int, str, str]] | None = None,
    requested_by: str = "alice@adm01",
    approved_by: str | None = "bob@adm01",
    params: dict[str, Any] | None = None,
    selector: str | None = "role:endpoint",
    status_message: str | None = None,
    pause_reason: str | None = None,
    at: datetime = T0,
    approved_with_yes: bool = False,
    audit_changes: bool = True,
) -> str:
    """One playbook run written into the store; its id."""
    numbers = sorted({target.wave for target in targets})
    waves = waves or [(n, "canary" if n == 1 else "wave", "completed") for n in numbers]
    finished = status in {"succeeded", "failed", "cancelled"}
    with store.transaction() as session:
        run = Run(
            kind="playbook",
            playbook_id=playbook,
            status=status,
            selector=selector,
            parameters={
                "params": params if params is not None else {"sync": False},
                "sweep_id": "5da4d8bb-742d-4505-b4d9-dca57b625a5c",
                "concurrency": 32,
                "deadline_s": 60.0,
                "verify_timeout_s": None,
                "approved_with_yes": approved_with_yes,
            },
            requested_by=requested_by,
            executor="local",
            created_at=at,
            started_at=None if status in {"awaiting_approval", "pending"} else at + timedelta(seconds=5),
            finished_at=at + timedelta(minutes=3) if finished else None,
            options=OPTIONS,
            approved_by=approved_by,
            approved_at=at + timedelta(seconds=2) if approved_by else None,
            pause_reason=pause_reason,
            status_message=status_message or (f"{len(targets)} targets" if finished else None),
            cancel_requested=False,
        )
        session.add(run)
        session.flush()
        run_id = run.id
        append_audit(
            session,
            requested_by,
            "run.create",
            run_id,
            {"playbook": playbook, "status": "pending", "targets": len(targets), "waves": len(waves)},
        )
        if approved_by:
            append_audit(
                session, approved_by, "run.approve", run_id, {"from": "awaiting_approval", "to": "pending"}
            )
        if waves:
            session.execute(
                insert(RunWave),
                [
                    {
                        "run_id": run_id,
                        "number": n,
                        "kind": kind,
                        "status": state,
                        "started_at": at,
                        "finished_at": at,
                    }
                    for n, kind, state in waves
                ],
            )
        if targets:
            session.execute(
                insert(RunTarget),
                [
                    {
                        "run_id": run_id,
                        "wave": t.wave,
                        "target": t.name,
                        "role": t.role,
                        "state": t.state,
                        "attempts": t.attempts,
                        "message": t.message,
                        "error_kind": t.error_kind,
                        "detail": t.detail,
                        "planned": t.planned,
                        "started_at": at if t.attempts else None,
                        "finished_at": at + timedelta(minutes=1),
                    }
                    for t in targets
                ],
            )
        journal = [_journal_row(run_id, t, entry) for t in targets for entry in t.journal]
        if journal:
            session.execute(insert(JournalEntry), journal)
        for target in targets if audit_changes else ():
            for entry in target.journal:
                if entry["state"] not in {"applied", "rolled_back"}:
                    continue
                changes = entry.get("changes") or [
                    change
                    for step in target.detail.get("steps", [])
                    if step.get("step") == entry["step"]
                    for change in step.get("changes", [])
                ]
                base = {
                    "run_id": run_id,
                    "playbook": playbook,
                    "step": entry["step"],
                    "action": entry["action"],
                }
                append_audit(
                    session,
                    requested_by,
                    "action.apply",
                    target.name,
                    {**base, "before": entry.get("before"), "after": entry.get("after"), "changes": changes},
                )
                if entry["state"] == "rolled_back":
                    append_audit(
                        session,
                        requested_by,
                        "action.rollback",
                        target.name,
                        {**base, "before": entry.get("after"), "after": entry.get("before")},
                    )
        if finished:
            append_audit(
                session,
                requested_by,
                "run.finish",
                run_id,
                {"from": "running", "to": status, "message": run.status_message},
            )
    return run_id


def report_of(store: Store, run_id: str, *, playbook: bool = True) -> RunReport:
    from orchestrator.config import Settings  # noqa: PLC0415
    from orchestrator.playbook import load_playbooks  # noqa: PLC0415

    info = playbook_info(load_playbooks(Settings()).get(PLAYBOOK)) if playbook else None
    with store.transaction() as session:
        data = load_run_data(
            session, report_run(session, run_id), playbook=info, generated_at=datetime(2026, 3, 2, tzinfo=UTC)
        )
    return build_run_report(data)


def csv_rows(report: RunReport) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(run_csv(report)), newline="")))


def validated(report: RunReport) -> dict[str, Any]:
    document = dict(run_json_document(report))
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    return document


def documented_columns() -> list[str]:
    """The column names of the table under "### Change columns" in docs/reports.md, in order."""
    text = (ROOT / "docs" / "reports.md").read_text()
    section = text.split("### Change columns", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


# --- the model ----------------------------------------------------------------------------------


@pytest.fixture
def mixed(sqlite_store: Store) -> str:
    """A run with a canary and two waves: fixed, unchanged, failed, rolled back, skipped, cancelled."""
    return store_run(
        sqlite_store,
        [
            fixed("ep-0001"),
            fixed("ep-0002", 2),
            unchanged("ep-0003", 2),
            rolled_back("ep-0004", 2),
            failed("ep-0005", 3),
            not_run(
                "ep-0006",
                "skipped",
                "host ep-0006 is locked by run 7f1e (adm02:99, until 02:10)",
                "locked",
                3,
            ),
            not_run("ep-0007", "cancelled", "not started: failure budget exceeded", wave=3),
        ],
        status="failed",
        waves=[(1, "canary", "completed"), (2, "wave", "completed"), (3, "wave", "failed")],
        status_message="failure budget exceeded: 2 of 7 targets failed (max 0)",
    )


def test_the_run_its_waves_and_targets(sqlite_store: Store, mixed: str) -> None:
    report = report_of(sqlite_store, mixed)
    run = report.run
    assert (run.playbook_id, run.status, run.selector) == (PLAYBOOK, "failed", "role:endpoint")
    assert run.status_message == "failure budget exceeded: 2 of 7 targets failed (max 0)"
    assert (run.approval, run.approved_by, run.requested_by) == (
        Approval.APPROVED,
        "bob@adm01",
        "alice@adm01",
    )
    assert (run.canary, run.wave_size, run.max_fail, run.window_name) == (1, 25, "5%", "nightly")
    assert dict(run.params) == {"sync": False}
    assert run.elapsed_s == 175.0
    assert report.playbook is not None
    assert report.playbook.risk == "user-disruption"
    assert [(w.number, w.kind, w.total) for w in report.waves] == [
        (1, "canary", 1),
        (2, "wave", 3),
        (3, "wave", 3),
    ]
    assert {state: n for state, n in report.counts.items() if n} == {
        "succeeded": 2,
        "unchanged": 1,
        "rolled_back": 1,
        "failed": 1,
        "skipped": 1,
        "cancelled": 1,
    }
    assert report.failures == 2
    assert report.changes_applied == 2  # the rolled-back change is not kept
    assert report.rolled_back_steps == 1
    assert [t.name for t in report.attention] == ["ep-0004", "ep-0005", "ep-0006"]

    targets = {t.name: t for t in report.targets}
    first = targets["ep-0001"]
    assert first.verification is Verification.PASSED
    assert first.verified == ("EP-ROUTE-01",)
    (step, skipped) = first.steps
    assert (step.step, step.action, step.state) == ("local-routes", "endpoint.fix-vpn-routes", "applied")
    assert [(c.field, c.before, c.after) for c in step.changes] == [(ROUTES, tuple(BAD), tuple(GOOD))]
    assert (skipped.state, skipped.note, skipped.action) == (
        "skipped",
        "condition 'when' is false",
        "intune.sync-device",
    )

    restored = targets["ep-0004"]
    assert restored.verification is Verification.FAILED
    assert restored.remaining == ("EP-ROUTE-01 route:172.21.8.0/21",)
    assert restored.rolled_back == ("local-routes",)
    (step,) = restored.steps
    assert step.rolled_back
    assert step.state == "rolled_back"
    assert dict(step.restored or {}) == {"routes": tuple(BAD)}

    broken = targets["ep-0005"]
    assert broken.verification is Verification.NOT_RUN
    assert (broken.steps[0].error, broken.steps[0].error_kind) == ("access is denied", "script_failed")
    assert targets["ep-0006"].steps == ()
    assert targets["ep-0006"].error_kind == "locked"

    # the audit trail: the entries naming this run, in seq order, every hash as the chain holds it
    actions = [line.action for line in report.audit]
    assert actions == ["run.create", "run.approve", *["action.apply"] * 3, "action.rollback", "run.finish"]
    assert [line.seq for line in report.audit] == sorted(line.seq for line in report.audit)
    assert all(line.hash_ok and re.fullmatch(r"[0-9a-f]{64}", line.hash) for line in report.audit)
    assert report.audit_head is not None
    assert report.audit_head.seq == report.audit[-1].seq
    assert "ep-0004: step local-routes (endpoint.fix-vpn-routes) rolled back" in report.audit[5].summary


def test_export_rows_one_per_change(sqlite_store: Store, mixed: str) -> None:
    report = report_of(sqlite_store, mixed)
    rows = csv_rows(report)
    assert [(r["target"], r["step"], r["step_state"], r["field"]) for r in rows] == [
        ("ep-0001", "local-routes", "applied", ROUTES),
        ("ep-0001", "sync", "skipped", ""),
        ("ep-0002", "local-routes", "applied", ROUTES),
        ("ep-0002", "sync", "skipped", ""),
        ("ep-0003", "local-routes", "unchanged", ""),
        ("ep-0004", "local-routes", "rolled_back", ROUTES),
        ("ep-0005", "local-routes", "failed", ""),
        ("ep-0006", "", "", ""),
        ("ep-0007", "", "", ""),
    ]
    by_target: dict[str, dict[str, str]] = {}
    for row in rows:
        by_target.setdefault(row["target"], row)  # the first row of each target
    assert (by_target["ep-0001"]["before"], by_target["ep-0001"]["after"]) == (
        '["172.21.12.0/21"]',
        '["172.21.8.0/21"]',
    )
    assert (by_target["ep-0004"]["rolled_back"], by_target["ep-0004"]["verified"]) == ("true", "false")
    assert (by_target["ep-0001"]["rolled_back"], by_target["ep-0001"]["verified"]) == ("false", "true")
    assert by_target["ep-0005"]["verified"] == ""
    assert (by_target["ep-0005"]["error_kind"], by_target["ep-0005"]["message"]) == (
        "script_failed",
        "access is denied",
    )
    assert by_target["ep-0006"]["message"].startswith("host ep-0006 is locked by run")
    assert {r["schema_version"] for r in rows} == {"1"}
    assert {r["approved_by"] for r in rows} == {"bob@adm01"}
    assert by_target["ep-0007"]["wave_kind"] == "wave"

    document = validated(report)
    assert len(document["changes"]) == len(rows)
    assert document["changes"][0]["before"] == BAD  # JSON keeps the value's type
    assert document["targets"][3]["restored"] == {"local-routes": {"routes": BAD}}
    assert document["run"]["counts"]["rolled_back"] == 1
    assert document["plan"] == {"source": "as_applied", "targets": 3, "changes": 3, "refused": []}
    assert [entry["action"] for entry in document["audit"]][:2] == ["run.create", "run.approve"]
    assert document["audit_head"]["seq"] == document["audit"][-1]["seq"]


def test_the_csv_header_is_the_documented_one(sqlite_store: Store, mixed: str) -> None:
    header = next(csv.reader(io.StringIO("".join(run_csv(report_of(sqlite_store, mixed))))))
    assert header == list(RUN_CSV_COLUMNS) == documented_columns()


def test_a_saved_plan_is_what_was_planned_and_drifted_targets_are_refused(sqlite_store: Store) -> None:
    def plan(name: str) -> dict[str, Any]:
        change = {"field": ROUTES, "before": BAD, "after": GOOD}
        return {
            "target": name,
            "role": "endpoint",
            "changes": 1,
            "steps": [
                {
                    "step": "local-routes",
                    "skipped": None,
                    "plan": {"action": "endpoint.fix-vpn-routes", "target": name, "changes": [change]},
                    "digest": "5b0c" * 16,
                },
                {"step": "sync", "skipped": "condition 'when' is false", "plan": None, "digest": None},
            ],
        }

    applied, drifted = (
        fixed("ep-0008"),
        not_run(
            "ep-0009", "refused", "step local-routes: the target changed since the plan was made", "drifted"
        ),
    )
    applied.planned, drifted.planned = plan("ep-0008"), plan("ep-0009")
    report = report_of(sqlite_store, store_run(sqlite_store, [applied, drifted], selector=None))
    assert report.plan.source is PlanSource.SAVED_PLAN
    assert (report.plan.targets, report.plan.changes, report.plan.refused) == (2, 2, ("ep-0009",))
    (distinct,) = report.plan.distinct
    assert (distinct.step, distinct.field, distinct.targets) == (
        "local-routes",
        ROUTES,
        ("ep-0008", "ep-0009"),
    )
    assert [(s.target, s.step, s.digest) for s in report.plan.steps][1] == ("ep-0008", "sync", None)
    assert [t.planned for t in report.targets] == [True, True]
    page = run_html(report)
    assert 'id="plan-refused">ep-0009<' in page
    assert "saved plan" in page
    assert validated(report)["planned"][0]["digest"] == "5b0c" * 16


def test_steps_a_resumed_or_interrupted_attempt_left(sqlite_store: Store) -> None:
    """A step done by an earlier attempt has its changes from the audit log; a step an attempt
    claimed and never finished shows as interrupted, from the journal alone."""
    resumed = fixed("ep-0010")
    resumed.detail["steps"][0] = {"step": "local-routes", "state": "applied", "resumed": True}
    interrupted = Target(
        "ep-0011",
        state="cancelled",
        message="interrupted: the attempt stopped before it finished; the host may be partly changed",
        error_kind="interrupted",
        journal=[{"step": "local-routes", "action": "endpoint.fix-vpn-routes", "state": "claimed"}],
    )
    report = report_of(sqlite_store, store_run(sqlite_store, [resumed, interrupted], status="cancelled"))
    first, second = report.targets
    assert first.steps[0].resumed
    assert [(c.field, c.after) for c in first.steps[0].changes] == [(ROUTES, tuple(GOOD))]
    assert [(s.step, s.state) for s in second.steps] == [("local-routes", "interrupted")]
    assert second.attention
    assert "done by an earlier attempt" in run_html(report)


def test_a_run_awaiting_approval_and_an_empty_run(sqlite_store: Store, tmp_path: Path) -> None:
    waiting = store_run(
        sqlite_store,
        [not_run("rras-05", "pending", "", wave=1)],
        status="awaiting_approval",
        approved_by=None,
        playbook="rras-root-thumbprint",
    )
    report = report_of(sqlite_store, waiting, playbook=False)
    assert report.run.approval is Approval.AWAITING
    assert report.plan.source is PlanSource.NONE
    page = run_html(report)
    assert f"fleetfix runs approve {waiting}" in page
    assert "is not in the catalogue any more" in page
    validated(report)

    empty = store_run(sqlite_store, [], status="succeeded", approved_by=None, approved_with_yes=True)
    report = report_of(sqlite_store, empty)
    assert (report.total, report.waves, report.plan.source) == (0, (), PlanSource.NONE)
    assert report.run.approval is Approval.SELF_APPROVED
    write_atomic(tmp_path / "empty.html", render_run_html(report))
    page = (tmp_path / "empty.html").read_text()
    assert 'id="targets-total">0<' in page
    assert "The run has no waves." in page
    assert csv_rows(report) == []
    document = validated(report)
    assert (document["targets"], document["changes"], document["waves"]) == ([], [], [])


def test_only_the_entries_that_name_the_run_and_edits_show(sqlite_store: Store) -> None:
    first = store_run(sqlite_store, [fixed("ep-0001")])
    second = store_run(sqlite_store, [fixed("ep-0002")], at=T0 + timedelta(hours=1))
    append_audit(sqlite_store.engine, "carol@adm01", "note.added", "ep-0001", {"text": f"see run {first}"})
    report = report_of(sqlite_store, first)
    assert [line.target for line in report.audit] == [first, first, "ep-0001", first]
    assert second not in json.dumps(validated(report)["audit"])
    assert report.notes == ()

    edited = report.audit[2].seq  # someone with database access rewrites what was applied
    with sqlite_store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER audit_log_append_only_update")
        details = thaw(report.audit[2].details)
        connection.execute(
            update(AuditLogRow).where(AuditLogRow.seq == edited).values(details={**details, "changes": []})
        )
    report = report_of(sqlite_store, first)
    assert [line.hash_ok for line in report.audit] == [True, True, False, True]
    assert report.notes == ("1 audit entry does not match its hash: run `fleetfix audit verify`",)
    assert "(does not match the entry)" in run_html(report)


# --- scale --------------------------------------------------------------------------------------


@contextmanager
def counted_statements(store: Store) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def fleet_run(size: int) -> list[Target]:
    """``size`` endpoints in a canary and waves of 500: mostly fixed, some unchanged, rolled back,
    failed and skipped."""
    targets = []
    for index in range(size):
        name, wave = f"ep-{index:05d}", 1 if index == 0 else 2 + (index - 1) // 500
        kind = index % 50
        if kind == 7:
            targets.append(rolled_back(name, wave))
        elif kind == 11:
            targets.append(failed(name, wave))
        elif kind == 13:
            targets.append(not_run(name, "skipped", f"host {name} is locked by run 7f1e", "locked", wave))
        elif kind % 5 == 0:
            targets.append(unchanged(name, wave))
        else:
            targets.append(fixed(name, wave, before=[f"172.{index % 250}.12.0/21"]))
    return targets


def test_the_number_of_queries_does_not_grow_with_the_run(store: Store) -> None:
    counts = []
    for size in (10, 300):
        run_id = store_run(store, fleet_run(size), at=T0 + timedelta(days=size))
        with counted_statements(store) as statements, store.transaction() as session:
            data = load_run_data(session, report_run(session, run_id), playbook=None, generated_at=T0)
        counts.append(len(statements))
        report = build_run_report(data)
        assert report.total == size
        assert report.audit[0].action == "run.create"
        assert report.audit[-1].action == "run.finish"
        assert all(line.hash_ok for line in report.audit)  # as stored, on either backend
    assert counts[0] == counts[1], counts
    assert counts[0] <= 8


def test_ten_thousand_targets(sqlite_store: Store, tmp_path: Path) -> None:
    targets = fleet_run(10_000)
    run_id = store_run(sqlite_store, targets, status="failed")
    report = report_of(sqlite_store, run_id)
    assert report.total == 10_000
    assert len(report.waves) == 1 + 20
    assert report.counts["rolled_back"] == report.counts["failed"] == report.counts["skipped"] == 200
    assert report.failures == 400
    applied = sum(1 for t in targets for entry in t.journal if entry["state"] in {"applied", "rolled_back"})
    assert len(report.audit) == 2 + applied + report.counts["rolled_back"] + 1  # create, approve ... finish
    assert report.changes_applied == applied - report.counts["rolled_back"]
    write_atomic(tmp_path / "run.html", render_run_html(report))
    write_atomic(tmp_path / "run.csv", run_csv(report))
    write_atomic(tmp_path / "run.json", run_json(report))
    page = (tmp_path / "run.html").read_text()
    assert page.count('<tr class="target"') == 10_000
    assert 'id="targets-total">10000<' in page
    rows = list(csv.DictReader(io.StringIO((tmp_path / "run.csv").read_text(), newline="")))
    fixes = sum(1 for t in targets if t.state == "succeeded")
    assert len(rows) == 2 * fixes + sum(1 for t in targets if t.state != "succeeded")
    document = json.loads((tmp_path / "run.json").read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert len(document["targets"]) == 10_000
    assert len(document["changes"]) == len(rows)


# --- HTML ---------------------------------------------------------------------------------------

HOSTILE = "<script>alert('x')</script>"


class _Scripts(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts = 0
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        self.handlers += [name for name, _ in attrs if name.startswith("on")]


def hostile_run(store: Store) -> str:
    target = fixed(
        f"ep-1{HOSTILE}", before=f"=cmd|' /C calc'!A0 {HOSTILE}", after='<img src=x onerror="alert(1)">'
    )
    target.detail["steps"][1] = {"step": "sync", "state": "failed", "error": HOSTILE, "kind": "script_failed"}
    target.message = f"</td></tr></table>{HOSTILE}"
    return store_run(
        store,
        [target, failed(f"<b>ep-2</b>{HOSTILE}")],
        params={"note": HOSTILE, "sync": True},
        selector=f"name:{HOSTILE}",
        status_message=HOSTILE,
        requested_by=f"mallory{HOSTILE}@adm01",
    )


def test_hostile_values_are_text_in_the_page(sqlite_store: Store) -> None:
    page = run_html(report_of(sqlite_store, hostile_run(sqlite_store)))
    parser = _Scripts()
    parser.feed(page)
    assert parser.scripts == 1  # the filter script, nothing from the data
    assert parser.handlers == []
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "<b>ep-2</b>" not in page


def test_exports_guard_against_formulas(sqlite_store: Store) -> None:
    report = report_of(sqlite_store, hostile_run(sqlite_store))
    rows = csv_rows(report)
    assert rows[0]["before"] == f"'=cmd|' /C calc'!A0 {HOSTILE}"
    assert rows[0]["after"] == '<img src=x onerror="alert(1)">'
    assert validated(report)["changes"][0]["before"] == f"=cmd|' /C calc'!A0 {HOSTILE}"  # JSON keeps it


# --- metrics ------------------------------------------------------------------------------------


def test_targets_by_state_of_each_playbooks_last_run(store: Store) -> None:
    store_run(store, [failed("ep-1"), fixed("ep-2")], status="failed", at=T0)
    store_run(store, [fixed("ep-1"), fixed("ep-2"), unchanged("ep-3")], at=T0 + timedelta(hours=1))
    store_run(store, [rolled_back("rras-05")], playbook="rras-root-thumbprint", status="failed", at=T0)
    with store.transaction() as session:
        counts = last_run_targets(session)
    assert counts == {
        (PLAYBOOK, "succeeded"): 2,
        (PLAYBOOK, "unchanged"): 1,
        ("rras-root-thumbprint", "rolled_back"): 1,
    }
    text = metrics_text(
        MetricsData(
            runs={("playbook", "failed"): 2, ("playbook", "succeeded"): 1}, sweep=None, run_targets=counts
        )
    )
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("fleetfix_run_targets", (("playbook", PLAYBOOK), ("state", "succeeded")))] == 2
    assert samples[("fleetfix_run_targets", (("playbook", PLAYBOOK), ("state", "failed")))] == 0
    assert samples[("fleetfix_runs_total", (("kind", "playbook"), ("status", "failed")))] == 2
    assert sum(1 for name, _ in samples if name == "fleetfix_run_targets") == 2 * 10  # every state


# --- the command --------------------------------------------------------------------------------


@pytest.fixture
def site(cli: Cli, tmp_path: Path) -> tuple[Cli, str, str]:
    """A configured data directory with a sweep and a playbook run in its store."""
    (tmp_path / "fleetfix.toml").write_text('data_dir = "data"\n', encoding="utf-8")
    from orchestrator.store import create_store_engine, upgrade  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'data' / 'fleetfix.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    store = Store.from_engine(engine)
    sweep_id = record_sweep(store, T0, [ok("ep-0001")], [])
    run_id = store_run(store, [fixed("ep-0001"), rolled_back("ep-0002", 2)], status="failed")
    engine.dispose()
    return cli, run_id, sweep_id


def test_report_run_writes_every_format(site: tuple[Cli, str, str], tmp_path: Path) -> None:
    cli, run_id, _ = site
    for fmt in ("html", "csv", "json"):
        result = cli.run("report", "run", run_id, "-f", fmt, "-o", f"run.{fmt}", "--output", "json")
        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document == {
            "run_id": run_id,
            "playbook": PLAYBOOK,
            "status": "failed",
            "format": fmt,
            "path": str((tmp_path / f"run.{fmt}").resolve()),
            "bytes": (tmp_path / f"run.{fmt}").stat().st_size,
            "schema_version": 1,
            "targets": 2,
            "failures": 1,
            "changes": 1,
            "audit_entries": 6,
        }
    jsonschema.validate(
        json.loads((tmp_path / "run.json").read_text()), SCHEMA, cls=jsonschema.Draft202012Validator
    )
    assert '<tr class="target" data-state="rolled_back"' in (tmp_path / "run.html").read_text()
    piped = cli.run("report", "run", run_id, "--format", "csv", "-o", "-")
    assert piped.returncode == 0
    assert piped.stdout.splitlines()[0] == ",".join(RUN_CSV_COLUMNS)
    table = cli.run("report", "run", run_id, "-o", "run.html")
    assert table.returncode == 0
    assert f"wrote the html report of run {run_id} ({PLAYBOOK}, failed)" in table.stderr


def test_report_run_refuses_what_is_not_a_playbook_run(site: tuple[Cli, str, str], tmp_path: Path) -> None:
    cli, _, sweep_id = site
    for run_id, says in (("0b1c" * 9, "there is no run"), (sweep_id, "is a sweep, not a playbook run")):
        result = cli.run("report", "run", run_id, "-o", "run.html", "--output", "json")
        assert result.returncode == 2, result.stderr
        error = json.loads(result.stdout)["error"]
        assert (error["kind"], error["field"]) == ("input", "ID")
        assert says in error["message"]
    assert not (tmp_path / "run.html").exists()
    missing = cli.run("report", "run", sweep_id, "-o", "nowhere/run.html", "--output", "json")
    assert missing.returncode == 2
    assert json.loads(missing.stdout)["error"]["field"] == "-o"


def test_metrics_carry_the_runs(site: tuple[Cli, str, str], tmp_path: Path) -> None:
    cli, _, _ = site
    result = cli.run("report", "metrics", "-o", "fleetfix.prom")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "fleetfix.prom").read_text()
    assert f'fleetfix_run_targets{{playbook="{PLAYBOOK}",state="rolled_back"}} 1' in text
    assert 'fleetfix_runs_total{kind="playbook",status="failed"} 1' in text
