"""Reports of stored sweeps at the edges: no host, every host unreachable, 10,000 hosts.

The sweeps are written through the store's sweep repository (no lab).  No timing is asserted; the
10,000-host report is rendered in every format in one test, which is what keeps its time in
check (bench/report_render.py measures it).
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from orchestrator.reports.export import sweep_csv, sweep_json
from orchestrator.reports.html import render_sweep_html
from orchestrator.reports.model import SweepReport, build_sweep_report
from orchestrator.reports.output import write_atomic
from orchestrator.reports.source import catalogue_checks, load_sweep_data, report_sweep
from orchestrator.store import Store
from tests.reports.support import T0, down, record_sweep, synthetic_fleet, synthetic_sites

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "sweep-report.v1.json").read_text())


def stored_report(store: Store, sites: dict[str, str] | None = None) -> SweepReport:
    with store.transaction() as session:
        data = load_sweep_data(
            session,
            report_sweep(session, None),
            trend=10,
            sites=sites or {},
            checks=catalogue_checks(),
            generated_at=datetime.now(UTC),
        )
    return build_sweep_report(data)


def render_all(report: SweepReport, directory: Path) -> tuple[str, list[dict[str, str]], dict[str, object]]:
    write_atomic(directory / "r.html", render_sweep_html(report))
    write_atomic(directory / "r.csv", sweep_csv(report))
    write_atomic(directory / "r.json", sweep_json(report))
    page = (directory / "r.html").read_text()
    rows = list(csv.DictReader(io.StringIO((directory / "r.csv").read_text(), newline="")))
    document = json.loads((directory / "r.json").read_text())
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    return page, rows, document


def test_an_empty_fleet(sqlite_store: Store, tmp_path: Path) -> None:
    record_sweep(sqlite_store, T0, [], [], notes=["no host was selected"])
    page, rows, document = render_all(stored_report(sqlite_store), tmp_path)
    assert re.search(r'id="hosts-selected">0<', page)
    assert "no data" not in page  # one sweep is one point, even with zero hosts
    assert rows == []
    assert document["run"]["hosts"]["compliance_pct"] is None  # type: ignore[index]
    assert document["unreachable"] == []


def test_every_host_unreachable(sqlite_store: Store, tmp_path: Path) -> None:
    hosts = [down(f"EP-{i:03d}", kind="timed_out" if i % 2 else "auth_failed") for i in range(40)]
    record_sweep(sqlite_store, T0, hosts, [])
    report = stored_report(sqlite_store)
    assert (report.summary.not_collected, report.summary.compliant_hosts) == (40, 0)
    assert not report.summary.compliant
    page, rows, document = render_all(report, tmp_path)
    assert re.search(r'id="hosts-not-collected">40<', page)
    assert page.count("<td><code>timed_out</code></td>") == 20
    assert rows == []
    assert len(document["unreachable"]) == 40  # type: ignore[arg-type]
    assert document["run"]["hosts"]["compliance_pct"] == 0.0  # type: ignore[index]


def test_ten_thousand_hosts(sqlite_store: Store, tmp_path: Path) -> None:
    before, fleet = synthetic_fleet(10_000, seed=1), synthetic_fleet(10_000)
    record_sweep(sqlite_store, T0 - timedelta(days=1), before.hosts, before.findings)
    record_sweep(sqlite_store, T0, fleet.hosts, fleet.findings)
    report = stored_report(sqlite_store, synthetic_sites(fleet))
    summary = report.summary
    flagged = {f.host for f in fleet.findings}
    assert summary.hosts_selected == 10_000
    assert summary.findings_total == len(fleet.findings)
    assert summary.hosts_with_findings == len(flagged)
    assert summary.not_collected == sum(1 for h in fleet.hosts if h.error_kind)
    assert summary.compliant_hosts == 10_000 - len(flagged) - summary.not_collected
    assert len(report.changes.new) + report.changes.still_open == summary.findings_total
    assert report.changes.resolved  # seed 1 put findings on other hosts

    page, rows, document = render_all(report, tmp_path)
    assert re.search(r'id="hosts-selected">10000<', page)
    assert page.count('<article class="host"') == len(flagged)
    assert page.count('class="finding"') == len(fleet.findings)
    assert len(rows) == len(fleet.findings)
    assert {row["site"] for row in rows} == {"ams", "fra", "lon", "nyc", "unassigned"}
    assert len(document["findings"]) == len(fleet.findings)  # type: ignore[arg-type]
    assert len(document["trend"]) == 2  # type: ignore[arg-type]
