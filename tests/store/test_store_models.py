"""Rows round-trip on both backends; constraints hold; the journal claim is exclusive."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from orchestrator.errors import StoreError
from orchestrator.store import (
    Finding,
    HostResult,
    HostStatus,
    JournalEntry,
    Run,
    RunKind,
    StepState,
    Store,
    claim_step,
    session_factory,
)
from orchestrator.store.canonical import sha256_hex

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def new_run(session: Session, **fields: object) -> Run:
    run = Run(kind=RunKind.SWEEP, requested_by="alice@adm01", **fields)
    session.add(run)
    session.flush()
    return run


def finding(run: Run, host: str, check_id: str, **fields: object) -> Finding:
    return Finding(
        run=run,
        host=host,
        check_id=check_id,
        severity="high",
        message=f"{check_id} on {host}",
        fingerprint=sha256_hex(f"{host.casefold()}/{check_id}")[:32],
        **fields,
    )


def test_round_trip_of_a_run_with_results_findings_and_journal(store_engine: Engine) -> None:
    sessions = session_factory(store_engine)
    amsterdam = timezone(timedelta(hours=1))
    with sessions.begin() as session:
        run = new_run(
            session,
            parameters={"protocol": "IKEv2", "ports": [500, 4500]},
            selector="role:rras",
            started_at=T0.astimezone(amsterdam),  # stored and read back as UTC
        )
        run.host_results.append(
            HostResult(host="rras-01", role="rras", status=HostStatus.OK, facts={"auth": {"eap": True}})
        )
        run.host_results.append(
            HostResult(
                host="ep-001",
                role="endpoint",
                status=HostStatus.UNREACHABLE,
                error_kind="unreachable",
                error_message="connection refused",
            )
        )
        session.add(
            finding(
                run, "rras-01", "RRAS-AUTH-01", evidence={"method": "MSCHAPv2"}, error_codes=[13806, 13801]
            )
        )
        session.add(
            JournalEntry(run=run, host="rras-01", step="01-auth", action="rras.set_auth", before={"m": 1})
        )
        run_id = run.id

    with sessions() as session:
        loaded = session.get(Run, run_id)
        assert loaded is not None
        assert (loaded.kind, loaded.status, loaded.executor) == ("sweep", "pending", "local")
        assert loaded.parameters == {"protocol": "IKEv2", "ports": [500, 4500]}
        assert loaded.started_at == T0
        assert loaded.started_at is not None
        assert loaded.started_at.tzinfo == UTC
        assert loaded.created_at.tzinfo == UTC
        assert loaded.finished_at is None
        results = {result.host: result for result in loaded.host_results}
        assert results["rras-01"].facts == {"auth": {"eap": True}}
        assert results["ep-001"].facts is None  # SQL NULL, not JSON null
        assert results["ep-001"].error_kind == "unreachable"
        [stored_finding] = loaded.findings
        assert stored_finding.error_codes == [13806, 13801]
        assert stored_finding.evidence == {"method": "MSCHAPv2"}
        [step] = loaded.journal
        assert (step.state, step.attempts, step.before, step.after) == ("claimed", 1, {"m": 1}, None)


def test_facts_null_is_sql_null(store_engine: Engine) -> None:
    with session_factory(store_engine).begin() as session:
        run = new_run(session)
        session.add(HostResult(run=run, host="h", role="ca", status=HostStatus.SKIPPED))
    with store_engine.connect() as connection:
        count = connection.execute(select(func.count()).where(HostResult.facts.is_(None))).scalar_one()
    assert count == 1


def test_naive_timestamps_are_refused(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session, pytest.raises(StatementError, match="naive datetime"):
        new_run(session, started_at=datetime(2026, 3, 1, 2, 0))


def test_unknown_status_is_refused_by_the_database(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session, pytest.raises(IntegrityError):
        new_run(session, status="exploded")


def test_one_result_per_host_and_run(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session:
        run = new_run(session)
        session.add(HostResult(run=run, host="h", role="ca", status=HostStatus.OK))
        session.flush()
        session.add(HostResult(run=run, host="h", role="ca", status=HostStatus.FAILED))
        with pytest.raises(IntegrityError):
            session.flush()


def test_deleting_a_run_deletes_its_rows(store_engine: Engine) -> None:
    with session_factory(store_engine).begin() as session:
        run = new_run(session)
        session.add(HostResult(run=run, host="h", role="ca", status=HostStatus.OK))
        session.add(finding(run, "h", "PKI-CRL-01"))
        session.add(JournalEntry(run=run, host="h", step="s", action="a"))
    runs = Run.__table__
    assert isinstance(runs, Table)
    with store_engine.begin() as connection:  # the database cascades, not only the ORM
        connection.execute(runs.delete())
    with store_engine.connect() as connection:
        for model in (HostResult, Finding, JournalEntry):
            assert connection.execute(select(func.count()).select_from(model)).scalar_one() == 0


def test_journal_rejects_a_second_row_for_the_same_step(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session:
        run = new_run(session)
        session.add(JournalEntry(run=run, host="h", step="01", action="a"))
        session.flush()
        session.add(JournalEntry(run=run, host="h", step="01", action="a"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_claim_step_wins_once(store_engine: Engine) -> None:
    sessions = session_factory(store_engine)
    with sessions.begin() as session:
        run_id = new_run(session).id
    claim = {"run_id": run_id, "host": "rras-01", "step": "01-auth", "action": "rras.set_auth"}
    with sessions.begin() as session:
        first = claim_step(session, **claim, claimed_by="worker-1")
    with sessions.begin() as session:
        second = claim_step(session, **claim, claimed_by="worker-2")
        # the lost race leaves the transaction usable
        other_host = claim_step(session, **{**claim, "host": "rras-02"}, claimed_by="worker-2")
    assert first is not None
    assert second is None
    assert other_host is not None
    with sessions() as session:
        row = session.get(JournalEntry, first)
        assert row is not None
        assert (row.state, row.claimed_by) == (StepState.CLAIMED, "worker-1")


def test_concurrent_claims_have_one_winner(store_engine: Engine) -> None:
    """Redelivered tasks on several workers race for the same step; exactly one may act."""
    sessions = session_factory(store_engine)
    with sessions.begin() as session:
        run_id = new_run(session).id
    barrier = threading.Barrier(6)
    results: list[int | None] = []

    def worker(number: int) -> None:
        barrier.wait()
        with sessions.begin() as session:
            results.append(
                claim_step(session, run_id=run_id, host="h", step="01", action="a", claimed_by=f"w{number}")
            )

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert sum(result is not None for result in results) == 1


def test_claim_for_an_unknown_run_is_a_store_error(store_engine: Engine) -> None:
    with session_factory(store_engine)() as session, pytest.raises(StoreError, match="cannot claim"):
        claim_step(session, run_id="no-such-run", host="h", step="01", action="a")


def test_what_changed_since_last_night(store_engine: Engine) -> None:
    """Fingerprints make "new" and "fixed" findings set differences between two sweeps."""
    sessions = session_factory(store_engine)
    with sessions.begin() as session:
        last_night, tonight = new_run(session), new_run(session)
        session.add_all(
            [finding(last_night, "RRAS-01", "RRAS-AUTH-01"), finding(last_night, "ca-01", "PKI-CRL-01")]
        )
        session.add_all(
            [finding(tonight, "rras-01", "RRAS-AUTH-01"), finding(tonight, "ep-7", "EP-ROUTE-02")]
        )
        old_id, new_id = last_night.id, tonight.id

    def fingerprints_only_in(run_id: str, other_id: str) -> set[str]:
        other = select(Finding.fingerprint).where(Finding.run_id == other_id)
        query = select(Finding.check_id).where(Finding.run_id == run_id, Finding.fingerprint.not_in(other))
        with store_engine.connect() as connection:
            return set(connection.execute(query).scalars())

    assert fingerprints_only_in(new_id, old_id) == {"EP-ROUTE-02"}  # new since last night
    assert fingerprints_only_in(old_id, new_id) == {"PKI-CRL-01"}  # fixed since last night


def test_store_transaction_commits_and_translates_errors(store_engine: Engine) -> None:
    store = Store.from_engine(store_engine)
    with store.transaction() as session:
        run_id = new_run(session).id
    with pytest.raises(StoreError, match="database error on"), store.transaction() as session:
        session.add(HostResult(run_id=run_id, host="h", role="ca", status="bogus"))
    with store.transaction() as session:
        assert session.get(Run, run_id) is not None
        assert session.scalar(select(func.count()).select_from(HostResult)) == 0
