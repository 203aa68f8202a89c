"""Periodic provider housekeeping (e.g. deleting old local run directories).

Providers are created lazily, as workspaces load their pools, and shared by all
workspaces: one loop calls ``housekeeping`` on every provider instance that exists.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from dispatcher import metrics
from dispatcher.loops.calls import ProviderCalls

log = logging.getLogger(__name__)

#: Seconds between two sweeps; a provider's retention is far longer.
HOUSEKEEPING_INTERVAL_S = 60.0
#: The workspace label of loop errors that belong to no single workspace (providers are shared).
ALL_WORKSPACES = "*"


async def keep_house(providers: Callable[[], Iterable[ProviderCalls]], interval_s: float = HOUSEKEEPING_INTERVAL_S) -> None:
    """Call every provider's ``housekeeping`` every ``interval_s`` until cancelled; failures never end the loop."""
    failing: set[str] = set()
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.gather(*(_sweep(provider, failing) for provider in list(providers())))


async def _sweep(provider: ProviderCalls, failing: set[str]) -> None:
    """One provider's housekeeping; an error is counted every time and logged once until it recovers."""
    try:
        await provider.housekeeping()
    except Exception:  # the contract says it never raises; a provider that does must not stop the others
        metrics.LOOP_ERRORS.labels(ALL_WORKSPACES, "housekeeping").inc()
        if provider.kind not in failing:
            failing.add(provider.kind)
            log.exception("housekeeping of the %s provider failed; retrying on every sweep", provider.kind)
        return
    if provider.kind in failing:
        failing.discard(provider.kind)
        log.info("housekeeping of the %s provider works again", provider.kind)
