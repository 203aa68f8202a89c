"""Async engine construction for the two supported ledger backends.

SQLite is the embedded default and may be shared by several dispatcher
processes, so every connection gets WAL (readers never block the writer) and
a busy timeout (writers queue instead of failing with "database is locked").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 10
COMMAND_TIMEOUT_SECONDS = 30
POOL_TIMEOUT_SECONDS = 15

# Plain scheme -> the async driver the ledger is written for.
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
}
_SUPPORTED = {"sqlite+aiosqlite", "postgresql+asyncpg"}


def ledger_url(dsn: str) -> URL:
    """Parse ``dsn`` and switch a plain scheme to its async driver."""
    url = make_url(dsn)
    url = url.set(drivername=_ASYNC_DRIVERS.get(url.drivername, url.drivername))
    if url.drivername not in _SUPPORTED:
        raise ValueError(
            f"unsupported ledger DSN scheme {url.drivername!r}; "
            "use sqlite+aiosqlite:///path or postgresql+asyncpg://..."
        )
    return url


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def is_sqlite_memory(url: URL) -> bool:
    return is_sqlite(url) and (url.database or ":memory:") == ":memory:"


def create_ledger_engine(url: URL) -> AsyncEngine:
    """Pooled engine used for all ledger reads and writes."""
    if not is_sqlite(url):
        # READ COMMITTED pinned: a concurrent "UPDATE ... WHERE metered_at IS
        # NULL" then re-checks the committed row and matches nothing, instead
        # of failing with a serialization error under a stricter server default.
        # pre_ping: a long-lived dispatcher must survive server restarts.
        # Timeouts: a cut network must fail a call in seconds, not hang a loop until TCP gives up.
        return create_async_engine(
            url, pool_pre_ping=True, isolation_level="READ COMMITTED", pool_timeout=POOL_TIMEOUT_SECONDS,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": COMMAND_TIMEOUT_SECONDS},
        )
    ensure_sqlite_directory(url)
    engine = create_async_engine(url, connect_args=_sqlite_connect_args())
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    return engine


def create_sqlite_migration_engine(url: URL) -> AsyncEngine:
    """Single-use SQLite engine whose transactions start with ``BEGIN IMMEDIATE``.

    ``BEGIN IMMEDIATE`` takes the database write lock up front, so a second
    process running migrations waits (busy timeout) until the first has
    committed, then finds the schema already at head. The driver's own
    implicit BEGIN is disabled so SQLAlchemy controls the transaction.
    """
    engine = create_async_engine(url, poolclass=NullPool, connect_args=_sqlite_connect_args())
    event.listen(engine.sync_engine, "connect", _configure_sqlite_connection)
    event.listen(engine.sync_engine, "connect", _disable_driver_transactions)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def ensure_sqlite_directory(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_connect_args() -> dict[str, Any]:
    # sqlite3's own busy handler; also covers the very first statements.
    return {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        _use_wal(cursor)
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent; a no-op once it is), waiting out other connections.

    Entering WAL needs an exclusive lock, and SQLite may answer "database is locked" at once
    instead of calling the busy handler (two connections opening a new ledger together, seen
    on a loaded machine): so retry for as long as the busy timeout would have waited. This
    runs in the driver's thread, where sleeping blocks no event loop.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the driver's OperationalError, however the adapter wraps it
            if "database is locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _disable_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
