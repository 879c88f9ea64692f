"""The audit chain: appends verify, every kind of tampering is caught at the right entry."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from orchestrator.errors import AuditChainError, InputError, StoreError
from orchestrator.logs import register_secret
from orchestrator.store import (
    AuditHead,
    AuditLogRow,
    AuditProblem,
    Run,
    RunKind,
    append_audit,
    audit_head,
    create_store_engine,
    list_audit,
    session_factory,
    upgrade,
    verify_audit,
)
from orchestrator.store.audit import entry_hash

ACTOR = "alice@adm01"


def append_entries(engine: Engine, count: int) -> list[str]:
    """Append ``count`` entries; their hashes, in seq order."""
    return [
        append_audit(engine, ACTOR, "playbook.apply", f"rras-0{n}", {"n": n, "playbook": "rras-auth"}).hash
        for n in range(1, count + 1)
    ]


def disable_append_only(connection: Connection) -> None:
    """What an attacker with database access does before editing the log."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER USER")
    else:
        for verb in ("update", "delete"):
            connection.exec_driver_sql(f"DROP TRIGGER audit_log_append_only_{verb}")


def tamper(engine: Engine, change: Callable[[Connection], object]) -> None:
    with engine.begin() as connection:
        disable_append_only(connection)
        change(connection)


def set_entry(at: int, **values: object) -> Callable[[Connection], object]:
    return lambda connection: connection.execute(
        update(AuditLogRow).where(AuditLogRow.seq == at).values(**values)
    )


def delete_entry(seq: int) -> Callable[[Connection], object]:
    return lambda connection: connection.execute(delete(AuditLogRow).where(AuditLogRow.seq == seq))


def swap_entries(a: int, b: int) -> Callable[[Connection], object]:
    def change(connection: Connection) -> None:
        for old, new in ((a, -1), (b, a), (-1, b)):
            set_entry(old, seq=new)(connection)

    return change


def set_head(**values: object) -> Callable[[Connection], object]:
    return lambda connection: connection.execute(update(AuditHead).values(**values))


def rewrite_entry_with_valid_hash(seq: int) -> Callable[[Connection], object]:
    """An attacker who knows the algorithm edits an entry and recomputes its hash."""

    def change(connection: Connection) -> None:
        row = connection.execute(select(AuditLogRow.__table__).where(AuditLogRow.seq == seq)).one()
        fields = {**row._asdict(), "actor": "mallory@evil"}
        del fields["hash"]
        connection.execute(
            update(AuditLogRow)
            .where(AuditLogRow.seq == seq)
            .values(actor="mallory@evil", hash=entry_hash(**fields))
        )

    return change


def test_appended_entries_verify(store_engine: Engine) -> None:
    hashes = append_entries(store_engine, 5)
    result = verify_audit(store_engine)
    assert result.ok
    assert result.failure is None
    assert result.entries == 5
    assert result.head is not None
    assert (result.head.seq, result.head.hash) == (5, hashes[-1])
    result.raise_for_failure()  # does nothing when intact


def test_an_empty_log_verifies(store_engine: Engine) -> None:
    result = verify_audit(store_engine)
    assert result.ok
    assert result.entries == 0


