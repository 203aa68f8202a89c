"""Replica membership and the hand-over of watched attempts, in the shared ledger.

Each replica bumps its own counter every membership tick and reads everyone's; whether
a counter still moves is judged by the reader (:mod:`dispatcher.loops.shards`). Which
replica watches an attempt is a column of the attempt's row, set when a replica adopts it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .models import LedgerRun
from .tables import ReplicaRecord, RunRecord, runs_table

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
    _engine: AsyncEngine

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

    async def take_redrive(self, attempt_id: str, replica_id: str, now: datetime, lease_s: float) -> bool:
        """May this replica re-drive this unsubmitted claim now? True for one replica per lease.

        Replicas whose membership views differ for a moment (one has not yet seen a replica that
        just joined) can each believe they own the claim. A second ECS RunTask is harmless (same
        clientToken), but a second Cloud Run :run starts a second execution and a second ACI PUT
        redeploys the group. The conditional update lets one replica through; the lease (the row's
        ``updated_at``) lets another take over if that one dies. False also when the attempt has
        meanwhile been recorded as submitted or ended, or has no row.
        """
        statement = (
            update(RunRecord)
            .where(RunRecord.attempt_id == attempt_id, RunRecord.infrastructure_id.is_(None),
                   RunRecord.final_state.is_(None),
                   or_(RunRecord.watcher.is_(None), RunRecord.watcher == replica_id,
                       RunRecord.updated_at < now - timedelta(seconds=lease_s)))
            .values(watcher=replica_id, updated_at=now)
        )
        async with self._transaction() as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def _assign_in(self, connection: AsyncConnection, attempt_id: str, workspace: str, key: str,
                         size: int | None) -> tuple[str, int] | None:
        """Put a submitted attempt in a watch group of ``key``; returns its (key, group), the row's own if it had one.

        The group is the lowest-numbered one of the key with fewer than ``size`` attempts in flight
        (not metered), so groups fill before another opens and holes left by ended runs are filled
        first; 0 for every attempt when ``size`` is None. Assignments of one key are serialised across
        replicas (a PostgreSQL advisory lock; on SQLite, the write lock the first statement takes), so
        no group ever holds more than ``size``. None: the attempt has no row.
        """
        if self._engine.dialect.name == "postgresql":
            await connection.execute(select(func.pg_advisory_xact_lock(_lock_id(workspace, key))))
        # On SQLite the caller's first statement was a write: its write lock is held until the commit.
        query = select(RunRecord.watch_key, RunRecord.watch_group).where(RunRecord.attempt_id == attempt_id)
        row = (await connection.execute(query)).one_or_none()
        if row is None:
            return None
        if row.watch_key is not None and row.watch_group is not None:
            return row.watch_key, row.watch_group
        group = 0 if size is None else await _lowest_open_group(connection, workspace, key, size)
        await connection.execute(update(RunRecord).where(RunRecord.attempt_id == attempt_id)
                                 .values(watch_key=key, watch_group=group))
        return key, group

    async def watch_group_sizes(self, workspace: str) -> dict[tuple[str, int], int]:
        """In-flight (unmetered) attempts per watch group of the workspace: (watch key, group) -> count."""
        async with self._reading() as connection:
            return await _group_sizes(connection, workspace)

    async def fresh_in_groups(self, workspace: str, groups: Sequence[tuple[str, int]], since: datetime) -> list[LedgerRun]:
        """Unmetered attempts of these watch groups submitted since ``since`` that no replica has adopted."""
        found: list[LedgerRun] = []
        async with self._reading() as connection:
            for start in range(0, len(groups), _CHUNK):
                query = select(runs_table).where(
                    RunRecord.workspace == workspace, RunRecord.metered_at.is_(None), RunRecord.watcher.is_(None),
                    RunRecord.submitted_at >= since,
                    tuple_(RunRecord.watch_key, RunRecord.watch_group).in_(list(groups[start:start + _CHUNK])))
                found += [LedgerRun.model_validate(row) for row in (await connection.execute(query)).all()]
        return found

    async def watchers(self, attempt_ids: Sequence[str]) -> dict[str, str | None]:
        """Who adopted each attempt (None: nobody since its submission)."""
        found: dict[str, str | None] = {}
        async with self._reading() as connection:
            for chunk in _chunks(attempt_ids):
                query = select(RunRecord.attempt_id, RunRecord.watcher).where(RunRecord.attempt_id.in_(chunk))
                found.update({row.attempt_id: row.watcher for row in (await connection.execute(query)).all()})
        return found


async def _group_sizes(connection: AsyncConnection, workspace: str, key: str | None = None) -> dict[tuple[str, int], int]:
    """Unmetered attempts per (watch key, group) of the workspace, or of one key (the partial index's rows)."""
    query = (select(RunRecord.watch_key, RunRecord.watch_group, func.count())
             .where(RunRecord.workspace == workspace, RunRecord.watch_key.is_not(None),
                    RunRecord.watch_group.is_not(None), RunRecord.metered_at.is_(None))
             .group_by(RunRecord.watch_key, RunRecord.watch_group))
    if key is not None:
        query = query.where(RunRecord.watch_key == key)
    return {(found, group): count for found, group, count in (await connection.execute(query)).all()}


async def _lowest_open_group(connection: AsyncConnection, workspace: str, key: str, size: int) -> int:
    sizes = await _group_sizes(connection, workspace, key)
    return next(group for group in itertools.count() if sizes.get((key, group), 0) < size)


def _lock_id(workspace: str, key: str) -> int:
    """A signed 64-bit advisory lock id for one workspace's batch key."""
    digest = hashlib.blake2b(f"watch-groups|{workspace}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _chunks(items: Sequence[str]) -> list[list[str]]:
    items = list(items)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]
