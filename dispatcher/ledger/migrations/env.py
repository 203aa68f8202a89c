"""Alembic environment of the dispatcher ledger.

Normal use is programmatic: ``dispatcher.ledger.migrate`` passes an open
connection (already inside a locked transaction) in
``config.attributes["connection"]``. The alembic CLI also works, given
``sqlalchemy.url`` (async DSN), and ``--sql`` renders offline scripts.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from dispatcher.ledger.tables import Base

config = context.config
target_metadata = Base.metadata


def run_on_connection(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies tables.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_on_connection)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        run_offline(config.get_main_option("sqlalchemy.url"))
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on_connection(connection)
    else:
        asyncio.run(run_with_own_engine(config.get_main_option("sqlalchemy.url")))


main()
