"""Engine: runs as state machines (options, approval, pause, cancel, coordinator claim), their waves
and targets, and per-host leases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``runs.status`` widens to 32 characters for ``awaiting_approval`` and its CHECK constraint gains
``awaiting_approval`` and ``planned``. Existing runs (sweeps) get empty options and
``cancel_requested = false`` through server defaults that are dropped again afterwards, as in 0002.
Plain SQLAlchemy types only, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_RUN_STATUSES = ["pending", "running", "paused", "succeeded", "failed", "cancelled"]
NEW_RUN_STATUSES = [*OLD_RUN_STATUSES, "awaiting_approval", "planned"]
WAVE_KINDS = ["tenant", "canary", "wave"]
WAVE_STATUSES = ["pending", "running", "completed", "failed", "cancelled"]
TARGET_ROLES = ["endpoint", "rras", "ca", "tenant"]
TARGET_STATES = [
    "pending",
    "running",
    "succeeded",
    "unchanged",
    "failed",
    "verify_failed",
    "rolled_back",
    "refused",
    "skipped",
    "cancelled",
]


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable, astext_type=sa.Text()), "postgresql"
    )


def _ts(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    return sa.CheckConstraint(_in(column, values), name=op.f(f"ck_{table}_{column}"))


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"
    )


def _alter_runs() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.drop_constraint(op.f("ck_runs_status"), type_="check")
        runs.alter_column(
            "status", existing_type=sa.String(length=16), type_=sa.String(length=32), existing_nullable=False
        )
        runs.create_check_constraint(op.f("ck_runs_status"), _in("status", NEW_RUN_STATUSES))
        runs.add_column(sa.Column("options", _json(nullable=False), nullable=False, server_default="{}"))
        runs.add_column(sa.Column("approved_by", sa.String(length=255), nullable=True))
        runs.add_column(_ts("approved_at", nullable=True))
        runs.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))
        runs.add_column(sa.Column("status_message", sa.Text(), nullable=True))
        runs.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        runs.add_column(sa.Column("coordinator", sa.String(length=255), nullable=True))
        runs.add_column(_ts("coordinator_expires", nullable=True))
    # The defaults served existing rows only; new rows always carry both values (the models say so).
    with op.batch_alter_table("runs") as runs:
        runs.alter_column("options", server_default=None)
        runs.alter_column("cancel_requested", server_default=None)


def _create_run_waves() -> None:
    op.create_table(
        "run_waves",
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _one_of("run_waves", "kind", WAVE_KINDS),
        _one_of("run_waves", "status", WAVE_STATUSES),
        _run_fk("run_waves"),
        sa.PrimaryKeyConstraint("run_id", "number", name=op.f("pk_run_waves")),
    )


def _create_run_targets() -> None:
    op.create_table(
        "run_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("detail", _json(nullable=False), nullable=False),
        sa.Column("planned", _json(nullable=True), nullable=True),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _one_of("run_targets", "role", TARGET_ROLES),
        _one_of("run_targets", "state", TARGET_STATES),
        _run_fk("run_targets"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_targets")),
        sa.UniqueConstraint("run_id", "target", name=op.f("uq_run_targets_run_id_target")),
    )
    op.create_index(op.f("ix_run_targets_target"), "run_targets", ["target"])


def _create_host_leases() -> None:
    op.create_table(
        "host_leases",
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        _ts("acquired_at", nullable=False),
        _ts("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("host", name=op.f("pk_host_leases")),
    )
    op.create_index(op.f("ix_host_leases_run_id"), "host_leases", ["run_id"])


def upgrade() -> None:
    _alter_runs()
    _create_run_waves()
    _create_run_targets()
    _create_host_leases()


def downgrade() -> None:
    op.drop_table("host_leases")
    op.drop_table("run_targets")
    op.drop_table("run_waves")
    # runs in a status the old schema does not know end as cancelled: they never started
    op.execute(
        sa.text(f"UPDATE runs SET status = 'cancelled' WHERE status NOT IN ({', '.join(map(repr, OLD_RUN_STATUSES))})")
    )
    with op.batch_alter_table("runs") as runs:
        for column in (
            "coordinator_expires",
            "coordinator",
            "cancel_requested",
            "status_message",
            "pause_reason",
            "approved_at",
            "approved_by",
            "options",
        ):
            runs.drop_column(column)
        runs.drop_constraint(op.f("ck_runs_status"), type_="check")
        runs.alter_column(
            "status", existing_type=sa.String(length=32), type_=sa.String(length=16), existing_nullable=False
        )
        runs.create_check_constraint(op.f("ck_runs_status"), _in("status", OLD_RUN_STATUSES))
