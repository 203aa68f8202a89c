"""Usage queries of the ledger: a month's metered compute grouped by pool, deployment, flow,
provider or day; the attempts behind a figure, a page at a time; the attempts in flight.

Sums are computed by the database, per group and provider (prices are per provider); the
few attempts in flight are returned as rows so the caller can add their elapsed minutes.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .budgets import in_flight_condition
from .models import LedgerRun
from .tables import RunRecord, runs_table

#: The key of rows from before 0003 (or ad-hoc runs) in the deployment and flow groupings.
UNKNOWN = "unknown"


class GroupBy(str, enum.Enum):
    POOL = "pool"
    DEPLOYMENT = "deployment"
    FLOW = "flow"
    PROVIDER = "provider"
    DAY = "day"


class RunFilter(BaseModel):
    """Which attempts of a month: those behind one figure of a grouping (every field optional)."""

    model_config = ConfigDict(frozen=True)

    pool: Optional[str] = Field(default=None, description="Work pool name.")
    deployment: Optional[str] = Field(default=None, description="Deployment id, or 'unknown'.")
    flow: Optional[str] = Field(default=None, description="Flow name, or 'unknown'.")
    provider: Optional[str] = Field(default=None, description="Provider kind.")
    day: Optional[str] = Field(default=None, description="UTC day of the teardown, YYYY-MM-DD.")


class GroupTotals(BaseModel):
    """Metered sums of one group and one provider in one month."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(description="The group's key (pool name, deployment id, flow name, provider, day), or 'unknown'.")
    label: str = Field(description="What to show for it (e.g. flow/deployment).")
    provider: str = Field(description="Provider kind (prices are per provider).")
    attempts: int = Field(description="Metered attempts.")
    flow_runs: int = Field(description="Distinct flow runs among them.")
    billed_minutes: int = Field(description="Billed minutes.")
    compute_seconds: float = Field(description="Exact compute seconds.")
    vcpu_seconds: float = Field(description="Compute seconds times vCPUs asked for (priced attempts only).")
    memory_gib_seconds: float = Field(description="Compute seconds times GiB asked for (priced attempts only).")
    unpriced_attempts: int = Field(description="Attempts without vCPU or memory on record (not priced).")


