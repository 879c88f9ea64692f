"""Distributed sweeps: ``collected_hosts``, the ledger Celery workers write a sweep's host results to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

One row per (collection, host), written by a ``collect_batch`` task as hosts finish and read back by
the sweep's coordinator, which then completes the sweep into ``host_results`` and ``findings`` and
deletes the rows. Plain SQLAlchemy types only, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable, astext_type=sa.Text()), "postgresql"
    )


def _ts(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "collected_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("facts", _json(nullable=True), nullable=True),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("script_errors", _json(nullable=False), nullable=False),
        _ts("started_at", nullable=False),
        _ts("finished_at", nullable=False),
        sa.Column("elapsed_s", sa.Float(), nullable=False),
        sa.Column("collected_by", sa.String(length=255), nullable=False),
        _ts("written_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_collected_hosts")),
        sa.UniqueConstraint("collection", "host", name=op.f("uq_collected_hosts_collection_host")),
    )
    op.create_index(op.f("ix_collected_hosts_written_at"), "collected_hosts", ["written_at"])


def downgrade() -> None:
    op.drop_table("collected_hosts")
