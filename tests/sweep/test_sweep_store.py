"""Sweeps in the store on both backends: write, read back, previous sweep, failure, stored diff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from orchestrator.errors import InputError
from orchestrator.store import HostStatus, RunStatus, Store
from orchestrator.store.sweeps import (
    FindingRecord,
    HostRecord,
    SweepRun,
    complete_sweep,
    fail_sweep,
    fleet_facts_of,
    get_sweep,
    latest_sweep,
    start_sweep,
    sweep_findings,
    sweep_hosts,
)
from orchestrator.sweep.diff import Change
from orchestrator.sweep.history import COMPLETE_KEY, stored_diff

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def finding(host: str, check_id: str, subject: str = "", **fields: object) -> FindingRecord:
    values: dict[str, object] = {
        "host": host,
        "check_id": check_id,
        "severity": "high",
        "title": f"{check_id} title",
        "message": f"{check_id} on {host}",
        "subject": subject,
        "reason": "because",
        "fingerprint": f"{host.lower()}|{check_id}|{subject}",
        **fields,
    }
    return FindingRecord(**values)  # type: ignore[arg-type]


def ok(host: str, role: str = "endpoint") -> HostRecord:
    return HostRecord(host=host, role=role, status=HostStatus.OK, facts={"schema_version": 1}, started_at=T0)


def down(host: str) -> HostRecord:
    return HostRecord(
        host=host,
        role="endpoint",
        status=HostStatus.UNREACHABLE,
        error_kind="unreachable",
        error_message="no",
    )


def started(session: Session, at: datetime) -> SweepRun:
    return start_sweep(session, requested_by="t@h", selector=None, parameters={}, started_at=at)


def record_sweep(
    store: Store,
    at: datetime,
    hosts: list[HostRecord],
    findings: list[FindingRecord],
    *,
    complete: bool = True,
) -> str:
    with store.transaction() as session:
        run = start_sweep(
            session, requested_by="t@h", selector=None, parameters={"hosts": len(hosts)}, started_at=at
        )
    with store.transaction() as session:
        complete_sweep(
            session,
            run.id,
            hosts=hosts,
            findings=findings,
            fleet_facts={"tenant": None, "crls": []},
            summary={COMPLETE_KEY: complete, "compliant": not findings},
            finished_at=at + timedelta(minutes=1),
            observed_at=at,
        )
    return run.id


@pytest.fixture
def store(store_engine: Engine) -> Store:
    return Store.from_engine(store_engine)


def test_a_sweep_round_trips(store: Store) -> None:
    evidence = {"reason": "because", "thumbprints": ["AB", "CD"], "nested": {"n": 1}}
    written = [
        finding("WS-2", "EP-CERT-01", "thumb", evidence=evidence, error_codes=("13806", "0x80092013")),
        finding("WS-1", "EP-CERT-01", playbook="reenroll", advice=None),
    ]
    run_id = record_sweep(store, T0, [ok("WS-1"), down("WS-2")], written)
    with store.transaction() as session:
        run = get_sweep(session, run_id)
        hosts = sweep_hosts(session, run_id)
        with_facts = sweep_hosts(session, run_id, with_facts=True)
        findings = sweep_findings(session, run_id)
        fleet = fleet_facts_of(session, run_id)
    assert run.status is RunStatus.SUCCEEDED
    assert (run.created_at, run.finished_at) == (T0, T0 + timedelta(minutes=1))
    assert [(h.host, h.status, h.error_kind, h.facts) for h in hosts] == [
        ("WS-1", HostStatus.OK, None, None),
        ("WS-2", HostStatus.UNREACHABLE, "unreachable", None),
    ]
    assert with_facts[0].facts == {"schema_version": 1}
    assert [f.host for f in findings] == ["WS-1", "WS-2"]
    assert findings[1].evidence == evidence
    assert findings[1].error_codes == ("13806", "0x80092013")
    assert findings[1].observed_at == T0
    assert findings[0].playbook == "reenroll"
    assert fleet == {"tenant": None, "crls": []}


def test_latest_sweep_is_the_newest_completed_one(store: Store) -> None:
    first = record_sweep(store, T0, [ok("WS-1")], [])
    second = record_sweep(store, T0 + timedelta(days=1), [ok("WS-1")], [])
    with store.transaction() as session:
        failed = start_sweep(
            session, requested_by="t", selector=None, parameters={}, started_at=T0 + timedelta(days=2)
        )
        fail_sweep(session, failed.id, finished_at=T0 + timedelta(days=2), summary={"error": "x"})
        running = start_sweep(
            session, requested_by="t", selector=None, parameters={}, started_at=T0 + timedelta(days=3)
        )
    with store.transaction() as session:
        latest = latest_sweep(session)
        assert latest is not None
        assert latest.id == second
        previous = latest_sweep(session, before=latest)
        assert previous is not None
        assert previous.id == first
        assert latest_sweep(session, before=previous) is None
        # a running or failed sweep has the previous completed one before it
        before_running = latest_sweep(session, before=get_sweep(session, running.id))
        assert before_running is not None
        assert before_running.id == second
        assert get_sweep(session, failed.id).status is RunStatus.FAILED


def test_an_unknown_run_id_is_bad_input(store: Store) -> None:
    with store.transaction() as session, pytest.raises(InputError, match="no sweep"):
        get_sweep(session, "nope")


def test_stored_diff_new_still_open_resolved_unverified(store: Store) -> None:
    a, b, c, d = (finding("WS-1", "A"), finding("WS-1", "B"), finding("WS-2", "C"), finding("fleet", "F"))
    record_sweep(store, T0, [ok("WS-1"), ok("WS-2")], [a, b, c, d])
    # WS-2 unreachable now: its finding C cannot be verified, nor the fleet-wide F (incomplete sweep)
    e = finding("WS-1", "E")
    second = record_sweep(store, T0 + timedelta(days=1), [ok("WS-1"), down("WS-2")], [a, e], complete=False)
    with store.transaction() as session:
        diff = stored_diff(session, get_sweep(session, second))
    assert diff.counts() == {"new": 1, "still_open": 1, "resolved": 1, "unverified": 2}
    assert [f.check_id for f in diff.of(Change.RESOLVED)] == ["B"]
    assert {f.check_id for f in diff.of(Change.UNVERIFIED)} == {"C", "F"}
    assert diff.change_of()[e.fingerprint] is Change.NEW


def test_the_first_sweep_has_everything_new(store: Store) -> None:
    run_id = record_sweep(store, T0, [ok("WS-1")], [finding("WS-1", "A")])
    with store.transaction() as session:
        diff = stored_diff(session, get_sweep(session, run_id))
    assert diff.previous_run is None
    assert diff.counts() == {"new": 1, "still_open": 0, "resolved": 0, "unverified": 0}
