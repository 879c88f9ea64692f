"""Fixtures for the Celery tests: the engine's store and clock, this session's queue prefix (its
queues deleted at the end), a fresh PostgreSQL database per module."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.celery.support import REDIS_URL, delete_redis_queues, session_prefix
from tests.conftest import POSTGRES_ADMIN_DEFAULT, POSTGRES_ADMIN_ENV
from tests.engine.conftest import clock, store  # noqa: F401 (fixtures shared with the engine's tests)


@pytest.fixture(scope="session")
def queue_prefix() -> Iterator[str]:
    prefix = session_prefix()
    yield prefix
    delete_redis_queues(REDIS_URL, prefix)


@pytest.fixture(scope="module")
def module_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the module, dropped at its end (several workers share it)."""
    admin_url = make_url(os.environ.get(POSTGRES_ADMIN_ENV, POSTGRES_ADMIN_DEFAULT))
    name = f"fleetfix_celery_{secrets.token_hex(5)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def shared_store(module_database: str) -> str:
    """The module's PostgreSQL database, migrated (workers refuse a store that is behind)."""
    from orchestrator.store import upgrade  # noqa: PLC0415

    upgrade(module_database)
    return module_database
