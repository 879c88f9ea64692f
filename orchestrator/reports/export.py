"""CSV and JSON exports of a sweep report, schema version 1 (docs/reports.md,
docs/schemas/sweep-report.v1.json).  Pure: each export is an iterator of text chunks that the
caller writes (:mod:`orchestrator.reports.output`), so 10,000 hosts never sit in one string.

Compatibility: columns and keys are only ever added within a schema version; renaming or removing
one, or changing a value's meaning, makes a new ``schema_version``.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) are prefixed with ``'``: evidence and messages quote what hosts report,
and a host can report anything.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from orchestrator.checks.model import thaw
from orchestrator.reports.model import (
    CheckCompliance,
    GroupCompliance,
    HostDetail,
    ReportFinding,
    SweepReport,
    TrendPoint,
)
from orchestrator.sweep.report import iso

CSV_COLUMNS: tuple[str, ...] = (
    "schema_version",
    "sweep_run_id",
    "observed_at",
    "host",
    "role",
    "site",
    "check_id",
    "severity",
    "reason",
    "subject",
    "title",
    "message",
    "error_codes",
    "playbook",
    "advice",
    "status",
    "first_seen",
    "fingerprint",
    "evidence",
)
"""The CSV header, in order (docs/reports.md)."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_CSV_ROWS_PER_CHUNK = 500


def neutralise(cell: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def _compact(value: Any, *, sort: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=sort, separators=(",", ":"))


def finding_document(finding: ReportFinding, run_id: str) -> dict[str, Any]:
    """One finding in the JSON export (the CSV row carries the same fields)."""
    return {
        "sweep_run_id": run_id,
        "observed_at": iso(finding.observed_at),
        "host": finding.host,
        "role": finding.role,
        "site": finding.site,
        "check_id": finding.check_id,
        "severity": finding.severity,
        "reason": finding.reason,
        "subject": finding.subject,
        "title": finding.title,
        "message": finding.message,
        "error_codes": list(finding.error_codes),
        "playbook": finding.playbook,
        "advice": finding.advice,
        "status": finding.status.value,
        "first_seen": iso(finding.first_seen),
        "fingerprint": finding.fingerprint,
        "evidence": thaw(finding.evidence),
    }


def csv_row(finding: ReportFinding, run_id: str, schema_version: int) -> list[str]:
    document = finding_document(finding, run_id)
    cells: list[str] = []
    for column in CSV_COLUMNS:
        if column == "schema_version":
            cells.append(str(schema_version))
            continue
        value = document[column]
        if column == "error_codes":
            text = ";".join(value)
        elif column == "evidence":
            text = _compact(value, sort=True)
        else:
            text = "" if value is None else str(value)
        cells.append(neutralise(text))
    return cells


def sweep_csv(report: SweepReport) -> Iterator[str]:
    """The CSV export: the header, then one row per finding of the sweep (RFC 4180, CRLF)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for index, finding in enumerate(report.findings, start=1):
        writer.writerow(csv_row(finding, report.run.id, report.schema_version))
        if index % _CSV_ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# --- JSON ---------------------------------------------------------------------------------------


def run_document(report: SweepReport) -> dict[str, Any]:
    run, summary, changes = report.run, report.summary, report.changes
    return {
        "id": run.id,
        "status": run.status,
        "selector": run.selector,
        "requested_by": run.requested_by,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "elapsed_s": run.elapsed_s,
        "previous_run": run.previous_run,
        "complete": run.complete,
        "compliant": summary.compliant,
        "tenant": run.tenant,
        "notes": list(run.notes),
        "hosts": {
            **summary.hosts_by_status,
            "compliant": summary.compliant_hosts,
            "with_findings": summary.hosts_with_findings,
            "not_collected": summary.not_collected,
            "compliance_pct": summary.compliance_pct,
        },
        "findings": {
            "total": summary.findings_total,
            "by_severity": dict(summary.findings_by_severity),
            "new": len(changes.new),
            "open": changes.still_open,
            "resolved": len(changes.resolved),
            "unverified": len(changes.unverified),
            "fleet_wide": summary.fleet_wide_findings,
        },
    }


def _check_document(row: CheckCompliance) -> dict[str, Any]:
    return {
        "check_id": row.check_id,
        "title": row.title,
        "severity": row.severity,
        "roles": list(row.roles),
        "findings": row.findings,
        "hosts_affected": row.hosts_affected,
        "hosts_evaluated": row.hosts_evaluated,
        "compliance_pct": row.compliance_pct,
        "playbook": row.playbook,
        "advice": row.advice,
    }


def _group_document(row: GroupCompliance, key: str) -> dict[str, Any]:
    return {
        key: row.key,
        "hosts": row.hosts,
        "compliant": row.compliant,
        "with_findings": row.with_findings,
        "not_collected": row.not_collected,
        "findings": row.findings,
        "compliance_pct": row.compliance_pct,
    }


def _trend_document(point: TrendPoint) -> dict[str, Any]:
    return {
        "run_id": point.run_id,
        "at": iso(point.at),
        "findings_by_severity": dict(point.findings_by_severity),
        "findings_total": point.findings_total,
        "hosts_selected": point.hosts_selected,
        "hosts_failing": point.hosts_failing,
        "compliance_pct": point.compliance_pct,
    }


def _host_document(detail: HostDetail) -> dict[str, Any]:
    return {
        "host": detail.host,
        "role": detail.role,
        "site": detail.site,
        "status": detail.status,
        "error_kind": detail.error_kind,
        "error_message": detail.error_message,
    }


def _array(name: str, items: Iterable[Any], *, last: bool = False) -> Iterator[str]:
    """``"name": [`` then one item per line, then ``]``."""
    yield f',\n  "{name}": ['
    for index, item in enumerate(items):
        yield ("\n    " if index == 0 else ",\n    ") + _compact(item)
    yield "\n  ]" + ("\n}\n" if last else "")


def sweep_json(report: SweepReport) -> Iterator[str]:
    """The JSON export (one document; one finding per line, so it also diffs and greps well)."""
    run_id, previous = report.run.id, report.changes.previous_run or ""
    yield '{\n  "schema_version": ' + str(report.schema_version)
    yield ',\n  "generated_at": ' + _compact(iso(report.generated_at))
    yield ',\n  "run": ' + _compact(run_document(report))
    compliance = {
        "by_check": [_check_document(row) for row in report.by_check],
        "by_role": [_group_document(row, "role") for row in report.by_role],
        "by_site": [_group_document(row, "site") for row in report.by_site],
    }
    yield ',\n  "compliance": ' + _compact(compliance)
    yield from _array("trend", (_trend_document(point) for point in report.trend))
    yield from _array("findings", (finding_document(f, run_id) for f in report.findings))
    yield from _array("resolved", (finding_document(f, previous) for f in report.changes.resolved))
    yield from _array("unverified", (finding_document(f, previous) for f in report.changes.unverified))
    yield from _array("unreachable", (_host_document(d) for d in report.not_collected), last=True)


def sweep_json_document(report: SweepReport) -> Mapping[str, Any]:
    """The JSON export as data (tests, small reports); the same text :func:`sweep_json` streams."""
    parsed: Mapping[str, Any] = json.loads("".join(sweep_json(report)))
    return parsed


__all__ = [
    "CSV_COLUMNS",
    "FORMULA_PREFIXES",
    "csv_row",
    "finding_document",
    "neutralise",
    "run_document",
    "sweep_csv",
    "sweep_json",
    "sweep_json_document",
]
