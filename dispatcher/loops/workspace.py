"""The loops that serve one workspace: poll + claim + submit, heartbeat, watch, recover.

Stateless by design: everything needed after a restart is in Prefect (states,
infrastructure_pid) and in the ledger, and recovery rebuilds the in-flight set from
them. Several replicas can run side by side: the PENDING claim decides who starts an
attempt, submissions are idempotent, metering is exactly-once in the ledger.

This module only wires the parts together and runs them on a timer:
``InFlight`` (what is in flight), ``Dispatching`` (poll, claim, submit), ``Watcher``,
``Recovery``, each with its collaborators passed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from dispatcher import metrics
from dispatcher.config import DispatcherConfig, WorkspaceConfig
from dispatcher.health import Dependency, DependencyUnavailable, LoopHealth, QuietErrors, WorkspaceHealth, workspace_health
from dispatcher.ledger import Ledger
from dispatcher.loops.calls import ProviderCalls
from dispatcher.loops.dispatching import Dispatching
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.recovery import Recovery
from dispatcher.loops.served import ServedPool
from dispatcher.loops.shards import Shards
from dispatcher.loops.submitter import Submitter
from dispatcher.loops.watcher import Watcher
from dispatcher.policy.limits import MANAGED_POOL_TYPE, effective_limits, managed_allocation
from dispatcher.prefect.api import PrefectApi
from dispatcher.prefect.events import ring_on_new_runs
from dispatcher.startup.preflight import read_push_pool, served_provider_kind
from dispatcher.usage.delivery import EventDelivery
from dispatcher.usage.monitor import BudgetMonitor
from providers.managed import ManagedProvider

log = logging.getLogger(__name__)
#: The watch backs off less than the other loops: it stops capped runs even while Prefect is down.
WATCH_MAX_BACKOFF_S = 10.0


class WorkspaceDispatcher:
    """Serves every configured pool of one workspace."""

    def __init__(
        self, config: DispatcherConfig, workspace: WorkspaceConfig, ledger: Ledger,
        providers: Callable[[str], ProviderCalls], worker_name: str,
    ) -> None:
        self.config = config
        self.workspace = workspace
        self.loop = config.loop
        self.ledger = ledger
        self._providers = providers
        self.prefect = PrefectApi(workspace, worker_name, client_retries=self.loop.prefect_client_retries)
        self.pools: dict[str, ServedPool] = {}
        self.errors = QuietErrors(workspace.name)
        self.inflight = InFlight(workspace.name)
        self.submitter = Submitter(self.prefect, workspace, ledger, self.inflight)
        self.dispatching = Dispatching(self.prefect, self.submitter, self.inflight, self.loop, self.errors)
        self.shards = Shards(ledger, workspace.name, worker_name, self.loop.member_ttl_s)
        self.watcher = Watcher(self.prefect, ledger, self.inflight, self.loop, self.errors, self.shards)
        self.recovery = Recovery(prefect=self.prefect, ledger=ledger, inflight=self.inflight, dispatching=self.dispatching,
                                 submitter=self.submitter, pools=self.pools, loop=self.loop, errors=self.errors,
                                 shards=self.shards)
        self.budgets = BudgetMonitor(self.prefect, ledger, workspace, self.inflight, self.pools)
        self.events = EventDelivery(self.prefect, ledger)
        self.loops: dict[str, LoopHealth] = {}
        self._doorbells: dict[str, asyncio.Event] = {}
        self._stopping = False
        self._stop = asyncio.Event()  # wakes every sleeping loop at shutdown
        self.ready = asyncio.Event()

    # -- health ---------------------------------------------------------------------------

    @property
    def dependencies(self) -> list[Dependency]:
        return [self.prefect.health, self.ledger.health]

    def health(self) -> WorkspaceHealth:
        return workspace_health(self.dependencies, list(self.loops.values()), time.time())

    def alive(self) -> bool:
        now = time.time()
        return all(loop.alive(now) for loop in self.loops.values())

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until ``shutdown()`` (the loops end after their current tick) or cancellation."""
        async with self.prefect:
            await self._load_pools()
            with contextlib.suppress(DependencyUnavailable):  # alone until the ledger answers
                await self.shards.tick()  # who else serves this workspace, before adopting anything
            await self.recovery.run_once()
            self.ready.set()
            loops = [self._every(self.loop.heartbeat_interval_s, self._heartbeat, "heartbeat"),
                     self._every(self.loop.membership_interval_s, self.shards.tick, "membership"),
                     self._every(self.loop.watch_interval_s, self.watcher.tick, "watch", max_backoff_s=WATCH_MAX_BACKOFF_S),
                     self._every(max(self.loop.pending_grace_s / 2, 1.0), self.recovery.run_once, "recover"),
                     self._every(self.loop.watch_interval_s, self.recovery.adopt_fresh, "adopt"),
                     self._every(self.loop.budget_interval_s, self.budgets.tick, "budgets"),
                     self._every(self.loop.event_interval_s, self.events.tick, "events")]
            loops += [self._every(self.loop.poll_interval_s, self.dispatching.poller(pool), f"poll:{name}", self._doorbells[name])
                      for name, pool in self.pools.items()]
            events = asyncio.ensure_future(ring_on_new_runs(self.prefect, self._ring)) if self.loop.listen_for_events else None
            try:
                await asyncio.gather(*loops)
            finally:
                if events is not None:
                    events.cancel()

    async def shutdown(self, grace_s: float) -> None:
        """Stop claiming; let accepted claims finish submitting for up to ``grace_s``, then leave
        the rest to recovery (another replica, or this one after its restart, re-drives them)."""
        self._stopping = True
        self._stop.set()
        for doorbell in self._doorbells.values():
            doorbell.set()
        await self.dispatching.stop(grace_s)
        with contextlib.suppress(DependencyUnavailable):
            await self.shards.leave()  # the others take this replica's runs now, not after the TTL

    async def _load_pools(self) -> None:
        for pool_config in self.workspace.pools:
            work_pool = await read_push_pool(self.prefect, self.workspace, pool_config.name)  # StartupError: exit 4
            kind = served_provider_kind(self.workspace, pool_config, work_pool, self.config.managed_provider)
            self._doorbells[pool_config.name] = asyncio.Event()
            limits = effective_limits(self.config, self.workspace, pool_config, work_pool.type)
            provider = self._providers(kind)
            if work_pool.type == MANAGED_POOL_TYPE:  # Prefect Managed's variables, allow-list and allocation
                managed = ManagedProvider(provider.provider, managed_allocation(limits), self.config.managed.allowed_images)
                provider = ProviderCalls(managed, self.loop)
            self.pools[pool_config.name] = ServedPool(
                config=pool_config, pool_type=work_pool.type, provider=provider, limits=limits, work_pool=work_pool,
            )
            log.info("serving pool %s (%s) of workspace %s with provider %s",
                     pool_config.name, work_pool.type, self.workspace.name, kind)

    async def _heartbeat(self) -> None:
        for pool in self.pools.values():
            await self.prefect.heartbeat(pool.name, self.loop.heartbeat_interval_s)
            pool.work_pool = await self.prefect.read_pool(pool.name)  # pick up template edits

    async def _every(
        self, interval_s: float, step: Callable[[], Awaitable[None]], name: str, doorbell: asyncio.Event | None = None,
        max_backoff_s: float = 30.0,
    ) -> None:
        """Run ``step`` every ``interval_s`` (or as soon as ``doorbell`` rings); errors back off, never end the loop."""
        health = self.loops[name] = LoopHealth(name, interval_s, self.loop.health_stale_after_s, self.workspace.name)
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
                metrics.LOOP_ERRORS.labels(self.workspace.name, name.split(":")[0]).inc()
                if isinstance(exc, DependencyUnavailable):
                    wait_s = exc.dependency.backoff_s(interval_s, max_backoff_s)
                else:
                    self.errors.report(name.split(":")[0], f"loop {name}", exc)
                    wait_s = min(max_backoff_s, max(interval_s, 1.0) * 2 ** min(failures - 1, 5))
            wake = self._stop if doorbell is None or failures else doorbell
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), wait_s)
            if doorbell is not None and not self._stopping:
                doorbell.clear()

    def _ring(self, pool: str) -> None:
        if pool in self._doorbells:
            self._doorbells[pool].set()
