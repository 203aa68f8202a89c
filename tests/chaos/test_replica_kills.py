"""kill -9 of dispatcher replicas at seeded points of a burst, on every cloud; each killed replica is
started again at once (its start-up is not waited for, so a later kill may land while it is starting)."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.rig import settle

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


@pytest.mark.clouds("ecs", "cloud-run", "aci")
async def test_replicas_killed_at_random_points_of_a_burst(rig, chaos_round):
    ids = await rig.burst()
    for point in rig.points(len(ids), rig.scale.kills):
        await rig.until_started(ids, point)
        victim = rig.rng.choice(rig.replicas)
        print(f"kill -9 {victim.name} at {rig.started(ids)} started (point {point})")
        victim.kill9()
        victim.start()  # as a supervisor would
    await asyncio.gather(*(replica.live() for replica in rig.replicas))
    await settle(rig, ids)
