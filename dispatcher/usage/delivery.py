"""Deliver the ledger's queued events to the workspace's Prefect with Prefect's own events client.

Queue and retry: events wait in the ledger's outbox (written with the metering or alert they
report), so metering never waits for Prefect and nothing is lost to a restart. Each tick leases
a batch, sends it over one websocket under the workspace's settings, confirms it (a ping after
each event: its pong means the server has read everything before it) and marks it delivered.
A failed event is retried with backoff (doubling, at most ``MAX_BACKOFF``); one still
undelivered after ``MAX_AGE`` is dropped and counted (``dispatcher_events_dropped_total``).
While the workspace's Prefect is known to be down, delivery waits instead of trying.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from prefect.events.clients import get_events_client
from prefect.events.schemas.events import Event

from dispatcher import metrics
from dispatcher.clock import utcnow
from dispatcher.health import describe_error
from dispatcher.ledger import Ledger
from dispatcher.ledger.outbox import OutboxEvent
from dispatcher.prefect.api import PrefectApi

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(minutes=5)
MAX_AGE = timedelta(days=7)
#: Delivered rows are kept this long (for looking into), then deleted.
KEEP_DELIVERED = timedelta(days=1)


def retry_delay(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s ... at most MAX_BACKOFF (pure)."""
    return min(MAX_BACKOFF, timedelta(seconds=5 * 2 ** max(0, min(attempts - 1, 10))))


class EventDelivery:
    """One workspace's outbox, drained into its Prefect."""

    def __init__(self, prefect: PrefectApi, ledger: Ledger, clock: Callable[[], datetime] = utcnow) -> None:
        self.prefect = prefect
        self.ledger = ledger
        self.clock = clock
        self.workspace = prefect.config.name
        self._failing = False  # log a delivery outage once, and once when it is over

    async def tick(self) -> None:
        now = self.clock()
        dropped = await self.ledger.drop_stale_events(self.workspace, now - MAX_AGE)
        if dropped:
            metrics.EVENTS_DROPPED.labels(self.workspace).inc(dropped)
            log.warning("workspace %s: dropped %d events undeliverable for %s", self.workspace, dropped, MAX_AGE)
        await self.ledger.prune_delivered_events(now - KEEP_DELIVERED)
        if self.prefect.health.up:  # else Prefect's outage is already logged and counted: wait for it
            await self._deliver(await self.ledger.lease_events(self.workspace, now))
        metrics.EVENTS_QUEUED.labels(self.workspace).set(await self.ledger.undelivered_events(self.workspace))

    async def _deliver(self, batch: list[OutboxEvent]) -> None:
        if not batch:
            return
        delivered: list[OutboxEvent] = []
        try:
            with self.prefect.settings():  # this workspace's URL and credentials
                client = get_events_client(reconnection_attempts=0, checkpoint_every=1)
                async with client:
                    for queued in batch:
                        await client.emit(Event.model_validate_json(queued.body))
                        delivered.append(queued)
        except Exception as exc:  # noqa: BLE001 - any failure leaves the rest queued for the next try
            await self._failed(batch[len(delivered):], exc)
        await self.ledger.events_delivered([event.event_id for event in delivered], self.clock())
        for event in delivered:
            metrics.EVENTS_DELIVERED.labels(self.workspace, event.event).inc()
        if delivered and self._failing and len(delivered) == len(batch):
            self._failing = False
            log.info("workspace %s: events are delivered to Prefect again", self.workspace)

    async def _failed(self, undelivered: list[OutboxEvent], exc: Exception) -> None:
        metrics.EVENT_FAILURES.labels(self.workspace).inc()
        error = describe_error(exc)
        if not self._failing:
            self._failing = True
            log.warning("workspace %s: delivering events to Prefect failed (%s); %d stay queued and are retried",
                        self.workspace, error, len(undelivered))
        now = self.clock()
        for event in undelivered:
            await self.ledger.event_failed(event.event_id, now + retry_delay(event.attempts), error)
