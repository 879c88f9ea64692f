"""The report's store queries on SQLite and PostgreSQL: which sweep, first seen, trend, metrics,
and a number of statements that does not grow with the fleet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from orchestrator.errors import InputError
from orchestrator.reports.model import CheckInfo, build_sweep_report
from orchestrator.reports.source import (
    catalogue_checks,
    inventory_sites,
    load_metrics_data,
    load_sweep_data,
    report_sweep,
)
from orchestrator.store import Run, RunKind, RunStatus, Store
from orchestrator.store.sweeps import fail_sweep, start_sweep
from tests.reports.support import T0, down, finding, ok, record_sweep, synthetic_fleet
from tests.sweep.support import inventory_host

DAY = timedelta(days=1)


def load(store: Store, run_id: str | None = None, *, trend: int = 10) -> Any:
    with store.transaction() as session:
        run = report_sweep(session, run_id)
        return load_sweep_data(
            session,
            run,
            trend=trend,
            sites={},
            checks=catalogue_checks(),
            generated_at=datetime.now(UTC),
        )


def test_no_sweep_yet_is_bad_input(store: Store) -> None:
    with store.transaction() as session, pytest.raises(InputError) as raised:
        report_sweep(session, None)
    assert raised.value.field == "--run"
    assert "no completed sweep" in str(raised.value)


def test_unknown_ids_and_runs_that_are_not_sweeps_are_bad_input(store: Store) -> None:
    with store.transaction() as session:
        playbook = Run(kind=RunKind.PLAYBOOK.value, status=RunStatus.SUCCEEDED.value, requested_by="t")
        session.add(playbook)
        session.flush()
        failed = start_sweep(session, requested_by="t", selector=None, parameters={}, started_at=T0)
        fail_sweep(session, failed.id, finished_at=T0, summary={"error": "x"})
    for run_id, text in [
        ("no-such-run", "no sweep"),
        (playbook.id, "no sweep"),
        (failed.id, "did not complete"),
    ]:
        with store.transaction() as session, pytest.raises(InputError) as raised:
            report_sweep(session, run_id)
        assert raised.value.field == "--run"
        assert text in str(raised.value)


def test_diff_first_seen_and_trend_over_three_sweeps(store: Store) -> None:
    hosts = [ok("EP-1"), ok("EP-2"), ok("VPN-1", "rras"), down("EP-3")]
    a = finding("EP-1", "EP-CERT-01")
    b = finding("EP-2", "EP-CERT-01", severity="medium")
    c = finding("VPN-1", "RRAS-AUTH-01", "root", severity="critical")
    first = record_sweep(store, T0, hosts, [a, b])
    record_sweep(store, T0 + DAY, hosts, [a, c])
    third = record_sweep(
        store, T0 + 2 * DAY, [*hosts[:3], ok("EP-3")], [a, c, finding("EP-3", "EP-OS-01", "os")]
    )

    data = load(store)
    assert data.run.id == third
    assert data.first_seen[a.fingerprint] == T0
    assert data.first_seen[c.fingerprint] == T0 + DAY
    report = build_sweep_report(data)
    states = {f.host: (f.status.value, f.first_seen) for f in report.findings}
    assert states == {
        "EP-1": ("open", T0),
        "VPN-1": ("open", T0 + DAY),
        "EP-3": ("new", T0 + 2 * DAY),
    }
    assert next(p.run_id for p in report.trend) == first
    trend = [(p.hosts_selected, p.hosts_failing, p.findings_total) for p in report.trend]
    # EP-3 was not collected in the first two sweeps: failing, as are hosts with findings
    assert trend == [(4, 3, 2), (4, 3, 2), (4, 3, 3)]
    assert dict(report.trend[1].findings_by_severity)["critical"] == 1

    older = load(store, first, trend=2)
    assert [s.run_id for s in older.trend] == [first]  # nothing before the first sweep
    assert older.diff.previous_run is None
    assert len(load(store, trend=2).trend) == 2


def test_metrics_data(store: Store) -> None:
    empty = load_metrics_data(store.sessions())
    assert empty.sweep is None
    assert empty.runs == {}
    record_sweep(
        store, T0, [ok("EP-1"), ok("EP-2"), down("EP-3")], [finding("EP-1"), finding("EP-1", subject="b")]
    )
    with store.transaction() as session:
        start_sweep(session, requested_by="t", selector=None, parameters={}, started_at=T0 + DAY)
        data = load_metrics_data(session, checks=[CheckInfo("EP-OS-01", "os", "low", ("endpoint",))])
    assert data.runs == {("sweep", "succeeded"): 1, ("sweep", "running"): 1}
    assert data.sweep is not None
    assert dict(data.sweep.hosts_by_status) == {"ok": 2, "failed": 0, "unreachable": 1, "skipped": 0}
    assert data.sweep.compliant_hosts == 1
    assert dict(data.sweep.findings) == {("EP-CERT-01", "high"): 2}
    assert data.sweep.duration_s == 12.5
    assert data.sweep.finished_at == T0 + timedelta(minutes=1)


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


def test_the_number_of_queries_does_not_grow_with_the_fleet(store: Store) -> None:
    counts = []
    for size, at in ((6, T0), (300, T0 + 10 * DAY)):
        fleet = synthetic_fleet(size)
        record_sweep(store, at - DAY, fleet.hosts, fleet.findings[: len(fleet.findings) // 2])
        record_sweep(store, at, fleet.hosts, fleet.findings)
        with counted_statements(store) as statements:
            load(store)
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 15


def test_inventory_sites_come_from_the_site_tag() -> None:
    hosts = [
        inventory_host("EP-1").model_copy(update={"tags": {"site": "ams"}}),
        inventory_host("EP-2").model_copy(update={"tags": {"Site": "fra"}}),
        inventory_host("EP-3"),
    ]
    assert inventory_sites(hosts) == {"ep-1": "ams", "ep-2": "fra"}
