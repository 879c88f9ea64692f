"""The append-only, hash-chained audit log in the database.

How an entry is hashed and how a chain is checked is in :mod:`orchestrator.store.chain`; this
module appends, reads and verifies against the database. Three layers protect the log:

* triggers reject UPDATE and DELETE on ``audit_log`` (an honest mistake cannot rewrite history);
* the chain plus the ``audit_head`` row catch edits made by someone who dropped the triggers,
  including removal of the newest entries;
* a head recorded elsewhere (``verify_audit(expect_head="SEQ:HASH")``) catches a rewrite of the
  whole chain, which the database alone cannot.

**Never put secret values in an entry.** Callers pass names and references (``vault:winrm-admin``),
not what they resolve to; an entry containing a secret registered with :mod:`orchestrator.logs`
is refused.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Row, String, insert, select, type_coerce, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from orchestrator.errors import InputError, StoreError
from orchestrator.logs import redact
from orchestrator.store.canonical import canonical_json, normalize_json
from orchestrator.store.chain import (
    AuditEntry,
    AuditFailure,
    AuditProblem,
    AuditVerification,
    ChainHead,
    ChainWalker,
    ExpectedHead,
    entry_hash,
)
from orchestrator.store.engine import store_errors
from orchestrator.store.models import AuditHead, AuditLogRow
from orchestrator.store.types import utcnow

_HEAD_ID = 1
_VERIFY_BATCH = 1000
_UNREADABLE_TS = datetime(1970, 1, 1, tzinfo=UTC)


# --- appending ----------------------------------------------------------------------------------


def local_actor() -> str:
    """``user@host`` for entries written on behalf of whoever runs this process (the CLI)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def _checked_fields(
    actor: str, action: str, target: str | None, details: Mapping[str, Any] | None
) -> dict[str, Any]:
    if not actor or not action:
        raise StoreError("an audit entry needs an actor and an action")
    normalized = normalize_json(dict(details or {}))
    text = canonical_json([actor, action, target, normalized])
    if redact(text) != text:
        raise StoreError(f"refusing to write a secret value into the audit log (action {action!r})")
    return normalized  # type: ignore[no-any-return]


def _append(
    connection: Connection, actor: str, action: str, target: str | None, details: dict[str, Any]
) -> AuditEntry:
    # Taking the next seq is the first statement and a write: it locks the head row (PostgreSQL)
    # or the database (SQLite) until commit, so concurrent appends queue up instead of forking.
    claimed = connection.execute(
        update(AuditHead)
        .where(AuditHead.id == _HEAD_ID)
        .values(last_seq=AuditHead.last_seq + 1)
        .returning(AuditHead.last_seq, AuditHead.last_hash)
    ).one_or_none()
    if claimed is None:
        raise StoreError("the audit_head row is missing: the store is damaged, run `fleetfix audit verify`")
    seq, prev_hash = claimed
    fields: dict[str, Any] = {
        "seq": seq,
        "ts": utcnow(),
        "actor": actor,
        "action": action,
        "target": target,
        "details": details,
        "prev_hash": prev_hash,
    }
    entry = AuditEntry(**{**fields, "details": MappingProxyType(details)}, hash=entry_hash(**fields))
    connection.execute(insert(AuditLogRow).values(**fields, hash=entry.hash))
    connection.execute(update(AuditHead).where(AuditHead.id == _HEAD_ID).values(last_hash=entry.hash))
    return entry


def append_audit(
    db: Session | Engine,
    actor: str,
    action: str,
    target: str | None,
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry and return it.

    With an Engine the entry is committed in its own transaction. With a Session it joins the
    session's transaction, so the entry commits or rolls back together with the change it records;
    the caller commits. On SQLite, append before reading in that transaction (or use a session
    on ``writer(engine)``), or a concurrent writer makes the append fail with "database is locked".

    ``details`` must be JSON-compatible and must not contain secret values: pass names.
    """
    normalized = _checked_fields(actor, action, target, details)
    if isinstance(db, Session):
        with store_errors(db.get_bind().engine.url, "cannot append to the audit log"):
            return _append(db.connection(), actor, action, target, normalized)
    with store_errors(db.url, "cannot append to the audit log"), db.begin() as connection:
        return _append(connection, actor, action, target, normalized)


# --- reading and verifying ----------------------------------------------------------------------


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one consistent state of log and head.

    SQLite transactions are snapshots already (WAL, real BEGIN); PostgreSQL's default READ
    COMMITTED would let an append land between reading the head and reading the entries.
    """
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect() as connection, connection.execution_options(**options).begin():
        yield connection


def _entry_columns(dialect: str) -> tuple[Any, ...]:
    """The entry's columns; on SQLite ``ts`` and ``details`` come back as the stored text.

    SQLite lets anyone with the file store any text in any column, and SQLAlchemy's own parsing
    of such text would raise mid-query; reading the text and parsing it here lets a garbled entry
    be reported as edited at its seq. PostgreSQL validates both types on write.
    """
    raw = dialect == "sqlite"
    ts = type_coerce(AuditLogRow.ts, String()).label("ts") if raw else AuditLogRow.ts
    details = type_coerce(AuditLogRow.details, String()).label("details") if raw else AuditLogRow.details
    return (
        AuditLogRow.seq,
        ts,
        AuditLogRow.actor,
        AuditLogRow.action,
        AuditLogRow.target,
        details,
        AuditLogRow.prev_hash,
        AuditLogRow.hash,
    )


def _read_head(connection: Connection) -> ChainHead | None:
    row = connection.execute(
        select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == _HEAD_ID)
    ).one_or_none()
    return None if row is None else ChainHead(seq=row.last_seq, hash=row.last_hash)


