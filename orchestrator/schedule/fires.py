"""The fire ledger: one ``schedule_fires`` row per (job, local date, slot), inserted before the job
runs, so a duplicate fire (a second beat, a restarted beat) does nothing.

:func:`record_fire` is ``INSERT ... ON CONFLICT DO NOTHING`` on the unique key: of two beats firing
the same job for the same local date, exactly one gets the row and runs the job; the other gets
None. The insert and its audit entry (``schedule.fire``) commit together. The job's outcome is
written later (:func:`finish_fire`, :func:`mark_dispatched`), by the beat or by a Celery worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orchestrator.engine.runs import write_transaction
from orchestrator.errors import InputError, StoreError
from orchestrator.schedule.jobs import Due, FireKey
from orchestrator.store.audit import append_audit
from orchestrator.store.db import Store
from orchestrator.store.models import FireStatus, ScheduleFire

AUDIT_FIRE = "schedule.fire"
AUDIT_DONE = "schedule.done"
IN_PROCESS = "in-process"
CELERY = "celery"
FINAL_STATUSES = frozenset({FireStatus.SUCCEEDED, FireStatus.FAILED, FireStatus.REFUSED})
_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class FireRecord:
    """One fire as the store holds it."""

    id: int
    job: str
    kind: str
    local_date: date
    slot: str
    timezone: str
    scheduled_at: datetime
    fired_at: datetime
    fired_by: str
    status: FireStatus
    dispatch: str
    run_id: str | None
    task_id: str | None
    message: str | None
    summary: dict[str, Any] | None
    finished_at: datetime | None

    @property
    def key(self) -> FireKey:
        return FireKey(self.job, self.local_date, self.slot)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job": self.job,
            "kind": self.kind,
            "local_date": self.local_date.isoformat(),
            "slot": self.slot or None,
            "timezone": self.timezone,
            "scheduled_at": _iso(self.scheduled_at),
            "fired_at": _iso(self.fired_at),
            "fired_by": self.fired_by,
            "status": self.status.value,
            "dispatch": self.dispatch,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "message": self.message,
            "finished_at": _iso(self.finished_at),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _record(row: ScheduleFire) -> FireRecord:
    return FireRecord(
        id=row.id,
        job=row.job,
        kind=row.kind,
        local_date=row.local_date,
        slot=row.slot,
        timezone=row.timezone,
        scheduled_at=row.scheduled_at,
        fired_at=row.fired_at,
        fired_by=row.fired_by,
        status=FireStatus(row.status),
        dispatch=row.dispatch,
        run_id=row.run_id,
        task_id=row.task_id,
        message=row.message,
        summary=row.summary,
        finished_at=row.finished_at,
    )


def record_fire(
    store: Store,
    due: Due,
    *,
    fired_by: str,
    dispatch: str,
    at: datetime,
    status: FireStatus = FireStatus.RUNNING,
) -> FireRecord | None:
    """Record the fire of ``due`` (by this beat, now); None when its key is already recorded.

    Exactly one of any number of concurrent callers with the same key gets the record.
    """
    key = due.key
    values = {
        "job": key.job,
        "kind": due.job.kind,
        "local_date": key.local_date,
        "slot": key.slot,
        "timezone": due.job.zone.key,
        "scheduled_at": due.occurrence.at,
        "fired_at": at,
        "fired_by": fired_by,
        "status": status.value,
        "dispatch": dispatch,
    }
    with write_transaction(store) as session:
        dialect = session.get_bind().dialect.name
        insert = _INSERTS.get(dialect)
        if insert is None:
            raise StoreError(f"the schedule does not support {dialect} databases")
        fire_id = session.execute(
            insert(ScheduleFire)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["job", "local_date", "slot"])
            .returning(ScheduleFire.id)
        ).scalar_one_or_none()
        if fire_id is None:
            return None
        row = session.execute(select(ScheduleFire).where(ScheduleFire.id == fire_id)).scalar_one()
        append_audit(
            session,
            fired_by,
            AUDIT_FIRE,
            str(key),
            {
                "job": key.job,
                "kind": due.job.kind,
                "local_date": key.local_date.isoformat(),
                "slot": key.slot or None,
                "timezone": due.job.zone.key,
                "scheduled_at": due.occurrence.at.isoformat(),
                "dispatch": dispatch,
            },
        )
        return _record(row)


def _load(session: Any, fire_id: int) -> ScheduleFire:
    row = session.get(ScheduleFire, fire_id, with_for_update=True)
    if row is None:
        raise InputError(f"no scheduled fire {fire_id}", field="fire")
    return row  # type: ignore[no-any-return]


def finish_fire(
    store: Store,
    fire_id: int,
    status: FireStatus,
    *,
    at: datetime,
    actor: str,
    message: str | None = None,
    summary: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> FireRecord:
    """Record how a fire ended (``succeeded``, ``failed`` or ``refused``), audited ``schedule.done``.

    A fire that already ended keeps its first outcome (a duplicate delivery of the job's Celery
    task must not overwrite it); the stored record is returned either way.
    """
    if status not in FINAL_STATUSES:
        raise InputError(f"{status.value} is not how a fire ends", field="status")
    with write_transaction(store) as session:
        row = _load(session, fire_id)
        if FireStatus(row.status) in FINAL_STATUSES:
            return _record(row)
        row.status = status.value
        row.message = message
        row.summary = summary
        row.run_id = run_id or row.run_id
        row.finished_at = at
        append_audit(
            session,
            actor,
            AUDIT_DONE,
            str(FireKey(row.job, row.local_date, row.slot)),
            {"status": status.value, "run_id": row.run_id, "message": message},
        )
        session.flush()
        return _record(row)


def mark_dispatched(
    store: Store, fire_id: int, *, task_id: str | None, run_id: str | None = None
) -> FireRecord:
    """The fire's job was sent to the Celery workers (``task_id``; ``run_id`` when the beat created
    the run itself)."""
    with write_transaction(store) as session:
        row = _load(session, fire_id)
        if FireStatus(row.status) not in FINAL_STATUSES:
            row.status = FireStatus.DISPATCHED.value
        row.task_id = task_id
        row.run_id = run_id or row.run_id
        session.flush()
        return _record(row)


def find_fire(store: Store, key: FireKey) -> FireRecord | None:
    with store.transaction() as session:
        row = session.execute(
            select(ScheduleFire).where(
                ScheduleFire.job == key.job,
                ScheduleFire.local_date == key.local_date,
                ScheduleFire.slot == key.slot,
            )
        ).scalar_one_or_none()
        return None if row is None else _record(row)


def latest_fires(store: Store) -> dict[str, FireRecord]:
    """Each job's most recent fire (by scheduled time)."""
    with store.transaction() as session:
        newest = (
            select(ScheduleFire.job, func.max(ScheduleFire.scheduled_at).label("at"))
            .group_by(ScheduleFire.job)
            .subquery()
        )
        rows = session.execute(
            select(ScheduleFire).join(
                newest, (ScheduleFire.job == newest.c.job) & (ScheduleFire.scheduled_at == newest.c.at)
            )
        ).scalars()
        found: dict[str, FireRecord] = {}
        for row in rows:
            record = _record(row)
            if record.job not in found or record.id > found[record.job].id:
                found[record.job] = record
        return found


def list_fires(store: Store, *, job: str | None = None, limit: int = 50) -> list[FireRecord]:
    """Fires, newest first."""
    with store.transaction() as session:
        query = select(ScheduleFire).order_by(ScheduleFire.scheduled_at.desc(), ScheduleFire.id.desc())
        if job is not None:
            query = query.where(ScheduleFire.job == job)
        return [_record(row) for row in session.execute(query.limit(limit)).scalars()]


def set_run(store: Store, fire_id: int, run_id: str) -> None:
    """Note the run a fire started (as soon as it exists, so a crash mid-job still names it)."""
    with write_transaction(store) as session:
        session.execute(update(ScheduleFire).where(ScheduleFire.id == fire_id).values(run_id=run_id))


__all__ = [
    "AUDIT_DONE",
    "AUDIT_FIRE",
    "CELERY",
    "IN_PROCESS",
    "FireRecord",
    "find_fire",
    "finish_fire",
    "latest_fires",
    "list_fires",
    "mark_dispatched",
    "record_fire",
    "set_run",
]
