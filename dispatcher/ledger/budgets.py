"""Budgets in the ledger: admitting attempts under a lock, a month's use, alerts once.

**Admission** is one transaction: lock the workspace's month row (``budget_months``), read
the month's use (metered minutes plus the elapsed minutes of admitted attempts in flight),
decide (``policy.budget``), and mark the attempt admitted. The lock is an UPDATE of that
row, the transaction's first write: a row lock on PostgreSQL (READ COMMITTED: the reads
after it see every admission committed before it), the database write lock on SQLite. So
two replicas admitting at once are serialised, and the second sees the first's attempt in
flight: neither can start a run over a budget by racing the other.

**Alerts**: a crossed threshold is a row keyed (workspace, pool, month, threshold); the
insert that creates it also queues its event, in one transaction, so across replicas and
restarts each threshold alerts once per month.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatcher.config.usage import BudgetMode
from dispatcher.policy.budget import BudgetDecision, BudgetUse, admission_decision

from . import metering
from .models import AttemptRef, BudgetLimit, RunFacts
from .outbox import OutboxEvent, outbox_insert
from .tables import BudgetAlertRecord, BudgetMonthRecord, BudgetOverrideRecord, RunRecord


def in_flight_condition() -> ColumnElement[bool]:
    """Admitted (or, for rows from before admissions, submitted), not yet metered nor closed."""
    return and_(
        RunRecord.metered_at.is_(None), RunRecord.final_state.is_(None),
        or_(RunRecord.admitted_at.is_not(None), RunRecord.infrastructure_id.is_not(None)),
    )


class BudgetLedger:
    """Budget access, mixed into :class:`dispatcher.ledger.Ledger`."""

    _insert: Callable[[Any], Any]

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    def _reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def admit(
        self, attempt: AttemptRef, *, workspace: str, pool: str, provider: str, facts: RunFacts,
        limits: list[BudgetLimit], mode: BudgetMode, now: datetime,
    ) -> BudgetDecision:
        """Admit the attempt if one more minute fits under every budget in ``limits``, and record its facts.

        An attempt admitted once stays admitted (a re-driven submission must not be refused after
        its infrastructure may have started).
        """
        month = metering.usage_month(now)
        async with self._transaction() as connection:
            # Always locked, first: a budget may come from this month's override, read below under the lock.
            await self._lock_month(connection, workspace, month, now)
            if await _admitted_before(connection, attempt.attempt_id):
                return BudgetDecision(allowed=True)
            limits = await _with_overrides(connection, workspace, month, limits, pool)
            if limits:
                uses = await _uses(connection, workspace, month, limits, now)
                decision = admission_decision(uses, mode)
                if not decision.allowed:
                    return decision
            await connection.execute(self._admission(attempt, workspace, pool, provider, facts, now))
        return BudgetDecision(allowed=True)

    async def budget_uses(self, workspace: str, month: str, limits: list[BudgetLimit], now: datetime,
                          pool: str | None = None) -> list[BudgetUse]:
        """Each budget's use in ``month`` (attempts in flight count only in the current month), this month's
        overrides applied: those of ``pool`` and the workspace, or with ``pool`` None, all of them."""
        async with self._reading() as connection:
            limits = await _with_overrides(connection, workspace, month, limits, pool)
            return await _uses(connection, workspace, month, limits, now)

    async def set_budget(self, workspace: str, pool: str | None, month: str, minutes: int, set_by: str,
                         now: datetime) -> None:
        """This month's budget of the workspace (pool None) or of a pool, replacing the configured one."""
        insert = self._insert(BudgetOverrideRecord).values(
            workspace=workspace, pool=pool or "", month=month, minutes=minutes, set_by=set_by, set_at=now)
        statement = insert.on_conflict_do_update(
            index_elements=[BudgetOverrideRecord.workspace, BudgetOverrideRecord.pool, BudgetOverrideRecord.month],
            set_={"minutes": minutes, "set_by": set_by, "set_at": now},
        )
        async with self._transaction() as connection:
            await connection.execute(statement)

    async def budget_overrides(self, workspace: str, month: str) -> dict[str | None, int]:
        """This month's overrides: pool (None: the workspace) -> minutes."""
        async with self._reading() as connection:
            return await _overrides(connection, workspace, month)

    async def month_use_by_pool(self, workspace: str, month: str, now: datetime) -> dict[str, int]:
        """Minutes per pool in ``month`` (billed, plus in flight for the current month)."""
        async with self._reading() as connection:
            return await _use_by_pool(connection, workspace, month, now)

    async def record_alert(self, use: BudgetUse, threshold_pct: int, event: OutboxEvent, now: datetime) -> bool:
        """Record that ``use`` crossed ``threshold_pct`` and queue its event; False if it was recorded before."""
        alert = self._insert(BudgetAlertRecord).values(
            workspace=use.workspace, pool=use.pool or "", month=use.month, threshold_pct=threshold_pct,
            used_minutes=use.used_minutes, budget_minutes=use.budget_minutes, crossed_at=now,
        ).on_conflict_do_nothing()
        async with self._transaction() as connection:
            if (await connection.execute(alert)).rowcount != 1:
                return False
            await connection.execute(outbox_insert(self._insert, event, now))
        return True

    async def alerts(self, workspace: str, month: str) -> list[tuple[str, int]]:
        """(pool, threshold) of every alert of the month; pool '' is the workspace's budget."""
        statement = select(BudgetAlertRecord.pool, BudgetAlertRecord.threshold_pct).where(
            BudgetAlertRecord.workspace == workspace, BudgetAlertRecord.month == month)
        async with self._reading() as connection:
            return [(row.pool, row.threshold_pct) for row in (await connection.execute(statement)).all()]

    async def _lock_month(self, connection: AsyncConnection, workspace: str, month: str, now: datetime) -> None:
        await connection.execute(
            self._insert(BudgetMonthRecord).values(workspace=workspace, month=month, admissions=0, updated_at=now)
            .on_conflict_do_nothing()
        )
        await connection.execute(
            update(BudgetMonthRecord)
            .where(BudgetMonthRecord.workspace == workspace, BudgetMonthRecord.month == month)
            .values(admissions=BudgetMonthRecord.admissions + 1, updated_at=now)
        )

    def _admission(self, attempt: AttemptRef, workspace: str, pool: str, provider: str, facts: RunFacts,
                   now: datetime) -> Any:
        """Upsert: the claim row normally exists; after a ledger outage at claim time it may not."""
        earlier = select(func.count()).where(RunRecord.flow_run_id == attempt.flow_run_id).scalar_subquery()
        insert = self._insert(RunRecord).values(
            attempt_id=attempt.attempt_id, flow_run_id=attempt.flow_run_id, attempt=earlier + 1,
            workspace=workspace, pool=pool, provider=provider, claimed_at=now, updated_at=now,
            admitted_at=now, **facts.model_dump(),
        )
        return insert.on_conflict_do_update(
            index_elements=[RunRecord.attempt_id],
            set_={"admitted_at": now, "updated_at": now, **facts.model_dump()},
        )