class LedgerUsage:
    """Usage reads, mixed into :class:`dispatcher.ledger.Ledger`."""

    def _reading(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def grouped_usage(self, workspace: str, month: str, group_by: GroupBy) -> list[GroupTotals]:
        async with self._reading() as connection:
            key, label = _group_columns(group_by, connection.dialect.name)
            priced = (RunRecord.vcpu.is_not(None)) & (RunRecord.memory_mib.is_not(None))
            statement = (
                select(
                    key.label("key"), label.label("label"), RunRecord.provider,
                    func.count().label("attempts"),
                    func.count(func.distinct(RunRecord.flow_run_id)).label("flow_runs"),
                    func.coalesce(func.sum(RunRecord.billed_minutes), 0).label("billed_minutes"),
                    func.coalesce(func.sum(RunRecord.compute_seconds), 0.0).label("compute_seconds"),
                    func.coalesce(func.sum(RunRecord.compute_seconds * RunRecord.vcpu), 0.0).label("vcpu_seconds"),
                    func.coalesce(func.sum(RunRecord.compute_seconds * RunRecord.memory_mib), 0.0).label("mib_seconds"),
                    func.sum(_case_count(~priced)).label("unpriced"),
                )
                .where(*_month_metered(workspace, month))
                .group_by(key, RunRecord.provider)
                .order_by(key, RunRecord.provider)
            )
            rows = (await connection.execute(statement)).all()
        return [_totals(row) for row in rows]

    async def in_flight_runs(self, workspace: str) -> list[LedgerRun]:
        statement = select(runs_table).where(RunRecord.workspace == workspace, in_flight_condition())
        async with self._reading() as connection:
            rows = (await connection.execute(statement.order_by(RunRecord.claimed_at))).all()
        return [LedgerRun.model_validate(row) for row in rows]

    async def runs_page(self, workspace: str, month: str, where: RunFilter, offset: int, limit: int,
                        today: str | None = None) -> tuple[list[LedgerRun], int]:
        """Attempts of the month matching ``where`` (newest teardown first), and how many there are in all.

        ``today`` (YYYY-MM-DD, when ``month`` is the current one): attempts in flight are included,
        counted on that day, as the usage figures count them.
        """
        async with self._reading() as connection:
            conditions = _filter_conditions(where, connection.dialect.name, today)
            scope: ColumnElement[bool] = and_(*_month_metered(workspace, month))
            if today is not None:
                scope = or_(scope, (RunRecord.workspace == workspace) & in_flight_condition())
            base: Select[Any] = select(runs_table).where(scope, *conditions)
            total = (await connection.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
            page = base.order_by(func.coalesce(RunRecord.stopped_at, RunRecord.claimed_at).desc(),
                                 RunRecord.attempt_id).offset(offset).limit(limit)
            rows = (await connection.execute(page)).all()
        return [LedgerRun.model_validate(row) for row in rows], int(total)

    async def usage_months(self, workspace: str) -> list[str]:
        """Months with metered compute, newest first."""
        statement = (select(RunRecord.usage_month).where(RunRecord.workspace == workspace,
                                                          RunRecord.usage_month.is_not(None))
                     .distinct().order_by(RunRecord.usage_month.desc()))
        async with self._reading() as connection:
            return [row[0] for row in (await connection.execute(statement)).all()]


def day_expression(dialect: str) -> ColumnElement[str]:
    """The UTC day (YYYY-MM-DD) of an attempt's teardown: stored as UTC on both databases."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", RunRecord.stopped_at), "YYYY-MM-DD")
    return func.substr(RunRecord.stopped_at, 1, 10)


def _group_columns(group_by: GroupBy, dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    if group_by == GroupBy.POOL:
        return RunRecord.pool, RunRecord.pool
    if group_by == GroupBy.PROVIDER:
        return RunRecord.provider, RunRecord.provider
    # One expression object for key and label: PostgreSQL matches GROUP BY expressions with their parameters.
    if group_by == GroupBy.DAY:
        day = func.coalesce(day_expression(dialect), UNKNOWN)
        return day, day
    if group_by == GroupBy.FLOW:
        flow = func.coalesce(RunRecord.flow_name, UNKNOWN)
        return flow, flow
    # Deployment names are unique per flow only: the key is the id, the label flow/deployment.
    label = func.coalesce(func.max(RunRecord.flow_name), UNKNOWN) + literal("/") + func.coalesce(
        func.max(RunRecord.deployment_name), UNKNOWN)
    return func.coalesce(RunRecord.deployment_id, UNKNOWN), label


def _filter_conditions(where: RunFilter, dialect: str, today: str | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for value, column in ((where.pool, RunRecord.pool), (where.provider, RunRecord.provider)):
        if value is not None:
            conditions.append(column == value)
    for value, column in ((where.deployment, RunRecord.deployment_id), (where.flow, RunRecord.flow_name)):
        if value is not None:
            conditions.append(column.is_(None) if value == UNKNOWN else column == value)
    if where.day is not None:
        on_day = day_expression(dialect) == where.day
        conditions.append(or_(on_day, RunRecord.stopped_at.is_(None)) if where.day == today else on_day)
    return conditions


def _month_metered(workspace: str, month: str) -> list[ColumnElement[bool]]:
    return [RunRecord.workspace == workspace, RunRecord.usage_month == month, RunRecord.metered_at.is_not(None)]


def _case_count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _totals(row: Any) -> GroupTotals:
    return GroupTotals(
        key=str(row.key), label=str(row.label), provider=row.provider, attempts=row.attempts, flow_runs=row.flow_runs,
        billed_minutes=int(row.billed_minutes), compute_seconds=float(row.compute_seconds),
        vcpu_seconds=float(row.vcpu_seconds), memory_gib_seconds=float(row.mib_seconds) / 1024,
        unpriced_attempts=int(row.unpriced or 0),
    )
