"""Schedule: ``schedule_fires``, the ledger of scheduled jobs' fires keyed by (job, local date, slot),
and ``beat_leases``, the lease that lets one ``fleetfix beat`` at a time fire the schedule.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09

Plain SQLAlchemy types only, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ["sweep", "playbook"]
FIRE_STATUSES = ["running", "dispatched", "succeeded", "failed", "refused"]


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable, astext_type=sa.Text()), "postgresql"
    )


def _ts(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(repr(value) for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("slot", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        _ts("scheduled_at", nullable=False),
        _ts("fired_at", nullable=False),
        sa.Column("fired_by", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dispatch", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("summary", _json(nullable=True), nullable=True),
        _ts("finished_at", nullable=True),
        _one_of("schedule_fires", "kind", KINDS),
        _one_of("schedule_fires", "status", FIRE_STATUSES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint("job", "local_date", "slot", name=op.f("uq_schedule_fires_job_local_date_slot")),
    )
    op.create_index(op.f("ix_schedule_fires_job_scheduled_at"), "schedule_fires", ["job", "scheduled_at"])
    op.create_table(
        "beat_leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        _ts("acquired_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_beat_leases")),
    )


def downgrade() -> None:
    op.drop_table("beat_leases")
    op.drop_index(op.f("ix_schedule_fires_job_scheduled_at"), table_name="schedule_fires")
    op.drop_table("schedule_fires")
