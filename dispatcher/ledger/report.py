"""``dispatcher usage``: compute per workspace and month from the ledger."""

from __future__ import annotations

import json

from dispatcher.ledger import Ledger, UsageRow


def format_usage_table(rows: list[UsageRow]) -> str:
    """A fixed-width table; an empty ledger says so."""
    if not rows:
        return "No metered runs yet."
    header = ("WORKSPACE", "MONTH", "FLOW RUNS", "ATTEMPTS", "BILLED MIN", "COMPUTE H")
    body = [
        (r.workspace, r.month, str(r.flow_runs), str(r.attempts), str(r.billed_minutes), f"{r.compute_seconds / 3600:.2f}")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)) for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def print_usage(dsn: str, *, workspace: str | None = None, month: str | None = None, as_json: bool = False) -> None:
    ledger = await Ledger.open(dsn)
    try:
        rows = await ledger.usage(workspace=workspace, month=month)
    finally:
        await ledger.close()
    if as_json:
        print(json.dumps([r.model_dump() for r in rows], indent=2))
    else:
        print(format_usage_table(rows))
