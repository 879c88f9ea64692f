"""CSV and JSON exports of a playbook-run report, schema version 1 (docs/reports.md, "Run reports";
docs/schemas/run-report.v1.json).  Pure: each export is an iterator of text chunks that the caller
writes (:mod:`orchestrator.reports.output`), so 10,000 targets never sit in one string.

One CSV row per change of a step on a target (:meth:`~.runmodel.RunReport.rows`); the JSON
document carries the same rows as ``changes`` plus the run, the plan, the waves, the targets and
the audit trail.  Compatibility as for the sweep exports: columns and keys are only ever added
within a schema version.  The CSV injection guard is the sweep export's
(:func:`orchestrator.reports.export.neutralise`): before and after values quote what hosts report.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from orchestrator.checks.model import FrozenJson, thaw
from orchestrator.reports.export import neutralise
from orchestrator.reports.runmodel import (
    AuditLine,
    Change,
    ExportRow,
    PlannedStep,
    RunReport,
    TargetReport,
    WaveReport,
)
from orchestrator.sweep.report import iso

RUN_CSV_COLUMNS: tuple[str, ...] = (
    "schema_version",
    "run_id",
    "playbook",
    "run_status",
    "wave",
    "wave_kind",
    "target",
    "role",
    "target_state",
    "attempts",
    "planned",
    "step",
    "action",
    "step_state",
    "field",
    "before",
    "after",
    "verified",
    "rolled_back",
    "error_kind",
    "message",
    "requested_by",
    "approved_by",
    "started_at",
    "finished_at",
)
"""The CSV header, in order (docs/reports.md, "Change columns")."""

_CSV_ROWS_PER_CHUNK = 500


def _compact(value: Any, *, sort: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=sort, separators=(",", ":"))


def value_text(value: FrozenJson) -> str:
    """A before or after value in a CSV cell: text as it is, anything else as compact JSON, and
    nothing for null."""
    if value is None:
        return ""
    plain = thaw(value)
    return plain if isinstance(plain, str) else _compact(plain, sort=True)


def row_document(row: ExportRow) -> dict[str, Any]:
    """One change in the JSON export (the CSV row carries the same fields)."""
    return {
        "run_id": row.run_id,
        "playbook": row.playbook,
        "run_status": row.run_status,
        "wave": row.wave,
        "wave_kind": row.wave_kind,
        "target": row.target,
        "role": row.role,
        "target_state": row.target_state,
        "attempts": row.attempts,
        "planned": row.planned,
        "step": row.step,
        "action": row.action,
        "step_state": row.step_state,
        "field": row.field,
        "before": thaw(row.before),
        "after": thaw(row.after),
        "verified": row.verified,
        "rolled_back": row.rolled_back,
        "error_kind": row.error_kind,
        "message": row.message,
        "requested_by": row.requested_by,
        "approved_by": row.approved_by,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
    }


def _cell(column: str, value: Any) -> str:
    if column in {"before", "after"}:
        return value_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def run_csv_row(row: ExportRow, schema_version: int) -> list[str]:
    document = row_document(row)
    cells = [str(schema_version)]
    cells.extend(neutralise(_cell(column, document[column])) for column in RUN_CSV_COLUMNS[1:])
    return cells


def run_csv(report: RunReport) -> Iterator[str]:
    """The CSV export: the header, then one row per change (RFC 4180, CRLF)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(RUN_CSV_COLUMNS)
    for index, row in enumerate(report.rows(), start=1):
        writer.writerow(run_csv_row(row, report.schema_version))
        if index % _CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- JSON ---------------------------------------------------------------------------------------


def _change(change: Change) -> dict[str, Any]:
    return {"field": change.field, "before": thaw(change.before), "after": thaw(change.after)}


def run_header_document(report: RunReport) -> dict[str, Any]:
    run = report.run
    return {
        "id": run.id,
        "playbook": run.playbook_id,
        "status": run.status,
        "status_message": run.status_message,
        "pause_reason": run.pause_reason,
        "selector": run.selector,
        "params": thaw(run.params),
        "sweep_id": run.sweep_id,
        "rollout": {
            "canary": run.canary,
            "wave_size": run.wave_size,
            "serial": run.serial,
            "max_fail": run.max_fail,
        },
        "window": run.window,
        "window_name": run.window_name,
        "concurrency": run.concurrency,
        "verify_timeout_s": run.verify_timeout_s,
        "requested_by": run.requested_by,
        "approval": run.approval.value,
        "approved_by": run.approved_by,
        "approved_at": iso(run.approved_at),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "elapsed_s": run.elapsed_s,
        "cancel_requested": run.cancel_requested,
        "executor": run.executor,
        "counts": dict(report.counts),
        "targets": report.total,
        "failures": report.failures,
        "changes_applied": report.changes_applied,
        "rolled_back_steps": report.rolled_back_steps,
        "notes": list(report.notes),
    }