def test_hash_is_sha256_of_the_documented_canonical_json(store_engine: Engine) -> None:
    """Pins the format: anyone can re-verify an exported log without fleetfix."""
    first = append_audit(store_engine, ACTOR, "db.upgrade", "store", {"to": "0001", "from": None, "ü": 1.5})
    second = append_audit(store_engine, ACTOR, "creds.set", "vault:fleet-admin")
    ts = first.ts.isoformat(timespec="microseconds")
    document = {
        "seq": 1,
        "ts": ts,
        "actor": ACTOR,
        "action": "db.upgrade",
        "target": "store",
        "details": {"to": "0001", "from": None, "ü": 1.5},
        "prev_hash": "0" * 64,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert ts.endswith("+00:00")
    assert first.hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert second.prev_hash == first.hash
    assert [entry.to_dict() for entry in list_audit(store_engine)] == [first.to_dict(), second.to_dict()]


def test_values_that_change_in_a_round_trip_still_verify(store_engine: Engine) -> None:
    """Tuples, integer keys and large floats come back differently from JSON columns."""
    # The integer key is outside append_audit's declared Mapping[str, Any] on purpose: a caller that
    # ignores the hint must not leave an entry that fails verification.
    details = {"t": (1, 2), 7: "int key", "big": 1e16, "small": 1e-7}
    append_audit(store_engine, ACTOR, "x", None, details)  # type: ignore[arg-type]
    assert verify_audit(store_engine).ok


TAMPERING = {
    "edit details": (set_entry(3, details={"n": 3, "playbook": "something-else"}), 3, AuditProblem.EDITED),
    "edit hash": (set_entry(3, hash="f" * 64), 3, AuditProblem.EDITED),
    "edit timestamp": (set_entry(2, ts=datetime(2020, 1, 1, tzinfo=UTC)), 2, AuditProblem.EDITED),
    "edit actor": (set_entry(4, actor="mallory@evil"), 4, AuditProblem.EDITED),
    "rewrite with valid hash": (rewrite_entry_with_valid_hash(3), 4, AuditProblem.BROKEN_LINK),
    "delete middle": (delete_entry(3), 3, AuditProblem.MISSING),
    "delete first": (delete_entry(1), 1, AuditProblem.MISSING),
    "delete tail": (delete_entry(5), 5, AuditProblem.MISSING),
    "swap two entries": (swap_entries(2, 4), 2, AuditProblem.REORDERED),
    "forge head hash": (set_head(last_hash="a" * 64), 5, AuditProblem.HEAD_MISMATCH),
    "roll head back": (set_head(last_seq=3), 4, AuditProblem.HEAD_MISMATCH),
}


@pytest.mark.parametrize("case", TAMPERING, ids=list(TAMPERING))
def test_tampering_is_caught_at_the_first_bad_entry(store_engine: Engine, case: str) -> None:
    change, seq, problem = TAMPERING[case]
    append_entries(store_engine, 5)
    tamper(store_engine, change)
    result = verify_audit(store_engine)
    assert result.failure is not None, case
    assert (result.failure.seq, result.failure.problem) == (seq, problem), result.failure.message
    assert str(seq) in result.failure.message
    with pytest.raises(AuditChainError) as caught:
        result.raise_for_failure()
    assert caught.value.seq == seq
    assert caught.value.to_dict()["first_bad_seq"] == seq


@pytest.mark.parametrize(("column", "value"), [("ts", "yesterday"), ("ts", 12345), ("details", "{not json")])
def test_garbled_sqlite_values_are_reported_at_their_entry(
    sqlite_url: str, column: str, value: object
) -> None:
    """SQLite stores whatever is written; unreadable values are an edit, not a crash."""
    upgrade(sqlite_url)
    engine = create_store_engine(sqlite_url)
    try:
        append_entries(engine, 3)
        tamper(
            engine, lambda c: c.exec_driver_sql(f"UPDATE audit_log SET {column} = ? WHERE seq = 2", (value,))
        )
        failure = verify_audit(engine).failure
        assert failure is not None
        assert (failure.seq, failure.problem) == (2, AuditProblem.EDITED)
        assert [entry.seq for entry in list_audit(engine)] == [1, 2, 3]
    finally:
        engine.dispose()


def test_a_recorded_head_catches_truncation_with_a_forged_head(store_engine: Engine) -> None:
    """Deleting the newest entry and moving the head back is invisible without an outside record."""
    hashes = append_entries(store_engine, 5)
    recorded = f"5:{hashes[-1]}"
    tamper(store_engine, lambda c: (delete_entry(5)(c), set_head(last_seq=4, last_hash=hashes[3])(c)))
    assert verify_audit(store_engine).ok  # consistent in itself
    failure = verify_audit(store_engine, expect_head=recorded).failure
    assert failure is not None
    assert (failure.seq, failure.problem) == (5, AuditProblem.MISSING)


def test_a_recorded_head_catches_a_rewritten_chain(store_engine: Engine) -> None:
    hashes = append_entries(store_engine, 3)
    # replace the whole log by a consistent new one, head included
    tamper(
        store_engine, lambda c: (c.execute(delete(AuditLogRow)), set_head(last_seq=0, last_hash="0" * 64)(c))
    )
    append_entries(store_engine, 3)
    assert verify_audit(store_engine).ok
    with_seq = verify_audit(store_engine, expect_head=f"2:{hashes[1]}").failure
    assert with_seq is not None
    assert (with_seq.seq, with_seq.problem) == (2, AuditProblem.ANCHOR_MISMATCH)
    bare = verify_audit(store_engine, expect_head=hashes[1]).failure
    assert bare is not None
    assert (bare.seq, bare.problem) == (None, AuditProblem.ANCHOR_MISMATCH)


def test_a_recorded_head_stays_valid_as_the_log_grows(store_engine: Engine) -> None:
    hashes = append_entries(store_engine, 2)
    append_entries(store_engine, 3)
    for recorded in (f"2:{hashes[1]}", hashes[1].upper()):
        result = verify_audit(store_engine, expect_head=recorded)
        assert result.ok
        assert result.anchor_seq == 2


@pytest.mark.parametrize("bad", ["", "xyz", "12:abc", "a:" + "0" * 64])
def test_malformed_expected_head_is_bad_input(store_engine: Engine, bad: str) -> None:
    with pytest.raises(InputError):
        verify_audit(store_engine, expect_head=bad)


def test_triggers_reject_update_and_delete(store_engine: Engine) -> None:
    append_entries(store_engine, 2)
    statements = [
        update(AuditLogRow).where(AuditLogRow.seq == 1).values(actor="mallory"),
        delete(AuditLogRow).where(AuditLogRow.seq == 2),
        delete(AuditLogRow),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), store_engine.begin() as connection:
            connection.execute(statement)
    if store_engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), store_engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE audit_log")
    assert verify_audit(store_engine).entries == 2