async def _overrides(connection: AsyncConnection, workspace: str, month: str) -> dict[str | None, int]:
    statement = select(BudgetOverrideRecord.pool, BudgetOverrideRecord.minutes).where(
        BudgetOverrideRecord.workspace == workspace, BudgetOverrideRecord.month == month)
    return {row.pool or None: row.minutes for row in (await connection.execute(statement)).all()}


async def _with_overrides(connection: AsyncConnection, workspace: str, month: str, limits: list[BudgetLimit],
                          pool: str | None) -> list[BudgetLimit]:
    """The configured budgets with this month's overrides: an override replaces its budget's figure, and
    adds a budget where none was configured (the workspace's, ``pool``'s, or with ``pool`` None any pool's)."""
    overrides = await _overrides(connection, workspace, month)
    effective = [BudgetLimit(pool=limit.pool, minutes=overrides.get(limit.pool, limit.minutes)) for limit in limits]
    configured = {limit.pool for limit in limits}
    for scope, minutes in overrides.items():
        if scope not in configured and (scope is None or pool is None or scope == pool):
            effective.append(BudgetLimit(pool=scope, minutes=minutes))
    return effective


async def _admitted_before(connection: AsyncConnection, attempt_id: str) -> bool:
    statement = select(RunRecord.admitted_at).where(RunRecord.attempt_id == attempt_id)
    return (await connection.execute(statement)).scalar_one_or_none() is not None


async def _uses(connection: AsyncConnection, workspace: str, month: str, limits: list[BudgetLimit],
                now: datetime) -> list[BudgetUse]:
    by_pool = await _use_by_pool(connection, workspace, month, now)
    return [
        BudgetUse(workspace=workspace, pool=limit.pool, month=month, budget_minutes=limit.minutes,
                  used_minutes=sum(by_pool.values()) if limit.pool is None else by_pool.get(limit.pool, 0))
        for limit in limits
    ]


async def _use_by_pool(connection: AsyncConnection, workspace: str, month: str, now: datetime) -> dict[str, int]:
    """Minutes per pool: metered in ``month``, plus elapsed minutes in flight when ``month`` is the current one."""
    by_pool: dict[str, int] = defaultdict(int)
    metered = (
        select(RunRecord.pool, func.coalesce(func.sum(RunRecord.billed_minutes), 0).label("minutes"))
        .where(RunRecord.workspace == workspace, RunRecord.usage_month == month, RunRecord.metered_at.is_not(None))
        .group_by(RunRecord.pool)
    )
    for row in (await connection.execute(metered)).all():
        by_pool[row.pool] += int(row.minutes)
    if month == metering.usage_month(now):
        flying = select(RunRecord.pool, RunRecord.submitted_at, RunRecord.admitted_at, RunRecord.claimed_at).where(
            RunRecord.workspace == workspace, in_flight_condition())
        for row in (await connection.execute(flying)).all():
            since = row.submitted_at or row.admitted_at or row.claimed_at
            by_pool[row.pool] += metering.elapsed_minutes(since, now)
    return dict(by_pool)
