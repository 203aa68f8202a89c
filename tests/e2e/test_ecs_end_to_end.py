"""Real flows through a real Prefect server, the dispatcher and the ECS provider, on the ECS emulator.

The emulator runs each task's container command on this machine (execute mode), so
``prefect flow-run execute`` really runs the flow against the test server.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.states import Cancelling

from dispatcher.config import DispatcherConfig, Limits, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from dispatcher.prefect.pools import create_pool
from tests.conftest import running_dispatcher
from tests.e2e.helpers import is_final, is_running, wait_until
from tests.emulators.ecs import EcsEmulator, Faults

pytestmark = pytest.mark.e2e
SUBNETS = {"subnets": ["subnet-0e2e"], "assignPublicIp": "ENABLED"}


@pytest.fixture
def emulator(tmp_path):
    with EcsEmulator(execute=True, workdir=str(tmp_path), stop_timeout_s=2.0) as emu:
        yield emu
        assert emu.errors == []  # no handler crash, no response outside its shape


def credentials(emu: EcsEmulator) -> dict:
    return {"aws_access_key_id": "AKIAE2E", "aws_secret_access_key": "e2e-secret", "region_name": emu.region,
            "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}


async def _pool(api_url: str, pool_type: str = "ecs:push") -> str:
    name = f"ecs-{uuid.uuid4().hex[:8]}"
    await create_pool(api_url, name, pool_type, managed_provider="ecs")
    return name


def _config(api_url: str, pool: str, emu: EcsEmulator, tmp_path, limits: Limits | None = None, **ecs) -> DispatcherConfig:
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="e2e", api_url=api_url, pools=[PoolConfig(name=pool, limits=limits)])],
        ledger_dsn=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        managed_provider="ecs",
        # Operator credentials: what prefect:managed pools and pools without aws_credentials use.
        providers={"ecs": {"credentials": credentials(emu), "retry_mode": "standard", "max_attempts": 3, **ecs}},
        loop=LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15),
        service=ServiceConfig(port=0),
    )


async def _run(client, pool, function, job_variables=None, **params):
    variables = {"network_configuration": SUBNETS, "env": {"PYTHONUNBUFFERED": "1"}, **(job_variables or {})}
    deployment_id = await deploy_example(client, function, pool, name=f"{function}-{uuid.uuid4().hex[:6]}", job_variables=variables)
    return await client.create_flow_run_from_deployment(deployment_id, parameters=params)


async def test_flow_completes_on_fargate_and_is_metered_from_ecs_timestamps(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    deployment_id = await deploy_example(prefect_client, "hello", pool, name="hello-fargate",
                                         job_variables={"network_configuration": SUBNETS, "env": {"PYTHONUNBUFFERED": "1"}})
    runs = [await prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"name": f"ecs-{i}"}) for i in range(3)]
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [r.id for r in runs], is_final, timeout_s=120)
        for _ in range(40):
            ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
            rows = [await ledger.last_attempt(str(r.id)) for r in runs]
            await ledger.close()
            if all(row and row.metered_at for row in rows):
                break
            import asyncio
            await asyncio.sleep(0.25)
    assert {r.state.name for r in final.values()} == {"Completed"}
    for run in final.values():
        cluster, _, task_arn = run.infrastructure_pid.partition("::")
        assert cluster and task_arn.startswith("arn:aws:ecs:")  # Prefect's own ECS format
        task = emulator.tasks[task_arn]
        assert task.environment["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert emulator.calls["RegisterTaskDefinition"] == 1  # one revision for all runs of one configuration
    assert emulator.calls["RunTask"] == 3
    for row in rows:
        assert row.billed_minutes == 1 and row.exit_code == 0


async def test_failing_flow_ends_failed(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "fails")
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
    assert final[run.id].state.name == "Failed"


async def test_task_that_fails_to_start_ends_crashed_not_stuck_pending(prefect_api_url, prefect_client, emulator, tmp_path):
    """Prefect's ECS worker leaves these runs PENDING (PrefectHQ/prefect#22410)."""
    emulator.faults = Faults(start_failures=1)
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "hello")
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    state = final[run.id].state
    assert state.name == "Crashed"
    assert "failed to start" in state.message and "CannotPullContainerError" in state.message


async def test_task_that_does_not_start_within_its_start_timeout_is_crashed_and_stopped(prefect_api_url, prefect_client, tmp_path):
    """task_start_timeout_seconds, as in Prefect's ECS worker: a task stuck provisioning ends the run."""
    with EcsEmulator(provisioning_s=600, stop_timeout_s=1.0) as slow:
        pool = await _pool(prefect_api_url)
        run = await _run(prefect_client, pool, "hello", job_variables={"task_start_timeout_seconds": 3})
        async with running_dispatcher(_config(prefect_api_url, pool, slow, tmp_path)):
            final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
            state = final[run.id].state
            task_arn = final[run.id].infrastructure_pid.partition("::")[2]
            for _ in range(120):  # stopped by the next watch ticks
                if slow.calls["StopTask"]:
                    break
                await asyncio.sleep(0.25)
    assert state.name == "Crashed"
    assert state.message.startswith("Flow run infrastructure did not start within 3s (PROVISIONING"), state.message
    assert slow.calls["StopTask"] >= 1 and slow.tasks[task_arn].desired_status == "STOPPED"


