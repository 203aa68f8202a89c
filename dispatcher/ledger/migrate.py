"""Run the ledger's alembic migrations to head, once, from code.

Several dispatcher processes may start at the same moment against the same
ledger, so the upgrade is serialised by the database itself: the first
process migrates inside a locked transaction, the others wait for that lock
and then find ``alembic_version`` already at head (a no-op).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import create_sqlite_migration_engine, is_sqlite, is_sqlite_memory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Arbitrary but fixed key for pg_advisory_xact_lock: the bytes of "ledger".
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"ledger", "big")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic config built in code (no alembic.ini needed at runtime)."""
    config = Config()
    # ConfigParser interpolation would choke on a literal '%' in the path.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the ledger schema to the newest revision; safe to call concurrently."""
    if is_sqlite(engine.url):
        await _upgrade_sqlite(engine)
    else:
        await _upgrade_postgresql(engine)


async def _upgrade_sqlite(engine: AsyncEngine) -> None:
    if is_sqlite_memory(engine.url):
        # Private to this engine's single connection: nothing to race with,
        # and a second engine would see a different, empty database.
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_on_connection)
        return
    migration_engine = create_sqlite_migration_engine(engine.url)
    try:
        async with migration_engine.connect() as connection:
            # begin() emits BEGIN IMMEDIATE: the file's write lock is held
            # for the whole check-and-migrate, across processes.
            async with connection.begin():
                await connection.run_sync(_upgrade_on_connection)
    finally:
        await migration_engine.dispose()


async def _upgrade_postgresql(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        async with connection.begin():
            # Transaction-scoped: released by COMMIT/ROLLBACK, never leaked
            # by a crash. DDL is transactional on PostgreSQL.
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY}
            )
            await connection.run_sync(_upgrade_on_connection)


def _upgrade_on_connection(connection: Connection) -> None:
    # The connection is already inside our locked transaction, so alembic
    # joins it rather than committing on its own.
    command.upgrade(alembic_config(connection), "head")
