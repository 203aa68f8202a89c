"""Replica membership and the hand-over of watched attempts, in the shared ledger.

Each replica bumps its own counter every membership tick and reads everyone's; whether
a counter still moves is judged by the reader (:mod:`dispatcher.loops.shards`). Which
replica watches an attempt is a column of the attempt's row, set when a replica adopts it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import ReplicaRecord, RunRecord

#: Attempts per UPDATE/SELECT ... IN (...): far below every database's parameter limit.
_CHUNK = 500


class MemberBeat(BaseModel):
    """One replica's row as read at a membership tick."""

    model_config = ConfigDict(frozen=True)

    replica_id: str = Field(description="The replica's id (a UUID chosen at its start).")
    name: str = Field(description="Its worker name, for people.")
    beat: int = Field(description="Its heartbeat counter: it is alive while this keeps moving.")


class MembershipLedger:
    """Membership access, mixed into :class:`dispatcher.ledger.Ledger`."""

    _insert: Callable[[Any], Any]

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    def _reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def beat(self, workspace: str, replica_id: str, name: str, now: datetime) -> list[MemberBeat]:
        """Bump this replica's counter (joining if absent) and return every replica of the workspace."""
        insert = self._insert(ReplicaRecord).values(
            workspace=workspace, replica_id=replica_id, name=name, beat=1, started_at=now, beat_at=now
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[ReplicaRecord.workspace, ReplicaRecord.replica_id],
            set_={"beat": ReplicaRecord.beat + 1, "beat_at": now},
        )
        members = select(ReplicaRecord.replica_id, ReplicaRecord.name, ReplicaRecord.beat).where(
            ReplicaRecord.workspace == workspace
        )
        async with self._transaction() as connection:
            await connection.execute(upsert)
            rows = (await connection.execute(members)).all()
        return [MemberBeat(replica_id=row.replica_id, name=row.name, beat=row.beat) for row in rows]

    async def leave(self, workspace: str, replica_ids: Sequence[str]) -> None:
        """Remove replicas from the workspace: this one at shutdown, or ones long dead."""
        if not replica_ids:
            return
        statement = delete(ReplicaRecord).where(
            ReplicaRecord.workspace == workspace, ReplicaRecord.replica_id.in_(list(replica_ids))
        )
        async with self._transaction() as connection:
            await connection.execute(statement)

    async def set_watcher(self, attempt_ids: Sequence[str], replica_id: str) -> None:
        """Record that ``replica_id`` now watches these attempts (the replica that had them lets go)."""
        async with self._transaction() as connection:
            for chunk in _chunks(attempt_ids):
                await connection.execute(
                    update(RunRecord).where(RunRecord.attempt_id.in_(chunk)).values(watcher=replica_id)
                )

    async def watchers(self, attempt_ids: Sequence[str]) -> dict[str, str | None]:
        """Who adopted each attempt (None: nobody since its submission)."""
        found: dict[str, str | None] = {}
        async with self._reading() as connection:
            for chunk in _chunks(attempt_ids):
                query = select(RunRecord.attempt_id, RunRecord.watcher).where(RunRecord.attempt_id.in_(chunk))
                found.update({row.attempt_id: row.watcher for row in (await connection.execute(query)).all()})
        return found


def _chunks(items: Sequence[str]) -> list[list[str]]:
    items = list(items)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