def parse_ts(value: object) -> datetime | None:
    """A stored audit timestamp as aware UTC (SQLite may hand back text), or None if unreadable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_details(value: object) -> dict[str, Any] | None:
    """A stored audit entry's details as a dict (SQLite may hand back text), or None if unreadable."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _entry_from_row(row: Row[Any]) -> AuditEntry:
    ts, details = parse_ts(row.ts), parse_details(row.details)
    if ts is None or details is None:
        # Only tampering produces these; keep what is there so the hash check reports the entry
        # as edited, at its seq, instead of failing the whole verification.
        ts, details = _UNREADABLE_TS, {"_unreadable": {"ts": str(row.ts), "details": str(row.details)}}
    return AuditEntry(
        seq=row.seq,
        ts=ts,
        actor=row.actor,
        action=row.action,
        target=row.target,
        details=MappingProxyType(details),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _iter_entries(connection: Connection) -> Iterator[AuditEntry]:
    statement = select(*_entry_columns(connection.dialect.name)).order_by(AuditLogRow.seq)
    for row in connection.execution_options(yield_per=_VERIFY_BATCH).execute(statement):
        yield _entry_from_row(row)


def _seq_of_hash(connection: Connection) -> Callable[[str], int | None]:
    def lookup(hash_value: str) -> int | None:
        found = connection.execute(select(AuditLogRow.seq).where(AuditLogRow.hash == hash_value)).first()
        return None if found is None else int(found.seq)

    return lookup


def verify_audit(engine: Engine, expect_head: str | ExpectedHead | None = None) -> AuditVerification:
    """Walk the whole log in seq order and report the first broken entry, if any.

    Checks that seqs run from 1 without gaps, every entry hashes to its ``hash``, every
    ``prev_hash`` names the previous entry, and ``audit_head`` names the last entry. With
    ``expect_head`` (``SEQ:HASH`` or ``HASH`` recorded earlier, e.g. from ``fleetfix audit
    verify``), that entry must still be in the chain. A broken chain is reported in the result
    (see ``raise_for_failure``); StoreError means the database could not be read, InputError a
    malformed ``expect_head``.
    """
    expected = ExpectedHead.parse(expect_head) if isinstance(expect_head, str) else expect_head
    with store_errors(engine.url, "cannot read the audit log"), _snapshot(engine) as connection:
        head = _read_head(connection)
        walker = ChainWalker(_seq_of_hash(connection), expected)
        failure: AuditFailure | None = None
        for entry in _iter_entries(connection):
            failure = walker.feed(entry)
            if failure is not None:
                break
        failure = failure or walker.finish(head)
    return AuditVerification(entries=walker.count, head=head, failure=failure, anchor_seq=walker.anchor_seq)


def list_audit(engine: Engine, limit: int = 20, *, action: str | None = None) -> list[AuditEntry]:
    """The newest ``limit`` entries (only those with ``action``, if given), oldest first."""
    if limit < 1:
        raise InputError("limit must be at least 1", field="limit")
    columns = _entry_columns(engine.dialect.name)
    statement = select(*columns).order_by(AuditLogRow.seq.desc()).limit(limit)
    if action is not None:
        statement = statement.where(AuditLogRow.action == action)
    with store_errors(engine.url, "cannot read the audit log"), engine.connect() as connection:
        rows = connection.execute(statement).all()
    return [_entry_from_row(row) for row in reversed(rows)]


def audit_head(engine: Engine) -> ChainHead | None:
    """The head as recorded in ``audit_head`` (None if that row is missing)."""
    with store_errors(engine.url, "cannot read the audit log"), engine.connect() as connection:
        return _read_head(connection)


__all__ = [
    "AuditEntry",
    "AuditFailure",
    "AuditProblem",
    "AuditVerification",
    "ChainHead",
    "ExpectedHead",
    "append_audit",
    "audit_head",
    "entry_hash",
    "list_audit",
    "local_actor",
    "parse_details",
    "parse_ts",
    "verify_audit",
]
