"""Per-host leases in the store: at most one run touches a host at a time.

A lease names the run and the *holder* (the process or worker doing the work) and expires unless
renewed. :func:`acquire` takes a lease that is free, expired, or already held by the same run (a
resumed run takes its own lease over, whoever held it for that run before); otherwise it reports
who holds it. Every function works inside the caller's transaction, so a lease can be taken
together with the state change it protects and released together with the outcome it guarded.

Race-free on both backends: the free case is ``INSERT ... ON CONFLICT DO NOTHING`` and the takeover
is one conditional ``UPDATE ... WHERE expired OR same run``; PostgreSQL re-checks that condition on
the row it waited for, and SQLite serialises writers. Exactly one of two concurrent callers wins.

Times come from the caller (``now``): all processes must agree on the clock (keep NTP running).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.errors import StoreError
from orchestrator.store.models import HostLease

_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
_ATTEMPTS = 3  # a lease released between our UPDATE and SELECT is simply tried again


@dataclass(frozen=True)
class Lease:
    """A lease this caller holds."""

    host: str
    run_id: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class HeldBy:
    """Someone else's live lease on the host."""

    host: str
    run_id: str
    holder: str
    expires_at: datetime

    def describe(self) -> str:
        """``host H is locked by run R (holder, until T)``, the reason a skipped target shows."""
        until = self.expires_at.isoformat(timespec="seconds")
        return f"host {self.host} is locked by run {self.run_id} ({self.holder}, until {until})"


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    insert = _INSERTS.get(dialect)
    if insert is None:
        raise StoreError(f"host leases do not support {dialect} databases")
    return insert


def acquire(  # noqa: PLR0917 - the positional order is the documented API
    session: Session, host: str, run_id: str, holder: str, ttl: timedelta, now: datetime
) -> Lease | HeldBy:
    """Take the host's lease for ``run_id`` / ``holder`` until ``now + ttl``, or say who holds it.

    Acquired when the lease is free, expired (``expires_at <= now``) or held by the same run. The
    lease becomes visible to others when the caller commits.
    """
    expires = now + ttl
    values = {"run_id": run_id, "holder": holder, "acquired_at": now, "expires_at": expires}
    insert = _insert(session)
    for _ in range(_ATTEMPTS):
        inserted = session.execute(
            insert(HostLease)
            .values(host=host, **values)
            .on_conflict_do_nothing(index_elements=["host"])
            .returning(HostLease.host)
        ).scalar_one_or_none()
        if inserted is not None:
            return Lease(host, run_id, holder, now, expires)
        taken = session.execute(
            update(HostLease)
            .where(HostLease.host == host, or_(HostLease.expires_at <= now, HostLease.run_id == run_id))
            .values(**values)
            .returning(HostLease.host)
        ).scalar_one_or_none()
        if taken is not None:
            return Lease(host, run_id, holder, now, expires)
        current = session.execute(select(HostLease).where(HostLease.host == host)).scalar_one_or_none()
        if current is not None:
            return HeldBy(host, current.run_id, current.holder, current.expires_at)
    raise StoreError(f"cannot acquire the lease on {host}: it changes hands too fast")  # pragma: no cover


def renew(  # noqa: PLR0917 - same order as acquire
    session: Session, host: str, run_id: str, holder: str, ttl: timedelta, now: datetime
) -> bool:
    """Extend our lease to ``now + ttl``; False when it is no longer ours (expired and taken over)."""
    result = session.execute(
        update(HostLease)
        .where(HostLease.host == host, HostLease.run_id == run_id, HostLease.holder == holder)
        .values(expires_at=now + ttl)
        .returning(HostLease.host)
    )
    return result.scalar_one_or_none() is not None


def renew_all(session: Session, run_id: str, holder: str, ttl: timedelta, now: datetime) -> int:
    """Extend every lease ``holder`` has for ``run_id``: one statement per heartbeat, however many
    hosts a worker is busy with. Returns how many leases were renewed."""
    rows = session.execute(
        update(HostLease)
        .where(HostLease.run_id == run_id, HostLease.holder == holder)
        .values(expires_at=now + ttl)
        .returning(HostLease.host)
    ).all()
    return len(rows)


def release(session: Session, host: str, run_id: str, holder: str | None = None) -> bool:
    """Give the host's lease back if ``run_id`` (and ``holder``, when given) still holds it.

    A lease that expired and went to someone else is left alone. Returns whether one was removed.
    """
    statement = delete(HostLease).where(HostLease.host == host, HostLease.run_id == run_id)
    if holder is not None:
        statement = statement.where(HostLease.holder == holder)
    return bool(session.execute(statement.returning(HostLease.host)).all())


def release_run(session: Session, run_id: str) -> int:
    """Remove every lease of a finished run (its dead attempts' leftovers included)."""
    return len(
        session.execute(delete(HostLease).where(HostLease.run_id == run_id).returning(HostLease.host)).all()
    )


def get_lease(session: Session, host: str) -> Lease | None:
    """The host's lease row as it stands (it may have expired), or None."""
    row = session.execute(select(HostLease).where(HostLease.host == host)).scalar_one_or_none()
    if row is None:
        return None
    return Lease(row.host, row.run_id, row.holder, row.acquired_at, row.expires_at)


def leases_of(session: Session, run_id: str) -> dict[str, Lease]:
    """Every lease row of ``run_id`` by host, expired ones included."""
    rows = session.execute(select(HostLease).where(HostLease.run_id == run_id)).scalars()
    return {
        row.host: Lease(row.host, row.run_id, row.holder, row.acquired_at, row.expires_at) for row in rows
    }


__all__ = [
    "HeldBy",
    "Lease",
    "acquire",
    "get_lease",
    "leases_of",
    "release",
    "release_run",
    "renew",
    "renew_all",
]
