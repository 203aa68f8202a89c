"""The event outbox: Prefect events written in the transaction that caused them, delivered later.

Metering and budget alerts must not wait for (or fail with) Prefect, and an event must
survive a restart: so the event is a row, committed with the fact it reports, and a
delivery loop sends it. Rows are leased before sending (``next_attempt_at`` moved ahead in
one conditional UPDATE), so two replicas do not send the same row at once; event ids are
deterministic, so a resend after a crash is the same event.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import OutboxEventRecord

#: While a replica sends a leased row, no other replica takes it.
LEASE = timedelta(seconds=60)


class OutboxEvent(BaseModel):
    """One event to deliver to one workspace's Prefect."""

    model_config = ConfigDict(frozen=True)

    event_id: str = Field(description="The event's id (deterministic: the same fact gives the same id).")
    workspace: str = Field(description="Whose Prefect receives it.")
    event: str = Field(description="The event name, e.g. prefect-push-dispatcher.compute.metered.")
    body: str = Field(description="The event as Prefect's JSON (prefect.events.Event).")
    attempts: int = Field(default=0, description="Delivery attempts so far.")


def outbox_insert(insert: Callable[[Any], Any], event: OutboxEvent, now: datetime) -> Any:
    """The statement that queues ``event`` (once: a repeated id is ignored)."""
    return insert(OutboxEventRecord).values(
        event_id=event.event_id, workspace=event.workspace, event=event.event, body=event.body,
        created_at=now, next_attempt_at=now, attempts=0,
    ).on_conflict_do_nothing(index_elements=[OutboxEventRecord.event_id])


class OutboxLedger:
    """Outbox access, mixed into :class:`dispatcher.ledger.Ledger`."""

    _insert: Callable[[Any], Any]

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    def _reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def queue_event(self, event: OutboxEvent, now: datetime) -> None:
        async with self._transaction() as connection:
            await connection.execute(outbox_insert(self._insert, event, now))

    async def lease_events(self, workspace: str, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        """Take up to ``limit`` due, undelivered events of ``workspace`` for ``LEASE``; oldest first."""
        due = (
            select(OutboxEventRecord.event_id)
            .where(OutboxEventRecord.workspace == workspace, OutboxEventRecord.delivered_at.is_(None),
                   OutboxEventRecord.next_attempt_at <= now)
            .order_by(OutboxEventRecord.created_at)
            .limit(limit)
        )
        statement = (
            update(OutboxEventRecord)
            # Re-checked on the locked row: a row another replica leased meanwhile is skipped.
            .where(OutboxEventRecord.event_id.in_(due.scalar_subquery()), OutboxEventRecord.next_attempt_at <= now,
                   OutboxEventRecord.delivered_at.is_(None))
            .values(next_attempt_at=now + LEASE, attempts=OutboxEventRecord.attempts + 1)
            .returning(OutboxEventRecord.event_id, OutboxEventRecord.workspace, OutboxEventRecord.event,
                       OutboxEventRecord.body, OutboxEventRecord.attempts, OutboxEventRecord.created_at)
        )
        async with self._transaction() as connection:
            rows = (await connection.execute(statement)).all()
        rows = sorted(rows, key=lambda row: row.created_at)
        return [OutboxEvent(event_id=r.event_id, workspace=r.workspace, event=r.event, body=r.body, attempts=r.attempts)
                for r in rows]

    async def events_delivered(self, event_ids: list[str], now: datetime) -> None:
        if not event_ids:
            return
        statement = (update(OutboxEventRecord).where(OutboxEventRecord.event_id.in_(event_ids))
                     .values(delivered_at=now, last_error=None))
        async with self._transaction() as connection:
            await connection.execute(statement)

    async def event_failed(self, event_id: str, retry_at: datetime, error: str) -> None:
        statement = (update(OutboxEventRecord).where(OutboxEventRecord.event_id == event_id)
                     .values(next_attempt_at=retry_at, last_error=error[:255]))
        async with self._transaction() as connection:
            await connection.execute(statement)

    async def drop_stale_events(self, workspace: str, created_before: datetime) -> int:
        """Delete undelivered events queued before ``created_before`` (counted as dropped by the caller)."""
        statement = delete(OutboxEventRecord).where(
            OutboxEventRecord.workspace == workspace, OutboxEventRecord.delivered_at.is_(None),
            OutboxEventRecord.created_at < created_before)
        async with self._transaction() as connection:
            return (await connection.execute(statement)).rowcount or 0

    async def prune_delivered_events(self, delivered_before: datetime) -> None:
        statement = delete(OutboxEventRecord).where(OutboxEventRecord.delivered_at < delivered_before)
        async with self._transaction() as connection:
            await connection.execute(statement)

    async def undelivered_events(self, workspace: str) -> int:
        statement = select(func.count()).where(OutboxEventRecord.workspace == workspace,
                                               OutboxEventRecord.delivered_at.is_(None))
        async with self._reading() as connection:
            return int((await connection.execute(statement)).scalar_one())
