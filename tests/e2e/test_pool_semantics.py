"""Prefect's pool semantics hold through the dispatcher: heartbeat, concurrency limits, pause;
and cloud errors while watching never leave a run stuck."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prefect.client.schemas.actions import WorkPoolUpdate

from dispatcher.config import LoopConfig
from dispatcher.demo.examples.deploy import deploy_example
from providers.errors import TransientProviderError
from providers.local import LocalProvider
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, is_running, read_runs, wait_until

pytestmark = pytest.mark.e2e


async def test_heartbeat_makes_the_pool_ready(prefect_api_url, prefect_client, local_pool, tmp_path):
    assert (await prefect_client.read_work_pool(local_pool)).status.value == "NOT_READY"
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        for _ in range(40):
            pool = await prefect_client.read_work_pool(local_pool)
            if pool.status.value == "READY":
                break
            await asyncio.sleep(0.25)
    assert pool.status.value == "READY"
    workers = await prefect_client.read_workers_for_work_pool(local_pool)
    assert [w.name for w in workers] and workers[0].name.startswith("push-dispatcher-")


async def test_pool_concurrency_limit_is_respected(prefect_api_url, prefect_client, local_pool, tmp_path):
    await prefect_client.update_work_pool(local_pool, WorkPoolUpdate(concurrency_limit=2))
    deployment_id = await deploy_example(prefect_client, "hello", local_pool,
                                         job_variables={"command": fake_engine_command(tmp_path / "starts", 1.5)})
    ids = [(await prefect_client.create_flow_run_from_deployment(deployment_id)).id for _ in range(5)]
    most_active = 0
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        for _ in range(240):
            runs = await read_runs(prefect_client, ids)
            active = sum(1 for r in runs.values() if r.state.type.value in ("PENDING", "RUNNING"))
            most_active = max(most_active, active)
            if all(is_final(r) for r in runs.values()):
                break
            await asyncio.sleep(0.1)
    assert {r.state.name for r in runs.values()} == {"Completed"}
    assert most_active == 2


async def test_paused_pool_is_not_served_until_resumed(prefect_api_url, prefect_client, local_pool, tmp_path):
    await prefect_client.update_work_pool(local_pool, WorkPoolUpdate(is_paused=True))
    deployment_id = await deploy_example(prefect_client, "hello", local_pool,
                                         job_variables={"command": fake_engine_command(tmp_path / "starts")})
    run = await prefect_client.create_flow_run_from_deployment(deployment_id)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        await asyncio.sleep(2)
        assert (await prefect_client.read_flow_run(run.id)).state.type.value == "SCHEDULED"
        await prefect_client.update_work_pool(local_pool, WorkPoolUpdate(is_paused=False))
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    assert runs[run.id].state.name == "Completed"


async def test_unobservable_infrastructure_ends_crashed_with_an_honest_message(
    prefect_api_url, prefect_client, local_pool, tmp_path, monkeypatch, caplog
):
    deployment_id = await deploy_example(prefect_client, "hello", local_pool,
                                         job_variables={"command": fake_engine_command(tmp_path / "starts", 120)})
    run = await prefect_client.create_flow_run_from_deployment(deployment_id)
    loop = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15, watch_error_deadline_s=3)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path, loop=loop)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=30)

        async def cloud_is_down(self, runs):
            raise TransientProviderError("503 Service Unavailable", code="ServiceUnavailable")

        monkeypatch.setattr(LocalProvider, "status_many", cloud_is_down)
        with caplog.at_level(logging.WARNING):
            runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    state = runs[run.id].state
    assert state.name == "Crashed"
    assert "could not be observed for" in state.message and "asked to stop" in state.message
    assert "ServiceUnavailable" in caplog.text  # retried and logged meanwhile, not silently dropped


async def test_one_dispatcher_serves_several_workspaces_and_meters_each(prefect_api_url, prefect_client, tmp_path):
    """Two workspaces (here: two names on one server, each with its own pool) in one process."""
    from dispatcher.config import PoolConfig, WorkspaceConfig
    from dispatcher.ledger import Ledger
    from dispatcher.prefect.pools import create_pool

    pools = {}
    for workspace in ("team-a", "team-b"):
        pools[workspace] = f"{workspace}-{tmp_path.name[-6:]}"
        await create_pool(prefect_api_url, pools[workspace], "local:push", overwrite=True)
    config = dispatcher_config(prefect_api_url, pools["team-a"], tmp_path, workspace="team-a")
    config.workspaces.append(WorkspaceConfig(name="team-b", api_url=prefect_api_url, pools=[PoolConfig(name=pools["team-b"])]))
    ids = {}
    for workspace, pool in pools.items():
        deployment_id = await deploy_example(prefect_client, "hello", pool, name=f"hello-{workspace}",
                                             job_variables={"command": fake_engine_command(tmp_path / "starts")})
        ids[workspace] = [(await prefect_client.create_flow_run_from_deployment(deployment_id)).id for _ in range(2 if workspace == "team-a" else 3)]
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, ids["team-a"] + ids["team-b"], is_final, timeout_s=60)
        ledger = await Ledger.open(config.ledger_dsn)
        try:
            for _ in range(40):
                if not await ledger.unmetered():
                    break
                await asyncio.sleep(0.25)
            usage = {row.workspace: row.attempts for row in await ledger.usage()}
        finally:
            await ledger.close()
    assert {r.state.name for r in runs.values()} == {"Completed"}
    assert usage == {"team-a": 2, "team-b": 3}


async def test_events_websocket_wakes_the_poller_for_ad_hoc_runs(prefect_api_url, prefect_client, local_pool, tmp_path):
    """With polling slowed to 30 s, only the websocket can get a new run claimed within seconds."""
    deployment_id = await deploy_example(prefect_client, "hello", local_pool,
                                         job_variables={"command": fake_engine_command(tmp_path / "starts")})
    loop = LoopConfig(poll_interval_s=30, watch_interval_s=0.5, pending_grace_s=15)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path, loop=loop)):
        await asyncio.sleep(2)  # the first poll has run; the next one is 28 s away
        run = await prefect_client.create_flow_run_from_deployment(deployment_id)
        claimed = await wait_until(prefect_client, [run.id], lambda r: r.state.type.value != "SCHEDULED", timeout_s=10)
    assert claimed[run.id].state.type.value in ("PENDING", "RUNNING", "COMPLETED")


async def test_runs_the_provider_cannot_start_soon_are_not_claimed(prefect_api_url, prefect_client, local_pool, tmp_path, monkeypatch):
    """A provider whose quota pacing says a submission would wait past the claim horizon: the run
    stays SCHEDULED (free for another replica) until the provider can take it."""
    from prefect.client.schemas.objects import StateType

    from tests.e2e.helpers import is_final, read_runs, wait_until

    backlog = {"s": 120.0}
    monkeypatch.setattr(LocalProvider, "submit_backlog_s", lambda self: backlog["s"])
    run = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "hello", local_pool))
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        await asyncio.sleep(2)  # ten polls
        assert (await read_runs(prefect_client, [run.id]))[run.id].state.type == StateType.SCHEDULED
        backlog["s"] = 0.0
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
    assert runs[run.id].state.name == "Completed"
