"""A workspace's budgets while runs run: gauges from the ledger, threshold alerts, stopping runs.

Every ``loop.budget_interval_s``, on every replica (each reads the same ledger):
- the month's use per pool and of every budget becomes gauges (``dispatcher_budget_*``),
- each alert threshold a budget has reached is recorded once per month in the ledger, with
  its event queued in the same transaction (the replica whose insert wins is the one that
  alerts; the others find the row),
- with ``budget.running_runs: stop``, runs of a used-up budget are marked Failed
  (``ComputeLimitReached``) and their infrastructure is stopped; with ``finish`` (the default)
  they run to their end, so a month may end over its budget by what was running,
- claims never submitted (runs stuck PENDING) and each provider's pacing backlog become gauges.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from prefect.states import Failed

from dispatcher import metrics
from dispatcher.clock import utcnow
from dispatcher.config import WorkspaceConfig
from dispatcher.config.usage import RunningRuns
from dispatcher.ledger import Ledger, usage_month
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import ServedPool, TrackedRun
from dispatcher.policy.budget import REJECTED_STATE, BudgetUse, crossed_thresholds, exhausted, stop_message
from dispatcher.prefect.api import PrefectApi
from dispatcher.prefect.states import set_state
from dispatcher.usage.events import threshold_event
from dispatcher.usage.gate import all_budget_limits
from providers.errors import ProviderError

log = logging.getLogger(__name__)


class BudgetMonitor:
    def __init__(self, prefect: PrefectApi, ledger: Ledger, workspace: WorkspaceConfig, inflight: InFlight,
                 pools: Mapping[str, ServedPool], clock: Callable[[], datetime] = utcnow) -> None:
        self.prefect = prefect
        self.ledger = ledger
        self.workspace = workspace
        self.inflight = inflight
        self.pools = pools
        self.clock = clock
        self._stopped: set[str] = set()  # attempts this replica already stopped for a budget

    async def tick(self) -> None:
        now = self.clock()
        month = usage_month(now)
        await self._report_month(month, now)
        uses = await self.ledger.budget_uses(self.workspace.name, month, all_budget_limits(self.workspace), now)
        for use in uses:
            _report_budget(use)
            await self._alert(use, now)
        if self.workspace.budget.running_runs == RunningRuns.STOP:
            await self._stop_over_budget(uses)
        await self._report_stuck_claims(now)
        for pool in self.pools.values():
            metrics.PROVIDER_BACKLOG.labels(pool.provider.kind).set(pool.provider.submit_backlog_s())

    async def _report_month(self, month: str, now: datetime) -> None:
        by_pool = await self.ledger.month_use_by_pool(self.workspace.name, month, now)
        for name in {*self.pools, *by_pool}:
            metrics.MONTH_USAGE.labels(self.workspace.name, name).set(by_pool.get(name, 0) * 60)

    async def _alert(self, use: BudgetUse, now: datetime) -> None:
        for pct in crossed_thresholds(use, self.workspace.budget.alert_thresholds_pct):
            if await self.ledger.record_alert(use, pct, threshold_event(use, pct, now), now):
                metrics.BUDGET_ALERTS.labels(use.workspace, use.pool or "", str(pct)).inc()
                log.warning("budget alert: %s (%d%% reached)", use.describe(), pct)

    async def _stop_over_budget(self, uses: list[BudgetUse]) -> None:
        watched = self.inflight.watched()
        self._stopped &= {str(tracked.attempt.attempt_id) for tracked in watched}  # forget what was metered
        for tracked in watched:
            attempt_id = str(tracked.attempt.attempt_id)
            if attempt_id in self._stopped:
                continue
            # The workspace's budget applies to every run, a pool's to that pool's runs.
            over = exhausted([use for use in uses if use.pool in (None, tracked.pool.name)])
            if over is not None:
                await self._stop(tracked, over)

    async def _stop(self, tracked: TrackedRun, over: BudgetUse) -> None:
        """Final state first (the engine, when killed, cannot overwrite it), then the infrastructure."""
        message = stop_message(over)
        self._stopped.add(str(tracked.attempt.attempt_id))
        metrics.BUDGET_STOPS.labels(self.workspace.name, tracked.pool.name).inc()
        log.warning("%s stopped: %s", tracked.attempt, message)
        await set_state(self.prefect, tracked.flow_run_id, Failed(name=REJECTED_STATE, message=message))
        try:
            await tracked.pool.provider.stop(tracked.ref, "compute budget used up")
        except ProviderError as exc:  # the watcher stops a final run's leftover infrastructure too
            log.warning("stopping %s failed, the watcher retries: %s", tracked.attempt, exc)

    async def _report_stuck_claims(self, now: datetime) -> None:
        claims = await self.ledger.unsubmitted(self.workspace.name)
        metrics.UNSUBMITTED_CLAIMS.labels(self.workspace.name).set(len(claims))
        oldest = min((row.claimed_at for row in claims), default=None)
        metrics.OLDEST_UNSUBMITTED_CLAIM.labels(self.workspace.name).set(
            (now - oldest).total_seconds() if oldest else 0.0)


def _report_budget(use: BudgetUse) -> None:
    labels = (use.workspace, use.pool or "")
    metrics.BUDGET_LIMIT.labels(*labels).set(use.budget_minutes * 60)
    metrics.BUDGET_USED.labels(*labels).set(use.used_minutes * 60)
    metrics.BUDGET_RATIO.labels(*labels).set(use.ratio)
