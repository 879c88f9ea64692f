"""Fixtures for report tests: a migrated SQLite store (both backends where the queries matter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from orchestrator.store import Store, create_store_engine, upgrade


@pytest.fixture
def store(store_engine: Engine) -> Store:
    """A store on each backend (SQLite and PostgreSQL)."""
    return Store.from_engine(store_engine)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite only, for tests about rendering rather than queries."""
    url = f"sqlite:///{tmp_path / 'data' / 'fleetfix.db'}"
    upgrade(url)
    engine = create_store_engine(url)
    yield Store.from_engine(engine)
    engine.dispose()