async def test_cancel_stops_the_task(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "sleeps", seconds=120)
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=120)
        await prefect_client.set_flow_run_state(run.id, Cancelling(message="test cancels"))
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    assert final[run.id].state.name == "Cancelled"
    task_arn = final[run.id].infrastructure_pid.partition("::")[2]
    assert emulator.tasks[task_arn].last_status == "STOPPED" and emulator.calls["StopTask"] >= 1


async def test_throttling_slows_submission_but_fails_no_run(prefect_api_url, prefect_client, emulator, tmp_path):
    emulator.faults = Faults(throttle_rate=0.3, ops={"RunTask", "DescribeTasks"}, seed=7)
    pool = await _pool(prefect_api_url)
    deployment_id = await deploy_example(prefect_client, "hello", pool, job_variables={
        "network_configuration": SUBNETS, "env": {"EMULATOR_RUN_SECONDS": "0.3"}, "command": "true"})
    ids = [(await prefect_client.create_flow_run_from_deployment(deployment_id)).id for _ in range(8)]
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        # `true` exits 0 without reporting a final state: the watcher must see every task end.
        final = await wait_until(prefect_client, ids, is_final, timeout_s=120)
    assert {r.state.name for r in final.values()} == {"Crashed"}
    assert all("exit code 0" in r.state.message and "never reported a final state" in r.state.message for r in final.values())
    assert emulator.calls["RunTask"] > 8  # throttled calls were retried, none was fatal


async def test_managed_pool_runs_the_prefect_cloud_example_on_fargate_with_the_managed_allocation(
    prefect_api_url, prefect_client, emulator, tmp_path
):
    """A deployment written for Prefect Cloud's managed pool (only ``pip_packages``) runs unchanged: 4 vCPU,
    16 GiB, 128 GiB on Fargate, the packages in EXTRA_PIP_PACKAGES for the image's entrypoint (the task
    definition keeps it); asking for more is not possible, an image off the allow-list never starts."""
    pool = await _pool(prefect_api_url, "prefect:managed")
    seed = await _run(prefect_client, pool, "hello", job_variables={"pip_packages": ["pandas", "prefect-aws"]})
    greedy = await _run(prefect_client, pool, "hello", job_variables={"cpu": 16384, "memory": 122880})
    foreign = await _run(prefect_client, pool, "hello", job_variables={"image": "python:3.12"})
    # Managed variables name no network: the operator's subnets are used.
    config = _config(prefect_api_url, pool, emulator, tmp_path, subnets=["subnet-0e2e"])
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [seed.id, greedy.id, foreign.id], is_final, timeout_s=120)
    for run in (seed, greedy):
        assert final[run.id].state.name == "Completed", final[run.id].state.message
        task = emulator.tasks[final[run.id].infrastructure_pid.partition("::")[2]]
        assert (task.cpu, task.memory) == ("4096", "16384")
        assert task.task_definition.body["ephemeralStorage"] == {"sizeInGiB": 128}
        [container] = task.task_definition.containers
        assert "entryPoint" not in container and container["image"].startswith("prefecthq/prefect:")
    seed_task = emulator.tasks[final[seed.id].infrastructure_pid.partition("::")[2]]
    assert seed_task.environment["EXTRA_PIP_PACKAGES"] == "pandas prefect-aws"
    refused = final[foreign.id].state
    assert refused.name == "InvalidJobConfiguration" and "image='python:3.12'" in refused.message
    assert "prefecthq/prefect:*" in refused.message
    assert emulator.calls["RunTask"] == 2


async def test_pool_credentials_from_an_aws_credentials_block(prefect_api_url, prefect_client, emulator, tmp_path):
    """Deployments written for Prefect Cloud's ECS push pool reference an aws-credentials block."""
    prefect_aws = pytest.importorskip("prefect_aws", reason="prefect-aws provides the aws-credentials block type")
    block = prefect_aws.AwsCredentials(
        aws_access_key_id="AKIABLOCK", aws_secret_access_key="block-secret", region_name=emulator.region,
        aws_client_parameters={"endpoint_url": emulator.endpoint_url},
    )
    block_id = await block.save(f"e2e-{uuid.uuid4().hex[:8]}", client=prefect_client)
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "hello", job_variables={"aws_credentials": {"$ref": {"block_document_id": str(block_id)}}})
    # No operator credentials at all: only the block can reach the emulator.
    config = _config(prefect_api_url, pool, emulator, tmp_path)
    config.providers["ecs"].pop("credentials")
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
    assert final[run.id].state.name == "Completed", final[run.id].state.message


async def test_crash_message_carries_the_container_log_tail(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    command = "python -u -c \"print('loading data'); print('disk full: /data'); raise SystemExit(3)\""
    run = await _run(prefect_client, pool, "hello", job_variables={
        "command": command, "configure_cloudwatch_logs": True,
        "execution_role_arn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    })
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    state = final[run.id].state
    assert state.name == "Crashed"
    assert "exit code 3" in state.message and "Essential container in task exited" in state.message
    assert "disk full: /data" in state.message  # the last lines of the CloudWatch log stream
