"""CSV and JSON exports against their documented schema (docs/reports.md, docs/schemas)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.reports.export import CSV_COLUMNS, neutralise, sweep_csv, sweep_json, sweep_json_document
from orchestrator.reports.model import SweepReport, build_sweep_report
from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep
from orchestrator.store import Store
from tests.reports.support import T0, down, finding, ok, record_sweep

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "sweep-report.v1.json").read_text())


def documented_columns() -> list[str]:
    """The column names of the table under "### Finding columns" in docs/reports.md, in order."""
    text = (ROOT / "docs" / "reports.md").read_text()
    section = text.split("### Finding columns", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)


def report_of(store: Store, *, sites: dict[str, str] | None = None) -> SweepReport:
    with store.transaction() as session:
        data = load_sweep_data(
            session,
            report_sweep(session, None),
            trend=10,
            sites=sites or {},
            checks=catalogue_checks(),
            generated_at=datetime(2026, 3, 2, tzinfo=UTC),
        )
    return build_sweep_report(data)


@pytest.fixture
def report(sqlite_store: Store) -> SweepReport:
    hosts = [ok("EP-1"), ok("EP-2"), ok("EP-3"), down("EP-4")]
    gone = finding("EP-3", "EP-OS-01", "os", severity="low")
    unseen = finding("EP-4", "EP-CERT-01")
    kept = finding("EP-1", "EP-CERT-01", error_codes=("13806", 2148081683))
    record_sweep(sqlite_store, T0 - timedelta(days=1), [*hosts[:3], ok("EP-4")], [gone, unseen, kept])
    hostile = finding(
        "EP-2",
        "EP-ROUTE-01",
        "+cmd|' /C calc'!A0",
        severity="medium",
        message='=HYPERLINK("http://evil.example","click")',
        title="@SUM(1+1)",
        advice="-2+3",
        playbook=None,
        reason="\tTAB",
        evidence={"reason": "=1+1", "route": "10.0.0.1/8", "note": 'line\nbreak, "quoted"'},
    )
    fleet_wide = finding("fleet", "INT-PROF-01", "profile:1", playbook=None, advice="fix it in Intune")
    record_sweep(sqlite_store, T0, hosts, [kept, hostile, fleet_wide])
    return report_of(sqlite_store, sites={"ep-1": "ams"})


def rows(report: SweepReport) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(sweep_csv(report)), newline="")))


def test_the_csv_header_is_the_documented_one(report: SweepReport) -> None:
    header = next(csv.reader(io.StringIO("".join(sweep_csv(report)))))
    assert header == list(CSV_COLUMNS) == documented_columns()


def test_csv_rows(report: SweepReport) -> None:
    table = rows(report)
    assert len(table) == 3
    first = table[0]
    assert first["schema_version"] == "1"
    assert first["sweep_run_id"] == report.run.id
    assert (first["host"], first["role"], first["site"], first["status"]) == (
        "EP-1",
        "endpoint",
        "ams",
        "open",
    )
    assert first["error_codes"] == "13806;2148081683"
    assert first["first_seen"] == "2026-02-28T02:00:00Z"
    assert first["observed_at"] == "2026-03-01T02:00:00Z"
    assert json.loads(first["evidence"]) == {"reason": "missing"}
    fleet = next(row for row in table if row["host"] == "fleet")
    assert (fleet["role"], fleet["site"], fleet["status"], fleet["playbook"]) == ("", "", "new", "")


def test_csv_cells_never_start_a_formula(report: SweepReport) -> None:
    hostile = next(row for row in rows(report) if row["check_id"] == "EP-ROUTE-01")
    assert hostile["message"] == '\'=HYPERLINK("http://evil.example","click")'
    assert hostile["subject"] == "'+cmd|' /C calc'!A0"
    assert hostile["title"] == "'@SUM(1+1)"
    assert hostile["advice"] == "'-2+3"
    assert hostile["reason"] == "'\tTAB"
    evidence = json.loads(hostile["evidence"])  # JSON text starts with "{": safe as it is
    assert evidence == {"note": 'line\nbreak, "quoted"', "reason": "=1+1", "route": "10.0.0.1/8"}
    for row in rows(report):
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("=1", "'=1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\r=x", "'\r=x"), ("a=1", "a=1"), ("", "")],
)
def test_neutralise(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_the_json_export_validates_against_its_schema(report: SweepReport) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = sweep_json_document(report)
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == 1
    assert [f["status"] for f in document["findings"]] == ["open", "new", "new"]
    assert [f["check_id"] for f in document["resolved"]] == ["EP-OS-01"]
    assert [(f["host"], f["status"]) for f in document["unverified"]] == [("EP-4", "unverified")]
    assert document["resolved"][0]["sweep_run_id"] == document["run"]["previous_run"]
    assert [h["host"] for h in document["unreachable"]] == ["EP-4"]
    assert document["run"]["findings"]["new"] == 2
    assert document["findings"][0]["error_codes"] == ["13806", "2148081683"]


def test_json_findings_have_the_csv_columns(report: SweepReport) -> None:
    document = sweep_json_document(report)
    for item in document["findings"]:
        assert list(item) == list(CSV_COLUMNS[1:])
    required = SCHEMA["$defs"]["finding"]["required"]
    assert required == list(CSV_COLUMNS[1:])


def test_a_document_that_breaks_the_schema_is_refused(report: SweepReport) -> None:
    document: dict[str, Any] = json.loads("".join(sweep_json(report)))
    document["findings"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)


def test_empty_and_unreachable_fleets_export(sqlite_store: Store) -> None:
    record_sweep(sqlite_store, T0, [], [])
    empty = report_of(sqlite_store)
    jsonschema.validate(sweep_json_document(empty), SCHEMA, cls=jsonschema.Draft202012Validator)
    assert rows(empty) == []
    record_sweep(sqlite_store, T0 + timedelta(days=1), [down("EP-1"), down("EP-2", kind="auth_failed")], [])
    unreachable = sweep_json_document(report_of(sqlite_store))
    jsonschema.validate(unreachable, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert [h["status"] for h in unreachable["unreachable"]] == ["unreachable", "failed"]
    assert unreachable["run"]["hosts"]["compliance_pct"] == 0.0
