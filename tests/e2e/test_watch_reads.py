"""Watching many runs costs Prefect reads only for runs that may need an action.

A run that Prefect and its infrastructure both show running is not read again until the next
sweep; a cancellation still reaches it within a tick (one filtered query for CANCELLING runs),
and a run whose infrastructure ends is read at once.
"""

from __future__ import annotations

import asyncio

import pytest
from prefect.states import Cancelling

from dispatcher.config import LoopConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.loops.watcher import Watcher
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import is_final, is_running, wait_until

pytestmark = pytest.mark.e2e


async def test_steady_runs_are_not_read_between_sweeps_and_cancellation_still_acts(
        prefect_api_url, prefect_client, local_pool, tmp_path, monkeypatch):
    read: list[set] = []  # the flow run ids each watch tick reads from Prefect (and acts on)
    original = Watcher._needing_prefect

    async def counting(self, watched, statuses):
        looked_at = await original(self, watched, statuses)
        read.append({run.flow_run_id for run in looked_at})
        return looked_at

    monkeypatch.setattr(Watcher, "_needing_prefect", counting)
    deployment_id = await deploy_example(prefect_client, "sleeps", local_pool)
    sleeper = await prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"seconds": 120})
    short = await prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"seconds": 1})
    loop = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.3, pending_grace_s=15, prefect_sweep_every_ticks=100_000)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path, loop=loop)):
        await wait_until(prefect_client, [sleeper.id], is_running, timeout_s=90)
        done = await wait_until(prefect_client, [short.id], is_final, timeout_s=90)
        assert done[short.id].state.name == "Completed"  # its exit was read and acted on without a sweep
        seen_running_at = len(read)
        while len(read) < seen_running_at + 8:  # a few more ticks with the sleeper steady
            await asyncio.sleep(0.1)
        steady_ticks = read[seen_running_at + 3:]  # after the sleeper was seen running by the watcher
        assert all(sleeper.id not in ids for ids in steady_ticks), steady_ticks
        await prefect_client.set_flow_run_state(sleeper.id, Cancelling(message="test cancels"))
        runs = await wait_until(prefect_client, [sleeper.id], is_final, timeout_s=30)
    assert runs[sleeper.id].state.name == "Cancelled"
