"""Monthly compute budgets, decided before a run starts (pure; the ledger supplies the minutes used)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BudgetDecision(BaseModel):
    """May a new run of this workspace start this month?"""

    allowed: bool = Field(description="False: the run is refused before anything starts.")
    state_name: str = Field(default="ComputeLimitReached", description="Name of the Failed state of a refused run.")
    message: str = Field(default="", description="State message of a refused run, naming the budget and the use.")


def monthly_budget_decision(workspace: str, used_minutes: int, budget_minutes: int | None) -> BudgetDecision:
    """Refuse new runs once the month's metered minutes reach the budget; no budget allows all."""
    if budget_minutes is None or used_minutes < budget_minutes:
        return BudgetDecision(allowed=True)
    return BudgetDecision(
        allowed=False,
        message=f"Run not started: workspace {workspace!r} used {used_minutes} of its {budget_minutes} compute minutes this month.",
    )
