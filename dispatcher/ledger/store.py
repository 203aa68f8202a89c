"""The ledger: durable record of every run the dispatcher starts and meters.

Every write is a single SQL statement whose WHERE / ON CONFLICT clause
encodes the rule ("insert if absent", "first submission wins", "meter once"),
so the database, not process memory, arbitrates between restarts and between
dispatcher replicas sharing the ledger.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Callable, Optional

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatcher.clock import utcnow
from dispatcher.usage.events import metered_event
from dispatcher.health import Dependency, DependencyUnavailable, describe_error

from . import metering
from .budgets import BudgetLedger
from .engine import create_ledger_engine, ledger_url
from .membership import MembershipLedger
from .migrate import upgrade_to_head
from .models import AttemptRef, LedgerRun, UsageRow
from .outbox import OutboxLedger, outbox_insert
from .tables import RunRecord, runs_table
from .usage import LedgerUsage

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class LedgerError(Exception):
    """The ledger cannot honour the request (e.g. the run is not recorded)."""


class LedgerUnavailable(DependencyUnavailable):
    """The ledger database could not be reached (connection refused or lost, locked, timed out)."""


def is_ledger_outage(exc: BaseException) -> bool:
    """Connection-level failures; constraint or SQL errors are bugs and are not hidden as outages."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, (OSError, TimeoutError))


