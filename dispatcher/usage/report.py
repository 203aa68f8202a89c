"""Usage reports from the ledger: a month grouped one way, the attempts behind a figure, budgets, CSV.

Shared by the usage API, the usage page and ``dispatcher usage``, so all three show the same
figures. Attempts in flight are added to the current month with the minutes they have used so far.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

from dispatcher.config import WorkspaceConfig
from dispatcher.config.usage import PriceTable
from dispatcher.ledger import Ledger, LedgerRun, usage_month
from dispatcher.ledger.metering import elapsed_minutes
from dispatcher.ledger.usage import UNKNOWN, GroupBy, GroupTotals, RunFilter
from dispatcher.policy.budget import budget_status
from dispatcher.usage.costs import cost, flow_run_url, ui_base_url
from dispatcher.usage.gate import all_budget_limits
from dispatcher.usage.models import BudgetReport, BudgetView, RunPage, RunRow, UsageFigures, UsageGroup, UsageReport

CSV_COLUMNS = (
    "workspace", "month", "flow_run_id", "flow_run_name", "attempt", "attempt_id", "deployment_id", "deployment_name",
    "flow_name", "pool", "provider", "infrastructure_id", "started_at", "stopped_at", "compute_seconds",
    "billed_minutes", "vcpu", "memory_mib", "estimated_cost", "currency", "final_state",
)


@dataclass
class _Sums:
    """Running sums of one group while a report is assembled."""

    label: str
    figures: UsageFigures = field(default_factory=UsageFigures)
    priced_cost: float = 0.0
    any_priced: bool = False

    def add(self, totals: GroupTotals, prices: PriceTable) -> None:
        f = self.figures
        f.attempts += totals.attempts
        f.flow_runs += totals.flow_runs
        f.billed_minutes += totals.billed_minutes
        self._add_resources(totals.provider, totals.vcpu_seconds, totals.memory_gib_seconds, totals.attempts,
                            totals.unpriced_attempts, prices)

    def add_in_flight(self, run: LedgerRun, now: datetime, prices: PriceTable) -> None:
        minutes = elapsed_minutes(_since(run), now)
        seconds = (now - _since(run)).total_seconds()
        self.figures.in_flight_attempts += 1
        self.figures.in_flight_minutes += minutes
        priced = run.vcpu is not None and run.memory_mib is not None
        self._add_resources(run.provider, seconds * (run.vcpu or 0), seconds * (run.memory_mib or 0) / 1024, 1,
                            0 if priced else 1, prices)

    def _add_resources(self, provider: str, vcpu_s: float, gib_s: float, attempts: int, unpriced: int,
                       prices: PriceTable) -> None:
        self.figures.vcpu_hours += vcpu_s / 3600
        self.figures.memory_gib_hours += gib_s / 3600
        estimate = cost(prices, provider, vcpu_s, gib_s)
        if estimate is None:
            self.figures.unpriced_attempts += attempts
            return
        self.figures.unpriced_attempts += unpriced
        if attempts > unpriced:
            self.priced_cost += estimate
            self.any_priced = True

    def finished(self) -> UsageFigures:
        f = self.figures
        f.used_minutes = f.billed_minutes + f.in_flight_minutes
        f.estimated_cost = round(self.priced_cost, 4) if self.any_priced else None
        f.vcpu_hours, f.memory_gib_hours = round(f.vcpu_hours, 4), round(f.memory_gib_hours, 4)
        return f


async def usage_report(ledger: Ledger, workspace: str, month: str, group_by: GroupBy,
                       prices: PriceTable, now: datetime) -> UsageReport:
    groups: dict[str, _Sums] = {}
    total = _Sums(label="total")
    for totals in await ledger.grouped_usage(workspace, month, group_by):
        groups.setdefault(totals.key, _Sums(label=totals.label)).add(totals, prices)
        total.add(totals, prices)
    if month == usage_month(now):
        for run in await ledger.in_flight_runs(workspace):
            key, label = _key_of(run, group_by, now)
            groups.setdefault(key, _Sums(label=label)).add_in_flight(run, now, prices)
            total.add_in_flight(run, now, prices)
    rows = [UsageGroup(key=key, label=sums.label, **sums.finished().model_dump()) for key, sums in groups.items()]
    rows.sort(key=lambda row: row.key if group_by == GroupBy.DAY else (-row.used_minutes, row.key))
    return UsageReport(workspace=workspace, month=month, group_by=group_by, currency=prices.currency,
                       total=total.finished(), groups=rows, generated_at=now)


async def runs_page(ledger: Ledger, workspace: WorkspaceConfig, month: str, where: RunFilter, page: int,
                    page_size: int, prices: PriceTable, now: datetime) -> RunPage:
    today = now.strftime("%Y-%m-%d") if month == usage_month(now) else None
    rows, total = await ledger.runs_page(workspace.name, month, where, (page - 1) * page_size, page_size, today)
    base = ui_base_url(workspace)
    return RunPage(items=[run_row(row, base, prices, now) for row in rows], page=page, page_size=page_size,
                   total=total, pages=max(1, math.ceil(total / page_size)))


def run_row(run: LedgerRun, ui_base: str, prices: PriceTable, now: datetime) -> RunRow:
    in_flight = run.in_flight
    seconds = (now - _since(run)).total_seconds() if in_flight else (run.compute_seconds or 0.0)
    priced = run.vcpu is not None and run.memory_mib is not None
    estimate = cost(prices, run.provider, seconds * (run.vcpu or 0), seconds * (run.memory_mib or 0) / 1024) if priced else None
    return RunRow(
        flow_run_id=run.flow_run_id, flow_run_name=run.flow_run_name, attempt=run.attempt, attempt_id=run.attempt_id,
        pool=run.pool, provider=run.provider, deployment_id=run.deployment_id, deployment_name=run.deployment_name,
        flow_name=run.flow_name, infrastructure_id=run.infrastructure_id, started_at=run.started_at,
        stopped_at=run.stopped_at, minutes=elapsed_minutes(_since(run), now) if in_flight else (run.billed_minutes or 0),
        in_flight=in_flight, final_state=run.final_state, vcpu=run.vcpu, memory_mib=run.memory_mib,
        estimated_cost=None if estimate is None else round(estimate, 6), ui_url=flow_run_url(ui_base, run.flow_run_id),
    )


async def budget_report(ledger: Ledger, workspace: WorkspaceConfig, month: str, now: datetime) -> BudgetReport:
    uses = await ledger.budget_uses(workspace.name, month, all_budget_limits(workspace), now)
    overrides = await ledger.budget_overrides(workspace.name, month)
    alerted = await ledger.alerts(workspace.name, month)
    views = [
        BudgetView(pool=use.pool, budget_minutes=use.budget_minutes, used_minutes=use.used_minutes,
                   ratio=round(use.ratio, 4), status=budget_status(use.used_minutes, use.budget_minutes),
                   alerted_pct=sorted(pct for pool, pct in alerted if (pool or None) == use.pool),
                   overridden=use.pool in overrides)
        for use in uses
    ]
    policy = workspace.budget
    return BudgetReport(workspace=workspace.name, month=month, mode=policy.mode, running_runs=policy.running_runs,
                        alert_thresholds_pct=policy.alert_thresholds_pct, budgets=views)


async def csv_lines(ledger: Ledger, workspace: WorkspaceConfig, month: str, prices: PriceTable,
                    now: datetime, batch: int = 1000) -> AsyncIterator[str]:
    """The month's metered attempts as CSV (finance's export), a header first, read a batch at a time."""
    yield _csv_line(CSV_COLUMNS)
    offset = 0
    while True:
        rows, _ = await ledger.runs_page(workspace.name, month, RunFilter(), offset, batch)
        for run in rows:
            row = run_row(run, "", prices, now)
            values = {**run.model_dump(), "month": month, "estimated_cost": row.estimated_cost,
                      "currency": prices.currency}
            yield _csv_line(tuple(values.get(column) for column in CSV_COLUMNS))
        if len(rows) < batch:
            return
        offset += batch


def _csv_line(values: tuple[object, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(value) for value in values])
    return buffer.getvalue()


def _cell(value: object) -> str:
    """Text a spreadsheet will not run as a formula (flow run names are chosen by users)."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _since(run: LedgerRun) -> datetime:
    return run.submitted_at or run.admitted_at or run.claimed_at


def _key_of(run: LedgerRun, group_by: GroupBy, now: datetime) -> tuple[str, str]:
    """The group of an attempt in flight (its day is today: it will be billed when it stops)."""
    if group_by == GroupBy.POOL:
        return run.pool, run.pool
    if group_by == GroupBy.PROVIDER:
        return run.provider, run.provider
    if group_by == GroupBy.DAY:
        return now.strftime("%Y-%m-%d"), now.strftime("%Y-%m-%d")
    if group_by == GroupBy.FLOW:
        return run.flow_name or UNKNOWN, run.flow_name or UNKNOWN
    return run.deployment_id or UNKNOWN, f"{run.flow_name or UNKNOWN}/{run.deployment_name or UNKNOWN}"
