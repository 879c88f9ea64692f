"""The action ledger: claim a (run, host, step) before acting on it.

Celery delivers at least once, so two workers can receive the same step. Whoever inserts the
journal row first owns the step; the other sees the claim fail and leaves the host alone. The
insert uses ``ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have it) so a lost race is an
ordinary result, not an exception that would abort the caller's transaction.
"""

from __future__ import annotations

from typing import Any

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


__all__ = ["claim_step"]
