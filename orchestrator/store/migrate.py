"""Alembic, driven from code: no ``alembic.ini`` is needed at runtime.

The migration scripts live in ``orchestrator/store/migrations`` and ship inside the package. Every
migration runs in one transaction on a connection fleetfix opened, holding a lock so that two
processes starting at once (two workers on a fresh SQLite file) cannot both migrate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from orchestrator.errors import StoreError
from orchestrator.store.engine import create_store_engine, mask_url, store_errors, writer

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# An arbitrary constant shared by every fleetfix process: the PostgreSQL advisory lock key that
# serialises migrations.
_PG_MIGRATION_LOCK = 0x666C_6678


@dataclass(frozen=True)
class MigrationResult:
    """What ``upgrade`` did. ``before`` is None for an empty database."""

    url: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for fleetfix's migrations, bound to ``connection`` (see ``env.py``)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this fleetfix ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise StoreError("fleetfix ships no database migrations")
    return head


def _known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, None for an empty database. Raises StoreError when unreachable."""
    with store_errors(engine.url, "cannot read the schema revision"), engine.connect() as connection:
        return revision_of(connection)


def check_known(revision: str | None, url: URL) -> None:
    """Refuse a database migrated by a newer fleetfix: this one does not know its schema."""
    if revision is not None and revision not in _known_revisions():
        raise StoreError(
            f"the database {mask_url(url)} is at schema revision {revision}, which this fleetfix "
            f"does not know (its newest is {head_revision()}); upgrade fleetfix"
        )


def _lock_for_migration(connection: Connection) -> None:
    # SQLite: the transaction was opened with BEGIN IMMEDIATE (see `writer`), which is the lock.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def upgrade_engine(engine: Engine, target: str = "head") -> MigrationResult:
    """Migrate the database behind ``engine`` to ``target``."""
    with store_errors(engine.url, "migration failed"), writer(engine).begin() as connection:
        _lock_for_migration(connection)
        before = revision_of(connection)  # read under the lock: another process may have migrated
        check_known(before, engine.url)
        if target == "head" and before == head_revision():
            return MigrationResult(url=mask_url(engine.url), before=before, after=before)
        try:
            command.upgrade(alembic_config(connection), target)
        except CommandError as exc:
            raise StoreError(f"migration failed on {mask_url(engine.url)}: {exc}") from exc
        after = revision_of(connection)
    return MigrationResult(url=mask_url(engine.url), before=before, after=after)


def upgrade(url: str | URL, target: str = "head") -> MigrationResult:
    """Migrate the database at ``url`` to ``target`` (default: the newest revision)."""
    engine = create_store_engine(url)
    try:
        return upgrade_engine(engine, target)
    finally:
        engine.dispose()


def make_revision(url: str | URL, message: str) -> None:
    """For fleetfix developers: write a new revision from the difference between the models and the
    database at ``url`` (migrate that database to head first). Review the generated file; Alembic
    does not see CHECK constraints or triggers."""
    engine = create_store_engine(url)
    try:
        with engine.begin() as connection:
            rev_id = f"{len(_known_revisions()) + 1:04d}"  # revisions are numbered 0001, 0002, ...
            command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=rev_id)
    finally:
        engine.dispose()


__all__ = [
    "MIGRATIONS_DIR",
    "MigrationResult",
    "alembic_config",
    "check_known",
    "current_revision",
    "head_revision",
    "make_revision",
    "revision_of",
    "upgrade",
    "upgrade_engine",
]
