"""``dispatcher usage``: compute per workspace and month from the ledger, or one month grouped
(``--by pool|deployment|flow|provider|day``, the usage API's groupings), as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from pydantic import BaseModel, Field

from dispatcher.clock import utcnow
from dispatcher.config.usage import PriceTable
from dispatcher.ledger import Ledger, UsageRow, usage_month
from dispatcher.ledger.usage import GroupBy
from dispatcher.usage.report import usage_report  # the API's report: the same figures everywhere


class UsageQuery(BaseModel):
    """What ``dispatcher usage`` was asked for."""

    dsn: str = Field(description="The ledger.")
    workspaces: list[str] | None = Field(default=None, description="These workspaces (None: every one in the ledger).")
    month: str | None = Field(default=None, description="YYYY-MM; with group_by, default this month.")
    group_by: GroupBy | None = Field(default=None, description="Group one month this way; None: totals per month.")
    output: str = Field(default="table", description="table, json or csv.")
    prices: PriceTable = Field(default_factory=PriceTable, description="For cost estimates.")


SUMMARY_HEADER = ("WORKSPACE", "MONTH", "FLOW RUNS", "ATTEMPTS", "BILLED MIN", "COMPUTE H")
GROUP_HEADER = ("WORKSPACE", "MONTH", "GROUP", "USED MIN", "BILLED MIN", "IN FLIGHT MIN", "ATTEMPTS", "FLOW RUNS", "COST")


def format_usage_table(rows: list[UsageRow]) -> str:
    """A fixed-width table; an empty ledger says so."""
    if not rows:
        return "No metered runs yet."
    body = [(r.workspace, r.month, str(r.flow_runs), str(r.attempts), str(r.billed_minutes),
             f"{r.compute_seconds / 3600:.2f}") for r in rows]
    return _table(SUMMARY_HEADER, body, text_columns=2)


async def print_usage(query: UsageQuery) -> None:
    ledger = await Ledger.open(query.dsn)
    try:
        text = await (_grouped(ledger, query) if query.group_by else _summary(ledger, query))
    finally:
        await ledger.close()
    print(text)


async def _summary(ledger: Ledger, query: UsageQuery) -> str:
    rows = [row for row in await ledger.usage(month=query.month)
            if query.workspaces is None or row.workspace in query.workspaces]
    if query.output == "json":
        return json.dumps([row.model_dump() for row in rows], indent=2)
    if query.output == "csv":
        return _csv(tuple(UsageRow.model_fields), [tuple(row.model_dump().values()) for row in rows])
    return format_usage_table(rows)


async def _grouped(ledger: Ledger, query: UsageQuery) -> str:
    now = utcnow()
    month = query.month or usage_month(now)
    names = query.workspaces or sorted({row.workspace for row in await ledger.usage(month=month)}
                                       | {run.workspace for run in await ledger.unmetered()})
    group_by = query.group_by or GroupBy.POOL
    reports = [await usage_report(ledger, name, month, group_by, query.prices, now) for name in names]
    if query.output == "json":
        return json.dumps([report.model_dump(mode="json") for report in reports], indent=2)
    body = [(r.workspace, r.month, g.label, str(g.used_minutes), str(g.billed_minutes), str(g.in_flight_minutes),
             str(g.attempts), str(g.flow_runs), "" if g.estimated_cost is None else f"{g.estimated_cost:.2f}")
            for r in reports for g in r.groups]
    if query.output == "csv":
        return _csv(tuple(h.lower().replace(" ", "_") for h in GROUP_HEADER), body)
    if not body:
        return f"No compute in {month}."
    currency = reports[0].currency if reports else query.prices.currency
    return _table((*GROUP_HEADER[:-1], f"COST {currency}"), body, text_columns=3)


def _table(header: Sequence[str], body: list[tuple[str, ...]], text_columns: int) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < text_columns else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in [tuple(header), *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _csv(header: Sequence[str], body: list[tuple[object, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue().rstrip("\n")
