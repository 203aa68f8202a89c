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
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

from prefect.client.schemas.objects import FlowRun

from dispatcher import metrics
from dispatcher.config import DispatcherConfig, WorkspaceConfig
from dispatcher.prefect.events import ring_on_new_runs
from dispatcher.health import Dependency, DependencyUnavailable, LoopHealth, QuietErrors, WorkspaceHealth, workspace_health
from dispatcher.ledger import Ledger
from dispatcher.policy.limits import effective_limits
from dispatcher.loops.served import ServedPool
from dispatcher.prefect.api import PrefectWorkspace, Proposal, seconds_since, utcnow
from dispatcher.loops.recovery import Recovery
from dispatcher.startup.preflight import read_push_pool, served_provider_kind
from dispatcher.loops.submitter import Submitter
from dispatcher.loops.watcher import Watcher
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
        self.api = PrefectWorkspace(ws, worker_name, client_retries=self.loop.prefect_client_retries)
        self.pools: dict[str, ServedPool] = {}
        self.errors = QuietErrors(ws.name)
        self.watcher = Watcher(self.api, ws, ledger, self.loop, self.errors)
        self.submitter = Submitter(self.api, ws, ledger, self.loop, self.watcher.track)
        self.recovery = Recovery(self)
        self.loops: dict[str, LoopHealth] = {}
        self._handling: dict[UUID, asyncio.Task] = {}  # every run between poll and recorded submission
        self._claimed: set[UUID] = set()  # of those, the ones whose claim was accepted
        self._doorbells: dict[str, asyncio.Event] = {}
        self._submit_slots = asyncio.Semaphore(self.loop.max_concurrent_submissions)
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._stop = asyncio.Event()  # wakes every sleeping loop at shutdown
        self.ready = asyncio.Event()

    # -- health ---------------------------------------------------------------------------

    @property
    def dependencies(self) -> list[Dependency]:
        return [self.api.health, self.ledger.health]

    def health(self) -> WorkspaceHealth:
        return workspace_health(self.dependencies, list(self.loops.values()), time.time())

    def alive(self) -> bool:
        now = time.time()
        return all(loop.alive(now) for loop in self.loops.values())

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled."""
        async with self.api:
            await self._load_pools()
            await self.recovery.run_once()
            self.ready.set()
            loops = [self._every(self.loop.heartbeat_interval_s, self._heartbeat, "heartbeat"),
                     # The watch backs off less: it stops capped runs even while Prefect is down.
                     self._every(self.loop.watch_interval_s, self.watcher.tick, "watch", max_backoff_s=10.0),
                     self._every(max(self.loop.pending_grace_s / 2, 1.0), self.recovery.run_once, "recover")]
            loops += [self._every(self.loop.poll_interval_s, self._poller(pool), f"poll:{pool.name}", self._doorbells[name])
                      for name, pool in self.pools.items()]
            if self.loop.listen_for_events:
                self.spawn(ring_on_new_runs(self.api, self._ring))
            try:
                await asyncio.gather(*loops)  # they return after shutdown() once their current tick is over
            finally:
                for task in list(self._tasks):
                    task.cancel()

    async def shutdown(self, grace_s: float) -> None:
        """Stop claiming; let accepted claims finish submitting for up to ``grace_s``, then leave
        the rest to recovery (another replica, or this one after its restart, re-drives them)."""
        self._stopping = True
        self._stop.set()
        for doorbell in self._doorbells.values():
            doorbell.set()
        waiting = [task for run_id, task in self._handling.items() if run_id not in self._claimed]
        for task in waiting:  # not claimed yet: nothing to hand over
            task.cancel()
        submitting = [task for run_id, task in self._handling.items() if run_id in self._claimed]
        if submitting:
            log.info("workspace %s: waiting up to %.0f s for %d submissions in flight", self.ws.name, grace_s, len(submitting))
            _, pending = await asyncio.wait(submitting, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("workspace %s: %d submissions handed over to recovery", self.ws.name, len(pending))

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
        self, interval_s: float, step: Callable[[], Awaitable[None]], name: str, doorbell: asyncio.Event | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        """Run ``step`` every ``interval_s`` (or as soon as ``doorbell`` rings); errors back off, never end the loop."""
        health = self.loops[name] = LoopHealth(name, interval_s, self.loop.health_stale_after_s)
        failures = 0
        while not self._stopping:
            wait_s = interval_s
            try:
                await step()
                health.ticked(ok=True)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a loop must survive anything; see QuietErrors
                health.ticked(ok=False)
                failures += 1
                metrics.LOOP_ERRORS.labels(self.ws.name, name.split(":")[0]).inc()
                if isinstance(exc, DependencyUnavailable):
                    wait_s = exc.dependency.backoff_s(interval_s, max_backoff_s)
                else:
                    self.errors.report(name.split(":")[0], f"loop {name}", exc)
                    wait_s = min(30.0, max(interval_s, 1.0) * 2 ** min(failures - 1, 5))
            wake = self._stop if doorbell is None or failures else doorbell
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait_s)
            if doorbell is not None and not self._stopping:
                doorbell.clear()

    def _ring(self, pool: str) -> None:
        if pool in self._doorbells:
            self._doorbells[pool].set()

    def _poller(self, pool: ServedPool) -> Callable[[], Awaitable[None]]:
        async def poll() -> None:
            before = utcnow() + timedelta(seconds=self.loop.prefetch_s)
            for flow_run in await self.api.due_runs(pool.name, pool.config.work_queues, before):
                if flow_run.id not in self._handling and not self._stopping:
                    self._handle(flow_run.id, self._dispatch(flow_run, pool))

        return poll

    def _handle(self, flow_run_id: UUID, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._handling[flow_run_id] = task
        task.add_done_callback(lambda _: self._release(flow_run_id))

    def _release(self, flow_run_id: UUID) -> None:
        self._handling.pop(flow_run_id, None)
        self._claimed.discard(flow_run_id)

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
                if self._stopping:
                    return
                # WAIT (too early by Prefect's clock) and REFUSED leave the run to the next poll.
                outcome = await self.submitter.claim(flow_run, pool)
                if outcome == Proposal.ACCEPTED:
                    self._claimed.add(flow_run.id)
                    await self.submitter.submit_claimed(flow_run, pool)
        except Exception as exc:  # noqa: BLE001 - recovery re-drives a claimed run; see QuietErrors
            metrics.LOOP_ERRORS.labels(self.ws.name, "dispatch").inc()
            self.errors.report("dispatch", f"flow run {flow_run.id}", exc)

    def redrive(self, flow_run: FlowRun, pool: ServedPool) -> None:
        """Submit a run that is already ours (PENDING, no infrastructure id) again, idempotently."""
        if flow_run.id in self._handling or self._stopping:
            return
        self._claimed.add(flow_run.id)
        self._handle(flow_run.id, self._redrive(flow_run, pool))

    async def _redrive(self, flow_run: FlowRun, pool: ServedPool) -> None:
        try:
            async with self._submit_slots:
                await self.submitter.submit_claimed(flow_run, pool)
        except Exception as exc:  # noqa: BLE001 - the next recovery pass tries again
            self.errors.report("redrive", f"flow run {flow_run.id}", exc)

    def is_handling(self, flow_run_id: UUID) -> bool:
        return flow_run_id in self._handling
