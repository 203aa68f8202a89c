"""A throw-away PostgreSQL database for tests, or a skip that says why there is none.

Point the tests at another server with LEDGER_TEST_POSTGRES=postgresql://user@host:port.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

PG_SERVER = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def in_own_loop(coroutine: Awaitable[Any]) -> Any:
    """Run a coroutine outside pytest-asyncio's loops (session set-up), whatever their scope."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def pg_admin(sql: str) -> None:
    admin = make_url(PG_SERVER).set(drivername="postgresql", database="postgres")
    connection = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """An async DSN (postgresql+asyncpg) of a database created for this session and dropped after it."""
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    try:
        in_own_loop(pg_admin(f"CREATE DATABASE {name}"))
    except Exception as exc:  # refused, auth, timeout...: all mean "no server"
        where = make_url(PG_SERVER).render_as_string(hide_password=True)
        pytest.skip(f"PostgreSQL not reachable at {where}: {exc!r}")
    url = make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
    in_own_loop(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