class Ledger(BudgetLedger, LedgerUsage, OutboxLedger, MembershipLedger):
    """Async access to the ledger (runs; budgets, usage, the event outbox and replica membership in the mixins). Create with :meth:`Ledger.open`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert: Callable[[Any], Any] = _dialect_insert(engine.dialect.name)
        #: Shared by every workspace the process serves; its outages are logged once each way.
        self.health = Dependency("ledger", "")

    def _transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._guarded(self._engine.begin)

    def _reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._guarded(self._engine.connect)

    @asynccontextmanager
    async def _guarded(self, open_connection: Callable[[], Any]) -> AsyncIterator[AsyncConnection]:
        try:
            async with open_connection() as connection:
                yield connection
        except Exception as exc:
            if not is_ledger_outage(exc):
                raise
            self.health.failed(exc)
            raise LedgerUnavailable(f"ledger: {describe_error(exc)}", self.health) from exc
        self.health.succeeded()

    @classmethod
    async def open(cls, dsn: str) -> "Ledger":
        """Connect to ``dsn`` and migrate the schema to head (idempotent)."""
        engine = create_ledger_engine(ledger_url(dsn))
        try:
            await upgrade_to_head(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> "Ledger":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def record_claim(
        self, attempt: AttemptRef, workspace: str, pool: str, provider: str, claimed_at: datetime
    ) -> bool:
        """Insert the attempt if absent; returns False when it was already recorded."""
        statement = (
            self._insert(RunRecord)
            .values(
                **_attempt_values(attempt),
                workspace=workspace,
                pool=pool,
                provider=provider,
                claimed_at=metering.require_aware("claimed_at", claimed_at),
                updated_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[RunRecord.attempt_id])
        )
        async with self._transaction() as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def record_submission(
        self,
        attempt: AttemptRef,
        infrastructure_id: str,
        submitted_at: datetime,
        *,
        workspace: str,
        pool: str,
        provider: str,
    ) -> str:
        """Record the provider handle; the first submission wins.

        Creates the row when the claim was never recorded (run rediscovered
        after a restart; its claim time is then unknown, so the submission
        time stands in). Returns the infrastructure id the ledger keeps,
        which differs from ``infrastructure_id`` if another submission won.
        """
        statement = self._submission_upsert(attempt, infrastructure_id, submitted_at, workspace, pool, provider)
        async with self._transaction() as connection:
            return (await connection.execute(statement)).scalar_one()

    async def record_grouped_submission(
        self, attempt: AttemptRef, infrastructure_id: str, submitted_at: datetime, *, workspace: str, pool: str,
        provider: str, watch_key: str, batch_size: Optional[int],
    ) -> tuple[str, str, int]:
        """:meth:`record_submission`, and the attempt's watch group in ``watch_key`` (see ``_assign_in``), in one
        transaction: no replica ever reads the submission without its group. Returns the kept infrastructure
        id, watch key and group (a row's first ones win, as for the infrastructure id)."""
        statement = self._submission_upsert(attempt, infrastructure_id, submitted_at, workspace, pool, provider)
        async with self._transaction() as connection:
            kept = (await connection.execute(statement)).scalar_one()  # a write first: on SQLite, the write lock
            placed = await self._assign_in(connection, attempt.attempt_id, workspace, watch_key, batch_size)
        assert placed is not None  # the row was just written
        return kept, *placed

    def _submission_upsert(self, attempt: AttemptRef, infrastructure_id: str, submitted_at: datetime,
                           workspace: str, pool: str, provider: str) -> Any:
        metering.require_aware("submitted_at", submitted_at)
        insert = self._insert(RunRecord).values(
            **_attempt_values(attempt),
            workspace=workspace,
            pool=pool,
            provider=provider,
            claimed_at=submitted_at,
            infrastructure_id=infrastructure_id,
            submitted_at=submitted_at,
            updated_at=utcnow(),
        )
        statement = insert.on_conflict_do_update(
            index_elements=[RunRecord.attempt_id],
            set_={
                "infrastructure_id": _keep_first(RunRecord.infrastructure_id, insert.excluded),
                "submitted_at": _keep_first(RunRecord.submitted_at, insert.excluded),
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(RunRecord.infrastructure_id)
        return statement

    async def meter(
        self,
        attempt_id: str,
        started_at: Optional[datetime],
        stopped_at: Optional[datetime],
        *,
        exit_code: Optional[int] = None,
        reason: Optional[str] = None,
    ) -> bool:
        """Meter the attempt once; True only for the single call that metered it.

        ``started_at=None`` (infrastructure never started) meters 0 minutes
        but still closes the run so it is not retried forever; its month is
        that of ``stopped_at``, or of now when no teardown time is known.
        The attempt's ``compute.metered`` event is queued in the same transaction
        (delivered to Prefect later, by the outbox; Prefect being down never fails this).
        Raises ``ValueError`` for naive or reversed timestamps or a start
        without a stop, and ``LedgerError`` when the run is not in the ledger.
        """
        now = utcnow()
        values = _metering_values(started_at, stopped_at, now)
        statement = (
            update(RunRecord)
            .where(RunRecord.attempt_id == attempt_id, RunRecord.metered_at.is_(None))
            .values(**values, exit_code=exit_code, reason=reason, metered_at=now, updated_at=now)
            .returning(*runs_table.columns)
        )
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).one_or_none()
            if row is not None:
                event = metered_event(LedgerRun.model_validate(row))
                await connection.execute(outbox_insert(self._insert, event, now))
                return True
        if await self.get(attempt_id) is None:
            raise LedgerError(f"cannot meter unknown attempt {attempt_id}")
        return False

    async def set_final_state(self, attempt_id: str, state_name: str) -> None:
        """Remember the attempt's final Prefect state (last write wins)."""
        statement = (
            update(RunRecord)
            .where(RunRecord.attempt_id == attempt_id)
            .values(final_state=state_name, updated_at=utcnow())
        )
        async with self._transaction() as connection:
            if (await connection.execute(statement)).rowcount == 0:
                raise LedgerError(f"cannot set state of unknown attempt {attempt_id}")

    async def unmetered(self, workspace: Optional[str] = None) -> list[LedgerRun]:
        """Submitted but not yet metered runs: the in-flight set after a restart."""
        return await self._select_runs(
            workspace, RunRecord.infrastructure_id.is_not(None), RunRecord.metered_at.is_(None)
        )

    async def unsubmitted(self, workspace: Optional[str] = None) -> list[LedgerRun]:
        """Claimed runs with no recorded submission and no final state.

        A dispatcher that dies between the provider accepting a run and this ledger
        recording it leaves such a row; recovery asks the provider about it.
        """
        return await self._select_runs(
            workspace, RunRecord.infrastructure_id.is_(None), RunRecord.final_state.is_(None)
        )

    async def _select_runs(self, workspace: Optional[str], *conditions: ColumnElement[bool]) -> list[LedgerRun]:
        statement = select(runs_table).where(*conditions)
        if workspace is not None:
            statement = statement.where(RunRecord.workspace == workspace)
        statement = statement.order_by(RunRecord.claimed_at, RunRecord.attempt_id)
        async with self._reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [LedgerRun.model_validate(row) for row in rows]

    async def get(self, attempt_id: str) -> Optional[LedgerRun]:
        statement = select(runs_table).where(RunRecord.attempt_id == attempt_id)
        async with self._reading() as connection:
            row = (await connection.execute(statement)).one_or_none()
        return None if row is None else LedgerRun.model_validate(row)

    async def last_attempt(self, flow_run_id: str) -> Optional[LedgerRun]:
        """The flow run's latest attempt, or None if it never was claimed here."""
        attempts = await self.attempts(flow_run_id)
        return attempts[-1] if attempts else None

    async def attempts(self, flow_run_id: str) -> list[LedgerRun]:
        """Every attempt of a flow run, first first."""
        statement = select(runs_table).where(RunRecord.flow_run_id == flow_run_id).order_by(RunRecord.attempt)
        async with self._reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [LedgerRun.model_validate(row) for row in rows]

    async def usage(
        self, workspace: Optional[str] = None, month: Optional[str] = None
    ) -> list[UsageRow]:
        """Metered totals per (workspace, month), ordered by workspace then month."""
        statement = (
            select(
                RunRecord.workspace,
                RunRecord.usage_month,
                func.count(func.distinct(RunRecord.flow_run_id)).label("flow_runs"),
                func.count().label("attempts"),
                func.coalesce(func.sum(RunRecord.billed_minutes), 0).label("billed_minutes"),
                func.coalesce(func.sum(RunRecord.compute_seconds), 0.0).label("compute_seconds"),
            )
            .where(*_metered_filter(workspace, month))
            .group_by(RunRecord.workspace, RunRecord.usage_month)
            .order_by(RunRecord.workspace, RunRecord.usage_month)
        )
        async with self._reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            UsageRow(
                workspace=row.workspace,
                month=row.usage_month,
                flow_runs=row.flow_runs,
                attempts=row.attempts,
                billed_minutes=row.billed_minutes,
                compute_seconds=float(row.compute_seconds),
            )
            for row in rows
        ]

    async def month_minutes(self, workspace: str, month: str) -> int:
        """Billed minutes of ``workspace`` in ``month`` (YYYY-MM); 0 if none."""
        statement = select(func.coalesce(func.sum(RunRecord.billed_minutes), 0)).where(
            *_metered_filter(workspace, month)
        )
        async with self._reading() as connection:
            return int((await connection.execute(statement)).scalar_one())


def _attempt_values(attempt: AttemptRef) -> dict[str, Any]:
    """Key columns of a new row; its number is one more than the flow run's attempts so far."""
    earlier = select(func.count()).where(RunRecord.flow_run_id == attempt.flow_run_id).scalar_subquery()
    return {"attempt_id": attempt.attempt_id, "flow_run_id": attempt.flow_run_id, "attempt": earlier + 1}


def _dialect_insert(dialect_name: str) -> Callable[[Any], Any]:
    # Both dialects provide INSERT ... ON CONFLICT with the same API.
    inserts = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
    if dialect_name not in inserts:
        raise LedgerError(f"unsupported ledger database {dialect_name!r}")
    return inserts[dialect_name]


def _keep_first(column: Any, excluded: Any) -> ColumnElement[Any]:
    """ON CONFLICT value that keeps an existing non-null value."""
    return func.coalesce(column, getattr(excluded, column.key))


def _metering_values(
    started_at: Optional[datetime], stopped_at: Optional[datetime], now: datetime
) -> dict[str, Any]:
    if stopped_at is None and started_at is not None:
        raise ValueError("stopped_at is required to meter a run that started")
    month = metering.usage_month(stopped_at or now)  # also rejects a naive stop
    if started_at is None:
        return {
            "started_at": None,
            "stopped_at": stopped_at,
            "compute_seconds": 0.0,
            "billed_minutes": 0,
            "usage_month": month,
        }
    return {
        "started_at": started_at,
        "stopped_at": stopped_at,
        "compute_seconds": metering.compute_seconds(started_at, stopped_at),
        "billed_minutes": metering.billable_minutes(started_at, stopped_at),
        "usage_month": month,
    }


def _metered_filter(workspace: Optional[str], month: Optional[str]) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [RunRecord.metered_at.is_not(None)]
    if workspace is not None:
        conditions.append(RunRecord.workspace == workspace)
    if month is not None:
        if not _MONTH.match(month):
            raise ValueError(f"month must look like YYYY-MM, got {month!r}")
        conditions.append(RunRecord.usage_month == month)
    return conditions


