"""A workspace's budgets as the submitter meets them: which apply to a pool, admission, holding.

Admission itself is the ledger's (one locked transaction, see ``ledger/budgets.py``). In hold
mode a run whose budget is used up must not be claimed at every poll only to be put back, so
``hold`` answers from a short-lived reading of the month's use before the claim; the admission
after the claim stays the authority.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from dispatcher.clock import utcnow
from dispatcher.config import WorkspaceConfig
from dispatcher.config.usage import BudgetMode
from dispatcher.ledger import Ledger, usage_month
from dispatcher.ledger.models import AttemptRef, BudgetLimit, RunFacts
from dispatcher.policy.budget import BudgetDecision, admission_decision

#: How long one reading of the month's use answers ``hold`` (every poll asks, for every due run).
HOLD_READING_TTL_S = 5.0


def budget_limits(workspace: WorkspaceConfig, pool: str | None) -> list[BudgetLimit]:
    """The budgets that apply to a run of ``pool`` (the workspace's, the pool's); pool None: the workspace's only."""
    limits = []
    if workspace.monthly_compute_minutes is not None:
        limits.append(BudgetLimit(pool=None, minutes=workspace.monthly_compute_minutes))
    for pool_config in workspace.pools:
        if pool_config.name == pool and pool_config.monthly_compute_minutes is not None:
            limits.append(BudgetLimit(pool=pool, minutes=pool_config.monthly_compute_minutes))
    return limits


def all_budget_limits(workspace: WorkspaceConfig) -> list[BudgetLimit]:
    """Every budget of the workspace: its own and each pool's."""
    pools = [BudgetLimit(pool=p.name, minutes=p.monthly_compute_minutes)
             for p in workspace.pools if p.monthly_compute_minutes is not None]
    return budget_limits(workspace, None) + pools


class BudgetGate:
    def __init__(self, ledger: Ledger, workspace: WorkspaceConfig, clock: Callable[[], datetime] = utcnow) -> None:
        self.ledger = ledger
        self.workspace = workspace
        self.clock = clock
        self._readings: dict[str, tuple[float, BudgetDecision]] = {}

    @property
    def mode(self) -> BudgetMode:
        return self.workspace.budget.mode

    async def admit(self, attempt: AttemptRef, pool: str, provider: str, facts: RunFacts) -> BudgetDecision:
        """Admit the attempt (recording its facts) or say why not; serialised with every other replica's."""
        return await self.ledger.admit(
            attempt, workspace=self.workspace.name, pool=pool, provider=provider, facts=facts,
            limits=budget_limits(self.workspace, pool), mode=self.mode, now=self.clock(),
        )

    async def hold(self, pool: str) -> BudgetDecision | None:
        """In hold mode: the decision holding new runs of ``pool`` back, or None when they may be claimed."""
        if self.mode != BudgetMode.HOLD:
            return None
        reading = self._readings.get(pool)
        if reading is None or time.monotonic() - reading[0] > HOLD_READING_TTL_S:
            now = self.clock()
            limits = budget_limits(self.workspace, pool)
            uses = await self.ledger.budget_uses(self.workspace.name, usage_month(now), limits, now, pool=pool)
            reading = self._readings[pool] = (time.monotonic(), admission_decision(uses, self.mode))
        return None if reading[1].allowed else reading[1]

    def forget_readings(self) -> None:
        """After an admission was refused: the next ``hold`` reads the ledger again."""
        self._readings.clear()
