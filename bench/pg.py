"""A throw-away PostgreSQL database for a bench (the server of tests/postgres.py, LEDGER_TEST_POSTGRES)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from tests.postgres import PG_SERVER, in_own_loop, pg_admin


@contextmanager
def temporary_database(prefix: str) -> Iterator[str]:
    """Create a database, yield its async DSN (postgresql+asyncpg://...), drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    in_own_loop(pg_admin(f"CREATE DATABASE {name}"))
    try:
        yield make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)
    finally:
        in_own_loop(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
