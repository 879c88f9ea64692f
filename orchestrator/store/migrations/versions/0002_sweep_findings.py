"""Sweeps: a run's summary and fleet-wide facts; a finding's title, subject, reason and advice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Findings written before this revision get an empty title and subject (server defaults), which is
what a check that yields one finding per host would have stored anyway. Plain SQLAlchemy types
only, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"
    )


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table beyond adding columns, and keeps constraints this way
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("summary", _json(), nullable=True))
        runs.add_column(sa.Column("fleet_facts", _json(), nullable=True))
    with op.batch_alter_table("findings") as findings:
        findings.add_column(sa.Column("title", sa.Text(), nullable=False, server_default=""))
        findings.add_column(sa.Column("subject", sa.Text(), nullable=False, server_default=""))
        findings.add_column(sa.Column("reason", sa.String(length=64), nullable=True))
        findings.add_column(sa.Column("advice", sa.Text(), nullable=True))
    # The defaults served old rows only; new rows always carry both values (the models say so).
    with op.batch_alter_table("findings") as findings:
        findings.alter_column("title", server_default=None)
        findings.alter_column("subject", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("findings") as findings:
        for column in ("advice", "reason", "subject", "title"):
            findings.drop_column(column)
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("fleet_facts")
        runs.drop_column("summary")
