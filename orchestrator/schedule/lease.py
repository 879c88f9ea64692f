"""The beat's lease: one ``fleetfix beat`` at a time fires the schedule.

A row in ``beat_leases`` names the holder (``host:pid:nonce``) and when its lease ends. A beat takes
the lease when it is free or expired and renews it every ``ttl / 3`` (:class:`LeaseKeeper`); a second
beat finds it held and stands by (or exits); a beat that crashed stops renewing and its lease
expires after at most ``ttl``, when a standby takes over. The store is the lock, so the embedded
default (SQLite, no broker) and a fleet on PostgreSQL work alike.

Race-free on both backends, as the host leases are (orchestrator.engine.leases): the free case is
``INSERT ... ON CONFLICT DO NOTHING``, the takeover one ``UPDATE ... WHERE expired OR mine``;
PostgreSQL re-checks that condition on the row it waited for, and SQLite serialises writers.

The lease is an optimisation against duplicate *work*, not the guarantee against duplicate fires:
that is the fire ledger's unique key (a beat frozen longer than its ttl may wake up next to its
successor; both then try the same key and one of them wins).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.engine.runs import write_transaction
from orchestrator.errors import FleetfixError, StoreError
from orchestrator.store.db import Store
from orchestrator.store.models import BeatLease

log = logging.getLogger("fleetfix.schedule")

SCHEDULE_LEASE = "schedule"
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class LeaseState:
    """The lease as a caller sees it: ``mine`` when the caller holds it."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    mine: bool

    def describe(self) -> str:
        until = self.expires_at.isoformat(timespec="seconds")
        return f"{self.holder} holds the schedule lease until {until}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "holder": self.holder,
            "mine": self.mine,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
        }


def _state(row: BeatLease, holder: str) -> LeaseState:
    return LeaseState(row.name, row.holder, row.acquired_at, row.expires_at, row.holder == holder)


def acquire_lease(
    store: Store, holder: str, ttl: timedelta, now: datetime, *, name: str = SCHEDULE_LEASE
) -> LeaseState:
    """Take (or keep) the lease when it is free, expired or already ``holder``'s; the state either
    way (``mine`` says whether the caller holds it now)."""
    expires = now + ttl
    with write_transaction(store) as session:
        dialect = session.get_bind().dialect.name
        insert = _INSERTS.get(dialect)
        if insert is None:
            raise StoreError(f"the beat lease does not support {dialect} databases")
        inserted = session.execute(
            insert(BeatLease)
            .values(name=name, holder=holder, acquired_at=now, expires_at=expires)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(BeatLease.name)
        ).scalar_one_or_none()
        if inserted is None:
            current = session.execute(select(BeatLease.holder).where(BeatLease.name == name)).scalar_one()
            # a holder renewing keeps its acquired_at; a takeover starts a new one
            values: dict[str, Any] = {"holder": holder, "expires_at": expires}
            if current != holder:
                values["acquired_at"] = now
            session.execute(
                update(BeatLease)
                .where(
                    BeatLease.name == name,
                    or_(BeatLease.expires_at <= now, BeatLease.holder == holder),
                )
                .values(**values)
            )
        row = session.execute(select(BeatLease).where(BeatLease.name == name)).scalar_one()
        return _state(row, holder)


def renew_lease(
    store: Store, holder: str, ttl: timedelta, now: datetime, *, name: str = SCHEDULE_LEASE
) -> bool:
    """Extend ``holder``'s lease to ``now + ttl``; False when someone else holds it now."""
    with write_transaction(store) as session:
        renewed = session.execute(
            update(BeatLease)
            .where(BeatLease.name == name, BeatLease.holder == holder)
            .values(expires_at=now + ttl)
            .returning(BeatLease.name)
        ).scalar_one_or_none()
        return renewed is not None


def release_lease(store: Store, holder: str, *, name: str = SCHEDULE_LEASE) -> None:
    """Give the lease up (a clean exit), so a standby takes over at once rather than after ttl."""
    with write_transaction(store) as session:
        session.execute(delete(BeatLease).where(BeatLease.name == name, BeatLease.holder == holder))


def read_lease(store: Store, *, holder: str = "", name: str = SCHEDULE_LEASE) -> LeaseState | None:
    with store.transaction() as session:
        row = session.execute(select(BeatLease).where(BeatLease.name == name)).scalar_one_or_none()
        return None if row is None else _state(row, holder)


class LeaseKeeper:
    """Renews a held lease every ``ttl / 3`` in a daemon thread, so a job the beat runs in-process
    (a sweep of thousands of hosts) does not let the lease lapse. ``held`` turns False when a
    renewal finds the lease taken (this beat was frozen longer than ttl)."""

    def __init__(
        self,
        store: Store,
        holder: str,
        ttl: timedelta,
        clock: Callable[[], datetime],
        *,
        name: str = SCHEDULE_LEASE,
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.name = name
        self._stop = threading.Event()
        self._held = threading.Event()
        self._held.set()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._held.is_set()

    def renew(self) -> bool:
        try:
            kept = renew_lease(self.store, self.holder, self.ttl, self.clock(), name=self.name)
        except FleetfixError as exc:  # a store hiccup: try again next time, the lease has slack
            log.warning("could not renew the schedule lease: %s", exc)
            return self.held
        if not kept:
            if self.held:
                log.error("lost the schedule lease: another beat took it over (this one was stalled)")
            self._held.clear()
        return kept

    def start(self) -> LeaseKeeper:
        self._thread = threading.Thread(target=self._run, name="fleetfix-beat-lease", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        interval = self.ttl.total_seconds() / 3
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


__all__ = [
    "SCHEDULE_LEASE",
    "LeaseKeeper",
    "LeaseState",
    "acquire_lease",
    "read_lease",
    "release_lease",
    "renew_lease",
]
