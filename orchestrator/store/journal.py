"""The action ledger: claim a (run, host, step) before acting on it.

Celery delivers at least once, so two workers can receive the same step. Whoever inserts the
journal row first owns the step; the other sees the claim fail and leaves the host alone. The
insert uses ``ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have it) so a lost race is an
ordinary result, not an exception that would abort the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from orchestrator.errors import StoreError
from orchestrator.store.engine import store_errors
from orchestrator.store.models import JournalEntry, StepState
from orchestrator.store.types import utcnow

_INSERTS: dict[str, Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def claim_step(
    session: Session, *, run_id: str, host: str, step: str, action: str, claimed_by: str | None = None
) -> int | None:
    """Claim a step in the session's transaction; the id of the new journal row, or None when the
    step was already claimed (by anyone, including an earlier attempt of this worker).

    The claim is visible to others once the caller commits; commit before acting on the host.
    """
    bind = session.get_bind()
    insert = _INSERTS.get(bind.dialect.name)
    if insert is None:
        raise StoreError(f"the action journal does not support {bind.dialect.name} databases")
    statement = (
        insert(JournalEntry)
        .values(
            run_id=run_id,
            host=host,
            step=step,
            action=action,
            state=StepState.CLAIMED.value,
            claimed_by=claimed_by,
            attempts=1,
            claimed_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["run_id", "host", "step"])
        .returning(JournalEntry.id)
    )
    with store_errors(bind.engine.url, "cannot claim a journal step"):
        return session.execute(statement).scalar_one_or_none()


@dataclass(frozen=True)
class JournalRecord:
    """One journal row as a value: a step of a run on one host, its state and what it changed."""

    id: int
    run_id: str
    host: str
    step: str
    action: str
    state: StepState
    attempts: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    error: str | None
    claimed_by: str | None
    claimed_at: datetime
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        """Applied or found already right: a retry must not act again."""
        return self.state in {StepState.APPLIED, StepState.UNCHANGED}


def journal_of(session: Session, run_id: str, host: str | None = None) -> tuple[JournalRecord, ...]:
    """The journal rows of a run (of one host), in the order they were claimed."""
    query = select(JournalEntry).where(JournalEntry.run_id == run_id)
    if host is not None:
        query = query.where(JournalEntry.host == host)
    rows = session.scalars(query.order_by(JournalEntry.id))
    return tuple(
        JournalRecord(
            id=row.id,
            run_id=row.run_id,
            host=row.host,
            step=row.step,
            action=row.action,
            state=StepState(row.state),
            attempts=row.attempts,
            before=row.before,
            after=row.after,
            error=row.error,
            claimed_by=row.claimed_by,
            claimed_at=row.claimed_at,
            finished_at=row.finished_at,
        )
        for row in rows
    )


def reclaim_step(session: Session, entry_id: int, *, claimed_by: str | None, from_state: StepState) -> bool:
    """Take over a step left ``claimed`` (half-done) or ``failed``: one more attempt, by us.

    Conditional on the state still being ``from_state``, so two takers cannot both win.
    """
    statement = (
        update(JournalEntry)
        .where(JournalEntry.id == entry_id, JournalEntry.state == from_state.value)
        .values(
            state=StepState.CLAIMED.value,
            claimed_by=claimed_by,
            attempts=JournalEntry.attempts + 1,
            claimed_at=utcnow(),
            finished_at=None,
            error=None,
        )
    )
    result = session.execute(statement)
    return bool(getattr(result, "rowcount", 0) == 1)


def finish_step(
    session: Session,
    entry_id: int,
    *,
    state: StepState,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record a claimed step's outcome (applied, unchanged, failed) or its rollback."""
    if state is StepState.CLAIMED:
        raise ValueError("a step is finished with an outcome, not claimed again")
    values: dict[str, Any] = {"state": state.value, "finished_at": utcnow(), "error": error}
    if state is not StepState.ROLLED_BACK:
        values |= {"before": before, "after": after}
    session.execute(update(JournalEntry).where(JournalEntry.id == entry_id).values(**values))


__all__ = ["JournalRecord", "claim_step", "finish_step", "journal_of", "reclaim_step"]
