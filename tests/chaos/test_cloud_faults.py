"""The cloud misbehaving: throttling, 5xx, lost responses, accept-then-fail, tasks that never start.

The faults come from ``tests/chaos/cloud.py`` (one place for the cloud's setup). A RunTask
carried out but answered 5xx is retried with the same clientToken, so it must not start a
second task; a task that fails to start ends its run Crashed, once.
"""

from __future__ import annotations

import pytest

from tests.chaos import cloud
from tests.chaos.rig import settle

pytestmark = [pytest.mark.chaos, pytest.mark.e2e]


async def test_cloud_api_faults_during_a_burst(rig, chaos_round):
    faults = cloud.api_faults(rig.rng)
    faults.start_failures = failing = cloud.start_failures(rig.rng)
    print(f"cloud faults: {faults}")
    rig.emu.faults = faults
    ids = await rig.burst()
    summary = await settle(rig, ids)
    # The countdowns count down on the object itself: every one was spent on this burst.
    assert (faults.start_failures, faults.lost_responses, faults.accept_then_fail) == (0, 0, 0), faults
    assert summary["states"].get("Crashed", 0) == failing, summary
