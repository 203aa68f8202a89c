"""The cloud misbehaving, on every cloud: throttling, 5xx, lost responses, accept-then-fail and
launches that never start, on top of realistic mode's quotas and launch limits.

The faults come from each cloud's adapter (``tests/chaos/cloud_*.py``). A launch carried out
but answered 5xx is retried idempotently (ECS: the same clientToken; Cloud Run and ACI: the
execution or group found by the attempt), so it must not start a second time; a launch that
never starts ends its run Crashed, once.
"""

from __future__ import annotations

import pytest

from tests.chaos.rig import settle

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


@pytest.mark.clouds("ecs", "cloud-run", "aci")
async def test_cloud_api_faults_during_a_burst(rig, chaos_round):
    faults, failing = rig.cloud.api_faults(rig.rng)
    print(f"{rig.cloud.name} faults: {faults}")
    rig.emu.faults = faults
    ids = await rig.burst()
    summary = await settle(rig, ids)
    # The countdowns count down on the object itself: every one was spent on this burst.
    assert rig.cloud.spent(faults), faults
    assert summary["states"].get("Crashed", 0) == failing, summary
