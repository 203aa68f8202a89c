"""Prefect's events websocket as a doorbell: a new run wakes its pool's poller at once.

Only a speed-up. Runs inserted by Prefect's scheduler emit no event, so polling
stays the mechanism; an unreachable websocket only costs the speed-up and is
retried in the background.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prefect.events.clients import get_events_subscriber
from prefect.events.filters import EventFilter, EventNameFilter

from dispatcher.prefect.api import PrefectApi

log = logging.getLogger(__name__)

#: Emitted when a run is created SCHEDULED outside the scheduler (UI, API, automations, retries).
SCHEDULED_EVENT = "prefect.flow-run.Scheduled"
_RETRY_AFTER_S = 30.0


def work_pools_of(event: object) -> list[str]:
    """Names of the work pools an event's run belongs to (pure)."""
    return [r.name for r in getattr(event, "related", []) if r.role == "work-pool" and r.name]


async def ring_on_new_runs(prefect: PrefectApi, ring: Callable[[str], None]) -> None:
    """Call ``ring(pool_name)`` for every run scheduled in this workspace, until cancelled."""
    event_filter = EventFilter(event=EventNameFilter(name=[SCHEDULED_EVENT]))
    while True:
        try:
            with prefect.settings():  # Cloud or server, URL and auth of this workspace
                subscriber = get_events_subscriber(filter=event_filter, reconnection_attempts=3)
            async with subscriber:
                log.info("workspace %s: listening for new runs on Prefect's events websocket", prefect.config.name)
                async for event in subscriber:
                    for pool in work_pools_of(event):
                        ring(pool)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the websocket is optional: say so once per attempt, poll meanwhile
            log.info("workspace %s: events websocket unavailable (%s); polling only, retrying in %.0fs",
                     prefect.config.name, type(exc).__name__, _RETRY_AFTER_S)
        await asyncio.sleep(_RETRY_AFTER_S)