def _playbook_document(report: RunReport) -> dict[str, Any] | None:
    playbook = report.playbook
    if playbook is None:
        return None
    return {
        "id": playbook.id,
        "description": playbook.description,
        "risk": playbook.risk,
        "target": playbook.target,
        "fixes": list(playbook.fixes),
        "verify_checks": list(playbook.verify_checks),
        "steps": [{"id": step.id, "action": step.action} for step in playbook.steps],
        "tenant_steps": [{"id": step.id, "action": step.action} for step in playbook.tenant_steps],
        "rollback_on_verify_failure": playbook.rollback_on_verify_failure,
        "source": playbook.source,
    }


def _planned_step(step: PlannedStep) -> dict[str, Any]:
    return {
        "target": step.target,
        "role": step.role,
        "step": step.step,
        "action": step.action,
        "skipped": step.skipped,
        "changes": [_change(change) for change in step.changes],
        "digest": step.digest,
    }


def _wave_document(wave: WaveReport) -> dict[str, Any]:
    return {
        "number": wave.number,
        "kind": wave.kind,
        "status": wave.status,
        "started_at": iso(wave.started_at),
        "finished_at": iso(wave.finished_at),
        "targets": wave.total,
        "counts": dict(wave.counts),
    }


def target_document(target: TargetReport) -> dict[str, Any]:
    return {
        "target": target.name,
        "role": target.role,
        "wave": target.wave,
        "state": target.state,
        "attempts": target.attempts,
        "message": target.message,
        "error_kind": target.error_kind,
        "planned": target.planned,
        "verification": target.verification.value,
        "verified": list(target.verified),
        "remaining": list(target.remaining),
        "rolled_back": list(target.rolled_back),
        "restored": {step.step: thaw(step.restored) for step in target.steps if step.restored is not None},
        "rollback_errors": list(target.rollback_errors),
        "started_at": iso(target.started_at),
        "finished_at": iso(target.finished_at),
    }


def audit_document(line: AuditLine) -> dict[str, Any]:
    return {
        "seq": line.seq,
        "ts": iso(line.ts),
        "actor": line.actor,
        "action": line.action,
        "target": line.target,
        "details": thaw(line.details),
        "prev_hash": line.prev_hash,
        "hash": line.hash,
        "hash_ok": line.hash_ok,
    }


def _array(name: str, items: Iterable[Any]) -> Iterator[str]:
    """``"name": [`` then one item per line, then ``]``."""
    yield f',\n  "{name}": ['
    for index, item in enumerate(items):
        yield ("\n    " if index == 0 else ",\n    ") + _compact(item)
    yield "\n  ]"


def run_json(report: RunReport) -> Iterator[str]:
    """The JSON export (one document; one change, target and audit entry per line)."""
    plan = report.plan
    yield '{\n  "schema_version": ' + str(report.schema_version)
    yield ',\n  "generated_at": ' + _compact(iso(report.generated_at))
    yield ',\n  "run": ' + _compact(run_header_document(report))
    yield ',\n  "playbook": ' + _compact(_playbook_document(report))
    yield ',\n  "plan": ' + _compact(
        {
            "source": plan.source.value,
            "targets": plan.targets,
            "changes": plan.changes,
            "refused": list(plan.refused),
        }
    )
    yield from _array("planned", (_planned_step(step) for step in plan.steps))
    yield from _array("waves", (_wave_document(wave) for wave in report.waves))
    yield from _array("targets", (target_document(target) for target in report.targets))
    yield from _array("changes", (row_document(row) for row in report.rows()))
    yield from _array("audit", (audit_document(line) for line in report.audit))
    head = report.audit_head
    yield ',\n  "audit_head": ' + _compact(None if head is None else {"seq": head.seq, "hash": head.hash})
    yield "\n}\n"


def run_json_document(report: RunReport) -> Mapping[str, Any]:
    """The JSON export as data (tests, small reports); the same text :func:`run_json` streams."""
    parsed: Mapping[str, Any] = json.loads("".join(run_json(report)))
    return parsed


__all__ = [
    "RUN_CSV_COLUMNS",
    "audit_document",
    "row_document",
    "run_csv",
    "run_csv_row",
    "run_header_document",
    "run_json",
    "run_json_document",
    "target_document",
    "value_text",
]
