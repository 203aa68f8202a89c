"""The loops that serve one workspace: poll + claim + submit, heartbeat, watch, recover.

Stateless by design: everything needed after a restart is in Prefect (states,
infrastructure_pid) and in the ledger, and ``recover`` rebuilds the in-flight set
from them. Several replicas can run side by side: the PENDING claim decides who
starts a run, submissions are idempotent, metering is exactly-once in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

from prefect.client.schemas.objects import FlowRun

from dispatcher import metrics
from dispatcher.config import DispatcherConfig, WorkspaceConfig
from dispatcher.events import ring_on_new_runs
from dispatcher.ledger import Ledger
from dispatcher.limits import effective_limits
from dispatcher.pools import ServedPool
from dispatcher.prefect_api import PrefectWorkspace, Proposal, seconds_since, utcnow
from dispatcher.recovery import Recovery
from dispatcher.startup import read_push_pool, served_provider_kind
from dispatcher.submitter import Submitter
from dispatcher.watcher import Watcher
from providers.base import Provider

log = logging.getLogger(__name__)


class WorkspaceDispatcher:
    """Serves every configured pool of one workspace."""

    def __init__(
        self, config: DispatcherConfig, ws: WorkspaceConfig, ledger: Ledger,
        providers: Callable[[str], Provider], worker_name: str,
    ) -> None:
        self.config = config
        self.ws = ws
        self.loop = config.loop
        self.ledger = ledger
        self._providers = providers
        self.api = PrefectWorkspace(ws, worker_name)
        self.pools: dict[str, ServedPool] = {}
        self.watcher = Watcher(self.api, ws, ledger, self.loop)
        self.submitter = Submitter(self.api, ws, ledger, self.loop, self.watcher.track)
        self.recovery = Recovery(self)
        self._handling: set[UUID] = set()
        self._doorbells: dict[str, asyncio.Event] = {}
        self._submit_slots = asyncio.Semaphore(self.loop.max_concurrent_submissions)
        self._tasks: set[asyncio.Task] = set()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled."""
        async with self.api:
            await self._load_pools()
            await self.recovery.run_once()
            self.ready.set()
            loops = [self._every(self.loop.heartbeat_interval_s, self._heartbeat, "heartbeat"),
                     self._every(self.loop.watch_interval_s, self.watcher.tick, "watch"),
                     self._every(max(self.loop.pending_grace_s / 2, 1.0), self.recovery.run_once, "recover")]
            loops += [self._every(self.loop.poll_interval_s, self._poller(pool), f"poll:{pool.name}", self._doorbells[name])
                      for name, pool in self.pools.items()]
            if self.loop.listen_for_events:
                loops.append(ring_on_new_runs(self.api, self._ring))
            try:
                await asyncio.gather(*loops)
            finally:
                for task in list(self._tasks):
                    task.cancel()

    async def _load_pools(self) -> None:
        for pool_config in self.ws.pools:
            work_pool = await read_push_pool(self.api, self.ws, pool_config.name)  # StartupError: exit 4
            kind = served_provider_kind(self.ws, pool_config, work_pool, self.config.managed_provider)
            self._doorbells[pool_config.name] = asyncio.Event()
            self.pools[pool_config.name] = ServedPool(
                config=pool_config,
                pool_type=work_pool.type,
                provider=self._providers(kind),
                limits=effective_limits(self.config, self.ws, pool_config, work_pool.type),
                work_pool=work_pool,
            )
            log.info("serving pool %s (%s) of workspace %s with provider %s", pool_config.name, work_pool.type, self.ws.name, kind)

    async def _heartbeat(self) -> None:
        for pool in self.pools.values():
            await self.api.heartbeat(pool.name, self.loop.heartbeat_interval_s)
            pool.work_pool = await self.api.read_pool(pool.name)  # pick up template edits

    async def _every(
        self, interval_s: float, step: Callable[[], Awaitable[None]], name: str, doorbell: asyncio.Event | None = None
    ) -> None:
        """Run ``step`` every ``interval_s`` (or as soon as ``doorbell`` rings); errors are counted, never fatal."""
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                metrics.LOOP_ERRORS.labels(self.ws.name, name.split(":")[0]).inc()
                log.exception("workspace %s: %s loop failed; continuing", self.ws.name, name)
            if doorbell is None:
                await asyncio.sleep(interval_s)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(doorbell.wait(), interval_s)
            doorbell.clear()

    def _ring(self, pool: str) -> None:
        if pool in self._doorbells:
            self._doorbells[pool].set()

    def _poller(self, pool: ServedPool) -> Callable[[], Awaitable[None]]:
        async def poll() -> None:
            before = utcnow() + timedelta(seconds=self.loop.prefetch_s)
            for flow_run in await self.api.due_runs(pool.name, pool.config.work_queues, before):
                if flow_run.id not in self._handling:
                    self._handling.add(flow_run.id)
                    self.spawn(self._dispatch(flow_run, pool))

        return poll

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, flow_run: FlowRun, pool: ServedPool) -> None:
        """Claim at the scheduled time, then submit. Prefetched runs wait here, not in Prefect."""
        try:
            delay = -seconds_since(flow_run.next_scheduled_start_time or flow_run.expected_start_time)
            if delay > 0:
                await asyncio.sleep(delay)
            async with self._submit_slots:
                # WAIT (too early by Prefect's clock) and REFUSED leave the run to the next poll.
                outcome = await self.submitter.claim(flow_run, pool)
                if outcome == Proposal.ACCEPTED:
                    await self.submitter.submit_claimed(flow_run, pool)
        except Exception:
            metrics.LOOP_ERRORS.labels(self.ws.name, "dispatch").inc()
            log.exception("dispatching flow run %s failed; recovery will re-drive it", flow_run.id)
        finally:
            self._handling.discard(flow_run.id)

    async def redrive(self, flow_run: FlowRun, pool: ServedPool) -> None:
        """Submit a run that is already ours (PENDING, no infrastructure id) again, idempotently."""
        if flow_run.id in self._handling:
            return
        self._handling.add(flow_run.id)
        try:
            async with self._submit_slots:
                await self.submitter.submit_claimed(flow_run, pool)
        finally:
            self._handling.discard(flow_run.id)

    def is_handling(self, flow_run_id: UUID) -> bool:
        return flow_run_id in self._handling
