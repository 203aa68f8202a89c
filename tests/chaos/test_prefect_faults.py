"""Prefect going away and coming back, and Prefect degraded behind the fault proxy."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.rig import settle
from tests.faultproxy import HttpFaults

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


async def test_prefect_server_restarted_mid_burst(rig, chaos_round):
    ids = await rig.burst()
    point = rig.rng.randint(1, len(ids) - 1)
    await rig.until_started(ids, point)
    print(f"restarting Prefect at {rig.started(ids)} started (point {point})")
    await asyncio.to_thread(rig.prefect.restart)
    await settle(rig, ids)


async def test_prefect_api_with_latency_503s_lost_responses_and_resets(rig, chaos_round):
    """Every call of the replicas to Prefect goes through the proxy: slow, sometimes answered 503
    without reaching Prefect, sometimes carried out with its answer lost; at a seeded point every
    open connection is reset at once and new ones are refused for a moment."""
    proxy = rig.cluster.prefect_proxy
    faults = HttpFaults(latency_s=round(rig.rng.uniform(0.005, 0.03), 3),
                        unavailable_rate=round(rig.rng.uniform(0.03, 0.08), 3),
                        lost_response_rate=round(rig.rng.uniform(0.01, 0.04), 3), seed=rig.rng.randrange(2**32))
    print(f"Prefect API faults: {faults}")
    injected_before = dict(proxy.injected)
    proxy.degrade(faults)
    ids = await rig.burst()
    point = rig.rng.randint(1, len(ids) - 1)
    await rig.until_started(ids, point)
    proxy.cut()
    await asyncio.sleep(rig.rng.uniform(0.5, 2.0))  # the outage's length (a chaos parameter, not a wait)
    proxy.restore()
    await settle(rig, ids)
    injected = {k: v - injected_before[k] for k, v in proxy.injected.items()}
    print(f"injected: {injected}")
    assert sum(injected.values()) > 0, "the faults should have hit some calls"
