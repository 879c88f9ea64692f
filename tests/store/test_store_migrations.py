"""Migrations: from empty to head on both backends, models equal to migrations, opening the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select
from sqlalchemy.engine import Engine

from orchestrator.config import Settings
from orchestrator.errors import ConfigError, StoreError
from orchestrator.store import (
    AuditHead,
    Base,
    create_store_engine,
    current_revision,
    head_revision,
    mask_url,
    open_store,
    upgrade,
)
from orchestrator.store.migrate import alembic_config
from orchestrator.store.models import GENESIS_HASH

TABLES = {"runs", "host_results", "findings", "action_journal", "audit_log", "audit_head", "alembic_version"}
# the engine's tables (migration 0003)
TABLES |= {"run_waves", "run_targets", "host_leases"}
# the distributed sweep's ledger (migration 0004)
TABLES |= {"collected_hosts"}
# the schedule (migration 0005)
TABLES |= {"schedule_fires", "beat_leases"}


def settings_for(url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", store_url=url)


def test_upgrade_from_empty_creates_every_table(db_url: str) -> None:
    result = upgrade(db_url)
    assert (result.before, result.after, result.changed) == (None, head_revision(), True)
    engine = create_store_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
        assert current_revision(engine) == head_revision()
        with engine.connect() as connection:
            head = connection.execute(select(AuditHead.id, AuditHead.last_seq, AuditHead.last_hash)).all()
        assert [tuple(row) for row in head] == [(1, 0, GENESIS_HASH)]
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(db_url: str) -> None:
    upgrade(db_url)
    again = upgrade(db_url)
    assert (again.before, again.after, again.changed) == (head_revision(), head_revision(), False)


def test_models_match_migrations(store_engine: Engine) -> None:
    """Autogenerate finds no difference: the migrations create exactly what the models declare."""
    with store_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_removes_everything(store_engine: Engine) -> None:
    with store_engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert set(inspect(store_engine).get_table_names()) == {"alembic_version"}
    assert current_revision(store_engine) is None


def test_open_store_migrates_sqlite_on_first_use(sqlite_url: str, tmp_path: Path) -> None:
    with open_store(settings_for(sqlite_url, tmp_path)) as store:
        assert current_revision(store.engine) == head_revision()
        assert store.engine.dialect.name == "sqlite"
        with store.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            }
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30000}


def test_open_store_refuses_a_postgres_schema_that_is_behind(postgresql_url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"run `fleetfix db upgrade`"):
        open_store(settings_for(postgresql_url, tmp_path))
    upgrade(postgresql_url)
    with open_store(settings_for(postgresql_url, tmp_path)) as store:
        assert current_revision(store.engine) == head_revision()


def test_a_schema_newer_than_this_fleetfix_is_refused(db_url: str, tmp_path: Path) -> None:
    upgrade(db_url)
    engine = create_store_engine(db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    engine.dispose()
    with pytest.raises(StoreError, match=r"revision 9999, which this fleetfix does not know"):
        open_store(settings_for(db_url, tmp_path))
    with pytest.raises(StoreError, match=r"upgrade fleetfix"):
        upgrade(db_url)


def test_unreachable_database_names_the_url_without_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://fleet:hunter2-secret@127.0.0.1:1/fleetfix"
    with pytest.raises(StoreError) as caught:
        open_store(settings_for(url, tmp_path))
    message = str(caught.value)
    assert "hunter2-secret" not in message
    assert "postgresql+psycopg://fleet:***@127.0.0.1:1/fleetfix" in message


def test_sqlite_data_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    with pytest.raises(StoreError, match="cannot create the data directory"):
        create_store_engine(f"sqlite:///{tmp_path / 'a-file' / 'data' / 'fleetfix.db'}")


def test_bare_postgresql_url_means_psycopg() -> None:
    assert mask_url("postgresql://u:p@db/x") == "postgresql+psycopg://u:***@db/x"


@pytest.mark.parametrize(
    ("url", "message"),
    [("not a url", "not a valid database URL"), ("oracle+nosuch://x/y", "unsupported database driver")],
)
def test_bad_store_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        create_store_engine(url)
