"""Deleting finished container groups: paced by ACI's delete quota, retried until done.

``release`` queues a group once the dispatcher has recorded everything it needs from it
(state, exit code, timestamps, log tail) and deletes it at once if the subscription's
delete pacer has a token; otherwise housekeeping (every minute) deletes what the pacer
allows. A 429 pauses the subscription's deletes for its Retry-After; transient errors
re-queue the group. The queue lives in memory: what a crash loses, the orphan sweep
finds again (groups tagged as ours, ended more than ``orphan_grace_s`` ago, not kept).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from datetime import datetime, timezone


from providers.aci import naming
from providers.aci.errors import AzureThrottled, azure_errors, is_not_found
from providers.aci.scopes import QuotaPacers, Scope, Target
from providers.aci.watch import ClientOf, StatusBook
from providers.base import InfraPhase
from providers.errors import ProviderError

logger = logging.getLogger(__name__)
#: A group whose deletion keeps failing permanently (say, a lost permission) is given up after this many tries.
MAX_DELETE_TRIES = 50
#: Most groups one orphan sweep reads (GET) per resource group.
SWEEP_READS = 50


class Deleter:
    def __init__(self, pacers: QuotaPacers, client_of: ClientOf, book: StatusBook) -> None:
        self.pacers = pacers
        self.client_of = client_of
        self.book = book
        self.queue: deque[tuple[Target, int]] = deque()
        self.queued: set[str] = set()
        self.deleted = 0

    def enqueue(self, target: Target) -> None:
        if target.infrastructure_id not in self.queued:
            self.queued.add(target.infrastructure_id)
            self.queue.append((target, 0))

    async def drain(self) -> None:
        """Delete queued groups while their subscription's delete pacer has tokens now; never waits."""
        blocked: set[str] = set()
        for _ in range(len(self.queue)):
            target, tries = self.queue.popleft()
            pacer = self.pacers.deletes(target.scope.subscription)
            if target.scope.subscription in blocked or pacer.wait_s() > 0:
                blocked.add(target.scope.subscription)
                self.queue.append((target, tries))
                continue
            await pacer.acquire()
            if await self._delete(target, tries):
                self.queued.discard(target.infrastructure_id)

    async def _delete(self, target: Target, tries: int) -> bool:
        """True when the group is gone (or given up); False when it stays queued."""
        pacer = self.pacers.deletes(target.scope.subscription)
        try:
            client = await self.client_of(target.scope)
            with azure_errors("delete container group"):
                await client.container_groups.begin_delete(target.scope.resource_group, target.name, polling=False)
        except AzureThrottled as exc:
            exc.slow(pacer)
            self.queue.append((target, tries + 1))
            return False
        except ProviderError as exc:
            if is_not_found(exc):
                return True
            if not exc.retryable and tries + 1 >= MAX_DELETE_TRIES:
                logger.error("giving up deleting container group %s after %d tries: %s", target.name, tries + 1, exc)
                return True
            logger.info("deleting container group %s failed (%s); retrying later", target.name, exc)
            self.queue.append((target, tries + 1))
            return False
        pacer.succeeded()
        self.deleted += 1
        self.book.forget(target.infrastructure_id)
        logger.info("deleted container group %s", target.name)
        return True


class OrphanSweep:
    """Finds groups of ours that ended long ago and nobody released (a crash between metering and delete)."""

    def __init__(self, book: StatusBook, deleter: Deleter, interval_s: float, grace_s: float) -> None:
        self.book, self.deleter = book, deleter
        self.interval_s, self.grace_s = interval_s, grace_s
        self.scopes: set[Scope] = set()
        self._last = 0.0

    def remember(self, scope: Scope) -> None:
        self.scopes.add(scope)

    async def sweep(self, live: set[str]) -> None:
        now = time.monotonic()
        if now - self._last < self.interval_s:
            return
        self._last = now
        for scope in list(self.scopes):
            try:
                await self._sweep_scope(scope, live)
            except ProviderError as exc:
                logger.info("orphan sweep of resource group %s failed: %s", scope.resource_group, exc)

    async def _sweep_scope(self, scope: Scope, live: set[str]) -> None:
        listed = await self.book.list_scope(scope)
        reads = 0
        for name, row in listed.items():
            if row.tags.get(naming.TAG_MANAGED) != "1" or row.tags.get(naming.TAG_KEEP) == "true":
                continue
            flow_run_id = row.tags.get(naming.TAG_FLOW_RUN, "")
            target = Target(scope=scope, name=name, infrastructure_id=naming.infrastructure_id_text(flow_run_id, name))
            if target.infrastructure_id in live or target.infrastructure_id in self.deleter.queued:
                continue
            pacer = self.book.pacers.reads(scope.subscription)
            if reads >= SWEEP_READS or pacer.wait_s() > 0:
                return
            await pacer.acquire()
            reads += 1
            status = await self.book.read(target)
            self.book.forget(target.infrastructure_id)  # not watched by this replica: keep no state
            if status is not None and status.phase == InfraPhase.EXITED and _ended_before(status.stopped_at,
                                                                                        self.grace_s):
                logger.warning("container group %s ended over %.0f s ago and was never released: deleting it",
                               name, self.grace_s)
                self.deleter.enqueue(target)


def _ended_before(stopped_at: datetime | None, grace_s: float) -> bool:
    if stopped_at is None:
        return False
    return (datetime.now(timezone.utc) - stopped_at).total_seconds() >= grace_s



