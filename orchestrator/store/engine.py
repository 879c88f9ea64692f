"""Engines for the store: SQLite (the embedded default) or PostgreSQL through psycopg 3.

This is the edge where SQLAlchemy and driver exceptions become :class:`StoreError`; messages name
the database by its masked URL (``postgresql+psycopg://user:***@host/db``), never with a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from orchestrator.errors import ConfigError, StoreError

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another one before failing; workers write in short bursts."""

_BEGIN_OPTION = "fleetfix_sqlite_begin"


def parse_url(url: str | URL) -> URL:
    """Parse a store URL; bare ``postgresql://`` means psycopg 3, the driver fleetfix ships with."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            # the text may contain a password, so it is not repeated
            raise ConfigError("not a valid database URL", field="store_url") from None
    if url.drivername in {"postgresql", "postgres"}:
        url = url.set(drivername="postgresql+psycopg")
    return url


def mask_url(url: str | URL) -> str:
    """The URL as it may be shown to people and logs: the password replaced by ``***``."""
    return parse_url(url).render_as_string(hide_password=True)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def describe_error(exc: BaseException) -> str:
    """One line about what went wrong, from the driver's own message when there is one.

    SQLAlchemy's rendering appends the SQL statement and its parameters; the driver's first line
    says what matters without echoing data.
    """
    origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(origin).strip().splitlines()
    return lines[0] if lines else type(origin).__name__


@contextlib.contextmanager
def store_errors(url: str | URL, doing: str = "database error") -> Iterator[None]:
    """Translate SQLAlchemy and OS errors raised inside the block into StoreError."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"{doing} on {mask_url(url)}: {describe_error(exc)}") from exc
    except OSError as exc:
        raise StoreError(f"{doing} on {mask_url(url)}: {exc.strerror or exc}") from exc


def _prepare_sqlite_file(url: URL) -> None:
    """Create the directory of a file database; the data directory may not exist on first use."""
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return
    with store_errors(url, "cannot create the data directory"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling defers BEGIN until the first write, so a "transaction"
    # that reads first sees no consistent snapshot. Switching it off lets the begin hook below emit
    # a real BEGIN (the recipe from SQLAlchemy's SQLite dialect documentation).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; FULL would fsync every commit
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


def create_store_engine(url: str | URL, **kwargs: Any) -> Engine:
    """An engine for ``url`` set up for fleetfix: SQLite gets WAL, foreign keys and a busy timeout;
    PostgreSQL gets pre-ping so connections dropped by the server are replaced transparently.

    Creating an engine does not connect; the first use does, and may raise StoreError.
    """
    parsed = parse_url(url)
    try:
        if is_sqlite(parsed):
            _prepare_sqlite_file(parsed)
            engine = create_engine(parsed, **kwargs)
            event.listen(engine, "connect", _on_sqlite_connect)
            event.listen(engine, "begin", _on_sqlite_begin)
            return engine
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    except NoSuchModuleError:
        raise ConfigError(f"unsupported database driver {parsed.drivername!r}", field="store_url") from None
    except (ImportError, ArgumentError) as exc:
        raise ConfigError(f"cannot use {mask_url(parsed)}: {exc}", field="store_url") from None


def writer(engine: Engine) -> Engine:
    """The engine for transactions that read before they write.

    On SQLite their BEGIN takes the write lock up front (``BEGIN IMMEDIATE``); a deferred
    transaction that has read and then wants to write fails at once with "database is locked" when
    another writer got in between, instead of waiting. PostgreSQL ignores the option.
    """
    return engine.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})


__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "create_store_engine",
    "describe_error",
    "is_sqlite",
    "mask_url",
    "parse_url",
    "store_errors",
    "writer",
]
