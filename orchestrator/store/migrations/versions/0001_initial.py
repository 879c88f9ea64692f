"""Initial schema: runs, host results, findings, the action journal and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Plain SQLAlchemy types only (no imports from the application), so this revision keeps meaning the
same thing when the models change. Constraint names follow ``models.NAMING_CONVENTION``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64

# Append-only audit log, enforced by the database so that a bug or a careless script cannot rewrite
# history. Someone with DDL rights can still drop these; the hash chain is what catches that.
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_log_append_only_{verb.lower()} BEFORE {verb} ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: {verb} refused'); END"""
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_TRIGGERS = [
    """CREATE FUNCTION fleetfix_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
    END
    $$""",
    """CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION fleetfix_audit_log_append_only()""",
    """CREATE TRIGGER audit_log_append_only_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION fleetfix_audit_log_append_only()""",
]


def _json(*, nullable: bool) -> sa.types.TypeEngine[Any]:
    return sa.JSON(none_as_null=nullable).with_variant(
        postgresql.JSONB(none_as_null=nullable, astext_type=sa.Text()), "postgresql"
    )


def _ts(name: str, *, nullable: bool) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"
    )


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def _create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("playbook_id", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("parameters", _json(nullable=False), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("executor", sa.String(length=16), nullable=False),
        _ts("created_at", nullable=False),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _one_of("runs", "kind", ["sweep", "playbook"]),
        _one_of("runs", "status", ["pending", "running", "paused", "succeeded", "failed", "cancelled"]),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_kind_created_at"), "runs", ["kind", "created_at"])
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])


def _create_host_results() -> None:
    op.create_table(
        "host_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_kind", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("facts", _json(nullable=True), nullable=True),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        _one_of("host_results", "status", ["ok", "failed", "unreachable", "skipped"]),
        _run_fk("host_results"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_host_results")),
        sa.UniqueConstraint("run_id", "host", name=op.f("uq_host_results_run_id_host")),
    )
    op.create_index(op.f("ix_host_results_host"), "host_results", ["host"])


def _create_findings() -> None:
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("check_id", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("evidence", _json(nullable=False), nullable=False),
        sa.Column("error_codes", _json(nullable=False), nullable=False),
        sa.Column("playbook", sa.String(length=100), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        _ts("observed_at", nullable=False),
        _run_fk("findings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_findings")),
        sa.UniqueConstraint("run_id", "fingerprint", name=op.f("uq_findings_run_id_fingerprint")),
    )
    op.create_index(op.f("ix_findings_fingerprint"), "findings", ["fingerprint"])
    op.create_index(op.f("ix_findings_host_check_id"), "findings", ["host", "check_id"])


def _create_action_journal() -> None:
    op.create_table(
        "action_journal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("before", _json(nullable=True), nullable=True),
        sa.Column("after", _json(nullable=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("claimed_at", nullable=False),
        _ts("finished_at", nullable=True),
        _one_of("action_journal", "state", ["claimed", "applied", "unchanged", "failed", "rolled_back"]),
        _run_fk("action_journal"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_journal")),
        sa.UniqueConstraint("run_id", "host", "step", name=op.f("uq_action_journal_run_id_host_step")),
    )


def _create_audit() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _ts("ts", nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=True),
        # plain json, not jsonb: the text must read back exactly as hashed
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "last_seq": 0, "last_hash": GENESIS_HASH}])
    triggers = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def upgrade() -> None:
    _create_runs()
    _create_host_results()
    _create_findings()
    _create_action_journal()
    _create_audit()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION fleetfix_audit_log_append_only() CASCADE")
    for table in ("audit_head", "audit_log", "action_journal", "findings", "host_results", "runs"):
        op.drop_table(table)
