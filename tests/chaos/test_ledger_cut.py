"""The ledger's connections cut (the fault proxy in front of PostgreSQL) while a burst is submitted."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.rig import settle

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


async def test_ledger_connection_cut_mid_burst(rig, chaos_round):
    """Every replica reaches the ledger through the proxy; it is cut (open connections reset, new
    ones refused) at seeded points, for seeded lengths. The invariants read the ledger directly."""
    proxy = rig.cluster.ledger_proxy
    ids = await rig.burst()
    for point in rig.points(len(ids), rig.scale.kills):
        await rig.until_started(ids, point)
        outage_s = rig.rng.uniform(1.0, 4.0)
        print(f"ledger cut at {rig.started(ids)} started (point {point}) for {outage_s:.1f}s")
        proxy.cut()
        await asyncio.sleep(outage_s)  # the outage's length (a chaos parameter, not a wait)
        proxy.restore()
    await settle(rig, ids)
