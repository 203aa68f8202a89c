"""Ledger fixtures: every ledger test runs on SQLite and, when it is reachable, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from dispatcher.ledger import Ledger
from dispatcher.ledger.engine import ensure_sqlite_directory, ledger_url
from dispatcher.ledger.migrate import alembic_config
from tests.postgres import in_own_loop

OpenLedger = Callable[[], Awaitable[Ledger]]


async def run_sql(dsn: str, sql: str) -> list[Any]:
    engine = create_async_engine(dsn, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def alembic_versions(dsn: str) -> list[str]:
    return [row[0] for row in await run_sql(dsn, "SELECT version_num FROM alembic_version")]


@pytest.fixture(params=["sqlite", "postgres"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        # Nested directory: Ledger.open must create it.
        return f"sqlite+aiosqlite:///{tmp_path / 'state' / 'ledger.db'}"
    database = request.getfixturevalue("postgres_database")
    # Every table of the earlier test, whatever later migrations add.
    in_own_loop(run_sql(database, "DROP SCHEMA public CASCADE"))
    in_own_loop(run_sql(database, "CREATE SCHEMA public"))
    return database


@pytest_asyncio.fixture
async def open_ledger(dsn: str) -> AsyncIterator[OpenLedger]:
    opened: list[Ledger] = []

    async def _open() -> Ledger:
        ledger = await Ledger.open(dsn)
        opened.append(ledger)
        return ledger

    yield _open
    for ledger in opened:
        await ledger.close()




async def migrate_to(url: str, revision: str) -> None:
    """Bring a ledger to an older ``revision``, as an earlier version of the dispatcher left it."""
    ensure_sqlite_directory(ledger_url(url))
    engine = create_async_engine(ledger_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    finally:
        await engine.dispose()
