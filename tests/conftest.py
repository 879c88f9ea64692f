"""Shared fixtures: a database for each store backend.

``db_url`` runs a test twice, on a SQLite file in ``tmp_path`` and on a fresh PostgreSQL database
``fleetfix_test_<random>`` that is dropped afterwards. The server is at
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres`` unless ``FLEETFIX_TEST_POSTGRES_URL``
names another admin URL. An unreachable server fails the tests rather than skipping them: CI has
one, and a silently skipped backend is an untested backend.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from orchestrator.store import create_store_engine, upgrade
from tests.clirun import Cli

POSTGRES_ADMIN_ENV = "FLEETFIX_TEST_POSTGRES_URL"
POSTGRES_ADMIN_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    # a directory that does not exist yet: creating it is part of what the store does
    return f"sqlite:///{tmp_path / 'data' / 'fleetfix.db'}"


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    admin_url = make_url(os.environ.get(POSTGRES_ADMIN_ENV, POSTGRES_ADMIN_DEFAULT))
    name = f"fleetfix_test_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is not reachable "
            f"({exc.orig}); start it or set {POSTGRES_ADMIN_ENV}",
            pytrace=False,
        )
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def store_engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest revision."""
    upgrade(db_url)
    engine = create_store_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """The console script's environment: no FLEETFIX_* of the developer's shell, a throwaway home."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "COLUMNS": "200",
    }


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str]) -> Cli:
    """The installed ``fleetfix`` run in ``tmp_path`` with ``cli_env``."""
    return Cli(tmp_path, cli_env)
