"""From due runs to submitted infrastructure: poll a pool, claim each run at its scheduled time, submit.

Runs prefetched before their time wait here (not in Prefect); at most
``max_concurrent_submissions`` are claimed and submitted at once, so a replica never
claims more than it can start soon: the rest stay SCHEDULED, free for another replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from prefect.client.schemas.objects import FlowRun

from dispatcher import metrics
from dispatcher.clock import seconds_since, utcnow
from dispatcher.config import LoopConfig
from dispatcher.health import QuietErrors
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import Attempt, ServedPool, is_in_process_retry
from dispatcher.loops.submitter import Submitter
from dispatcher.prefect.api import PrefectApi

log = logging.getLogger(__name__)


class Dispatching:
    def __init__(
        self, prefect: PrefectApi, submitter: Submitter, inflight: InFlight, loop: LoopConfig, errors: QuietErrors
    ) -> None:
        self.prefect = prefect
        self.submitter = submitter
        self.inflight = inflight
        self.loop = loop
        self.errors = errors
        self._slots = asyncio.Semaphore(loop.max_concurrent_submissions)
        self._stopping = False

    def poller(self, pool: ServedPool) -> Callable[[], Awaitable[None]]:
        """One poll of ``pool``: every due run not handled yet gets a dispatch task."""

        async def poll() -> None:
            before = utcnow() + timedelta(seconds=self.loop.prefetch_s)
            for flow_run in await self.prefect.due_runs(pool.name, pool.config.work_queues, before):
                # The engine's own retries (AwaitingRetry) run again on the same infrastructure.
                if not self._stopping and not is_in_process_retry(flow_run):
                    self.inflight.dispatch(flow_run.id, self._dispatch(flow_run, pool))

        return poll

    async def _dispatch(self, flow_run: FlowRun, pool: ServedPool) -> None:
        """Claim at the scheduled time, then submit."""
        try:
            delay = -seconds_since(flow_run.next_scheduled_start_time or flow_run.expected_start_time)
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._slots:
                if self._stopping or pool.provider.submit_backlog_s() > self.loop.claim_horizon_s:
                    return  # not claimed: it stays SCHEDULED for the next poll, or another replica
                # None (refused, or too early by Prefect's clock) leaves the run to the next poll.
                attempt = await self.submitter.claim(flow_run, pool)
                if attempt is not None:
                    await self.submitter.submit_claimed(flow_run, pool, attempt)
        except Exception as exc:  # noqa: BLE001 - recovery re-drives a claimed run; see QuietErrors
            metrics.LOOP_ERRORS.labels(self.prefect.config.name, "dispatch").inc()
            self.errors.report("dispatch", f"flow run {flow_run.id}", exc)

    def redrive(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt) -> None:
        """Submit an attempt that is already ours (claimed, no infrastructure recorded) again, idempotently."""
        if not self._stopping:
            self.inflight.dispatch(flow_run.id, self._redrive(flow_run, pool, attempt), claimed=True)

    async def _redrive(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt) -> None:
        try:
            async with self._slots:
                await self.submitter.submit_claimed(flow_run, pool, attempt, redrive=True)
        except Exception as exc:  # noqa: BLE001 - the next recovery pass tries again
            self.errors.report("redrive", str(attempt), exc)

    async def stop(self, grace_s: float) -> None:
        """No new claims; claimed submissions get ``grace_s``, then recovery takes them over."""
        self._stopping = True
        if self.inflight.submitting():
            log.info("workspace %s: waiting up to %.0f s for %d submissions in flight",
                     self.prefect.config.name, grace_s, self.inflight.submitting())
        cut_short = await self.inflight.drain(grace_s)
        if cut_short:
            log.warning("workspace %s: %d submissions handed over to recovery", self.prefect.config.name, cut_short)
