"""Monthly compute budgets, decided before a run starts and while runs run (pure; the ledger supplies the use).

A budget's *use* in a month is the metered minutes billed to that month plus the elapsed
minutes of the attempts in flight (each at least one minute: any started minute is billed).
A new run is admitted only if its first minute fits under every budget that applies to it
(its workspace's, its pool's): so once admissions are serialised (the ledger does that),
concurrent replicas cannot start a run over a budget by racing each other.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field

from dispatcher.config.usage import BudgetMode

REJECTED_STATE = "ComputeLimitReached"  # Failed: reject mode, and runs stopped by running_runs: stop
HELD_STATE = "AwaitingComputeBudget"  # Scheduled: hold mode (Prefect marks only runs named "Scheduled" late)
#: The share of a budget from which the page and the API call it a warning.
WARNING_RATIO = 0.8


class BudgetStatus(str, enum.Enum):
    OK = "ok"
    WARNING = "warning"  # 80 % or more used
    EXCEEDED = "exceeded"  # all used: new runs are rejected or held


class BudgetUse(BaseModel):
    """One budget that applies to a run, and how much of it this month has used."""

    workspace: str = Field(description="The workspace the budget belongs to.")
    pool: str | None = Field(default=None, description="The pool, for a pool's own budget; None for the workspace's.")
    month: str = Field(description="The UTC month, YYYY-MM.")
    budget_minutes: int = Field(description="The budget.")
    used_minutes: int = Field(description="Metered minutes of the month plus elapsed minutes of attempts in flight.")

    @property
    def owner(self) -> str:
        return f"workspace {self.workspace!r}" if self.pool is None else f"pool {self.pool!r} of workspace {self.workspace!r}"

    @property
    def ratio(self) -> float:
        return self.used_minutes / self.budget_minutes

    def describe(self) -> str:
        return f"{self.owner} used {self.used_minutes} of its {self.budget_minutes} compute minutes in {self.month}"


class BudgetDecision(BaseModel):
    """May a new run start now?"""

    allowed: bool = Field(description="False: the run does not start now.")
    hold: bool = Field(default=False, description="True: it waits Scheduled (hold mode); False: it fails (reject).")
    state_name: str = Field(default=REJECTED_STATE, description="Name of the state a run that may not start gets.")
    message: str = Field(default="", description="State message naming the budget and its use.")


def admission_decision(uses: list[BudgetUse], mode: BudgetMode) -> BudgetDecision:
    """Admit a run when one more minute fits under every budget in ``uses``; no budget admits all."""
    exhausted = [use for use in uses if use.used_minutes + 1 > use.budget_minutes]
    if not exhausted:
        return BudgetDecision(allowed=True)
    why = "; ".join(use.describe() for use in exhausted)
    if mode == BudgetMode.HOLD:
        return BudgetDecision(
            allowed=False, hold=True, state_name=HELD_STATE,
            message=f"Waiting for compute budget: {why}. The run starts by itself when the month rolls over "
                    "or the budget is raised.",
        )
    return BudgetDecision(allowed=False, message=f"Run not started: {why}.")


def stop_message(use: BudgetUse) -> str:
    """State message of a running run stopped because its budget is used up (``running_runs: stop``)."""
    return f"Stopped by the dispatcher: {use.describe()} (budget.running_runs is 'stop')."


def budget_status(used_minutes: int, budget_minutes: int | None) -> BudgetStatus:
    if budget_minutes is None or used_minutes < WARNING_RATIO * budget_minutes:
        return BudgetStatus.OK
    return BudgetStatus.EXCEEDED if used_minutes >= budget_minutes else BudgetStatus.WARNING


def crossed_thresholds(use: BudgetUse, thresholds_pct: list[int]) -> list[int]:
    """The alert thresholds (percent) this use has reached; each is alerted once per month (the ledger dedupes)."""
    return [pct for pct in thresholds_pct if use.used_minutes * 100 >= pct * use.budget_minutes]


def exhausted(uses: list[BudgetUse]) -> BudgetUse | None:
    """The first budget that is used up (for stopping running runs), or None."""
    return next((use for use in uses if use.used_minutes >= use.budget_minutes), None)