def test_append_in_a_session_commits_or_rolls_back_with_it(store_engine: Engine) -> None:
    sessions = session_factory(store_engine)
    with sessions() as session:
        session.add(Run(kind=RunKind.SWEEP, requested_by=ACTOR))
        append_audit(session, ACTOR, "run.start", "sweep")
        session.rollback()
    assert verify_audit(store_engine).entries == 0
    with sessions.begin() as session:
        session.add(Run(kind=RunKind.SWEEP, requested_by=ACTOR))
        entry = append_audit(session, ACTOR, "run.start", "sweep")
    head = audit_head(store_engine)
    assert head is not None
    assert (head.seq, head.hash) == (1, entry.hash)
    assert verify_audit(store_engine).ok


def test_secret_values_are_refused(store_engine: Engine) -> None:
    register_secret("Tr0ub4dor&3-audit")
    with pytest.raises(StoreError, match="secret"):
        append_audit(store_engine, ACTOR, "creds.set", "vault:x", {"password": "Tr0ub4dor&3-audit"})
    assert verify_audit(store_engine).entries == 0


def test_details_must_be_json(store_engine: Engine) -> None:
    with pytest.raises(StoreError, match="JSON"):
        append_audit(store_engine, ACTOR, "x", None, {"when": object()})
    with pytest.raises(StoreError, match="JSON"):
        append_audit(store_engine, ACTOR, "x", None, {"nan": float("nan")})


def test_list_audit_returns_the_newest_oldest_first(store_engine: Engine) -> None:
    append_entries(store_engine, 4)
    append_audit(store_engine, ACTOR, "db.upgrade", "store")
    assert [entry.seq for entry in list_audit(store_engine, 3)] == [3, 4, 5]
    assert [entry.seq for entry in list_audit(store_engine, 10, action="db.upgrade")] == [5]
    with pytest.raises(InputError):
        list_audit(store_engine, 0)
