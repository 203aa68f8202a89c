"""Each retry from Prefect is its own attempt; a flow's own ``retries=`` are not.

The UI's Retry and ``prefect flow-run retry`` set a finished run back to SCHEDULED; the
dispatcher claims it again, and that claim is a new attempt: new infrastructure, its own
watching and metering, its own ledger row. The engine's in-process retries (AwaitingRetry,
``empirical_policy.retry_type == "in_process"``) stay on the attempt that is running.
"""

from __future__ import annotations

import uuid

import pytest
from prefect.states import Scheduled

from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, run_dirs, wait_until

pytestmark = pytest.mark.e2e


async def _metered_attempts(dsn: str, flow_run_id, count: int, timeout_s: float = 60) -> list:
    import asyncio

    ledger = await Ledger.open(dsn)
    try:
        for _ in range(int(timeout_s / 0.25)):
            attempts = await ledger.attempts(str(flow_run_id))
            if len(attempts) == count and all(a.metered_at for a in attempts):
                return attempts
            await asyncio.sleep(0.25)
        return await ledger.attempts(str(flow_run_id))
    finally:
        await ledger.close()


async def test_a_run_retried_twice_has_three_attempts_each_started_and_metered_once(
    prefect_api_url, prefect_client, local_pool, tmp_path
):
    starts = tmp_path / "starts.txt"
    deployment_id = await deploy_example(prefect_client, "hello", local_pool, name=f"retried-{uuid.uuid4().hex[:6]}",
                                         job_variables={"command": fake_engine_command(starts, 0.5, "FAILED")})
    run = await prefect_client.create_flow_run_from_deployment(deployment_id)
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    async with running_dispatcher(config):
        for attempt in (1, 2, 3):
            await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
            await _metered_attempts(config.ledger_dsn, run.id, attempt)
            if attempt < 3:  # what `prefect flow-run retry` and the UI's Retry do
                await prefect_client.set_flow_run_state(run.id, Scheduled(message="Retried via CLI"), force=True)
        attempts = await _metered_attempts(config.ledger_dsn, run.id, 3)
        final = (await prefect_client.read_flow_run(run.id)).state
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert len({a.attempt_id for a in attempts}) == 3 and str(run.id) not in {a.attempt_id for a in attempts}
    assert len({a.infrastructure_id for a in attempts}) == 3
    assert all(a.metered_at and a.billed_minutes == 1 and a.final_state == "Failed" for a in attempts)
    assert starts.read_text().split() == [str(run.id)] * 3  # three processes, each started once
    assert len(run_dirs(tmp_path / "local-runs", run.id)) == 3
    assert final.name == "Failed"  # one final state: the last attempt's
    ledger = await Ledger.open(config.ledger_dsn)
    try:
        [usage] = await ledger.usage(workspace="test")
    finally:
        await ledger.close()
    assert (usage.flow_runs, usage.attempts, usage.billed_minutes) == (1, 3, 3)


async def test_a_flows_own_retries_stay_on_one_attempt(prefect_api_url, prefect_client, local_pool, tmp_path):
    """``@flow(retries=1)``: the engine's AwaitingRetry is never claimed as a new attempt."""
    run = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "flaky", local_pool))
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
        attempts = await _metered_attempts(config.ledger_dsn, run.id, 1)
    assert runs[run.id].state.name == "Completed", runs[run.id].state.message
    assert runs[run.id].run_count == 2  # the engine did retry
    assert len(attempts) == 1 and attempts[0].metered_at is not None
    assert len(run_dirs(tmp_path / "local-runs", run.id)) == 1
