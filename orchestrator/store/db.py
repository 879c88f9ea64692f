"""Opening the store: the one call the rest of fleetfix makes to get at the database."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.config import Settings
from orchestrator.errors import StoreError
from orchestrator.store.engine import create_store_engine, is_sqlite, mask_url, store_errors
from orchestrator.store.migrate import check_known, current_revision, head_revision, upgrade_engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: callers turn rows into immutable values afterwards.
    return sessionmaker(engine, expire_on_commit=False)


@dataclass(frozen=True)
class Store:
    """An engine plus its session factory. Close it (or use ``with``) to release connections."""

    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @classmethod
    def from_engine(cls, engine: Engine) -> Store:
        return cls(engine=engine, sessions=session_factory(engine))

    @property
    def url(self) -> str:
        """The database URL with the password masked, fit for messages."""
        return mask_url(self.engine.url)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on an exception;
        database errors come out as StoreError."""
        with store_errors(self.engine.url), self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def ensure_current(engine: Engine) -> None:
    """Raise StoreError unless the schema is at this fleetfix's newest revision."""
    current = current_revision(engine)
    check_known(current, engine.url)
    head = head_revision()
    if current != head:
        raise StoreError(
            f"the database {mask_url(engine.url)} is at schema revision {current or '(empty)'}, "
            f"this fleetfix needs {head}: run `fleetfix db upgrade`"
        )


def open_store(settings: Settings) -> Store:
    """Open the configured store, ready for use.

    SQLite (the single-machine default) is migrated on the spot. A shared PostgreSQL is not: other
    workers may run an older fleetfix against it, so upgrading is an explicit admin step and a
    schema that is behind raises StoreError saying so. An unreachable database raises StoreError.
    """
    engine = create_store_engine(settings.store_url_resolved)
    try:
        if is_sqlite(engine.url):
            # a plain read first: only a store that is behind takes the write lock to migrate
            if current_revision(engine) != head_revision():
                upgrade_engine(engine)
        else:
            ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store.from_engine(engine)


__all__ = ["Store", "ensure_current", "open_store", "session_factory"]
