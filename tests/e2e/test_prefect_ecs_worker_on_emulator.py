"""Prefect's own ECS worker (prefect-aws ``ECSWorker``) pointed at the ECS emulator.

A sign the emulator is faithful: the upstream worker, with an ``ecs`` pool made
from its own default base job template and no network configuration, finds
the default VPC and its subnets through EC2, registers a task definition,
runs the task, and the emulated task really executes ``prefect flow-run
execute`` so the ``hello`` flow reaches Completed on the test Prefect server.
The worker's custom ``vpc_id`` + ``network_configuration`` path is checked
against a VPC added to the emulator, without executing the flow.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytest.importorskip("prefect_aws", reason="prefect-aws is not installed: cannot run Prefect's own ECS worker")

from prefect.client.orchestration import PrefectClient  # noqa: E402
from prefect.client.schemas.actions import WorkPoolCreate  # noqa: E402
from prefect.client.schemas.objects import FlowRun, StateType  # noqa: E402
from prefect.events.worker import EventsWorker  # noqa: E402
from prefect.logging.handlers import APILogHandler  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from prefect_aws import AwsClientParameters, AwsCredentials  # noqa: E402
from prefect_aws.workers import ecs_worker  # noqa: E402
from prefect_aws.workers.ecs_worker import ECSWorker  # noqa: E402

from dispatcher.demo.examples.deploy import deploy_example  # noqa: E402
from tests.e2e.helpers import is_final, wait_until  # noqa: E402
from tests.emulators.ecs import EcsEmulator  # noqa: E402

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _worker_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)

    # The worker's observer follows ECS events through an SQS queue made by
    # `prefect-aws ecs-worker deploy-events`. Submitting a run does not need it
    # (without the queue it only logs a warning), and the emulator does not speak
    # SQS, so keep it from calling out to the real AWS.
    async def no_observer() -> None:
        return None

    monkeypatch.setattr(ecs_worker, "start_observer", no_observer)
    monkeypatch.setattr(ecs_worker, "stop_observer", no_observer)


async def _ecs_pool(client: PrefectClient, credentials_block_id: uuid.UUID) -> str:
    """An ``ecs`` pool from the worker's own template, its credentials defaulting to the block.

    The block goes in the pool's template (as the UI stores it): the same ``$ref``
    as a deployment job variable fails the server's check, which finds it valid
    under both branches of the variable's ``oneOf``.
    """
    template = ECSWorker.get_default_base_job_template()
    template["variables"]["properties"]["aws_credentials"]["default"] = {
        "$ref": {"block_document_id": str(credentials_block_id)}}
    name = f"ecs-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(name=name, type="ecs", base_job_template=template))
    return name


async def _submit_with_prefect_worker(client: PrefectClient, api_url: str, emu: EcsEmulator,
                                      job_variables: dict[str, Any] | None = None) -> FlowRun:
    """Deploy ``hello`` to a fresh ``ecs`` pool and let one ECSWorker poll submit its run."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        credentials = AwsCredentials(
            aws_access_key_id="AKIAEMULATOR", aws_secret_access_key="emulator-secret", region_name=REGION,
            aws_client_parameters=AwsClientParameters(endpoint_url=emu.endpoint_url),
        )
        block_id = await credentials.asave(f"emulator-{uuid.uuid4().hex[:8]}")
        pool = await _ecs_pool(client, block_id)
        deployment_id = await deploy_example(client, "hello", pool, job_variables=job_variables)
        run = await client.create_flow_run_from_deployment(deployment_id, parameters={"name": "ecs"})
        async with ECSWorker(work_pool_name=pool) as worker:  # entering syncs it with the server
            submitted = await worker.get_and_submit_flow_runs()
        # Send the worker's flow-run logs and events while this server is up; left
        # queued they are retried against the stopped server at interpreter exit.
        await APILogHandler.aflush()
        await EventsWorker.drain_all()
        assert [r.id for r in submitted] == [run.id]
    return await client.read_flow_run(run.id)


async def test_prefect_ecs_worker_runs_a_flow_on_the_emulator(prefect_api_url, prefect_client, tmp_path):
    with EcsEmulator(region=REGION, execute=True, workdir=str(tmp_path)) as emu:
        run = await _submit_with_prefect_worker(prefect_client, prefect_api_url, emu)
        final = (await wait_until(prefect_client, [run.id], is_final, timeout_s=90))[run.id]
        (task_arn, task), = emu.tasks.items()
        stopped = emu.wait_for_task(task_arn)
        output = "\n".join(task.output)
        assert final.state.type == StateType.COMPLETED, f"{final.state!r}\n--- task output ---\n{output}"
        assert "hello, ecs" in output  # the flow ran inside the emulated task
        assert stopped.containers[0].exit_code == 0
        assert final.infrastructure_pid == f"{task.cluster.arn}::{task_arn}"
        # no network configuration in the pool: the default VPC's subnets, found through EC2
        assert task.eni is not None and task.eni.subnet in emu.ec2.subnets
        assert emu.ec2.subnets[task.eni.subnet].vpc_id == "vpc-0default"
        assert {op: emu.calls[op] for op in ("DescribeVpcs", "DescribeSubnets", "RegisterTaskDefinition", "RunTask")
                } == {"DescribeVpcs": 1, "DescribeSubnets": 1, "RegisterTaskDefinition": 1, "RunTask": 1}
        assert emu.errors == []


async def test_prefect_ecs_worker_uses_a_custom_vpc_network_configuration(prefect_api_url, prefect_client):
    with EcsEmulator(region=REGION, execute=False) as emu:
        vpc = emu.ec2.add_vpc("10.20.0.0/16", tags={"Name": "flows"})
        subnet = emu.ec2.add_subnet(vpc.id, "10.20.1.0/24", az=f"{REGION}b")
        group = emu.ec2.add_security_group(vpc.id, "flows", "flow runs")
        network = {"subnets": [subnet.id], "securityGroups": [group.id], "assignPublicIp": "DISABLED"}
        run = await _submit_with_prefect_worker(prefect_client, prefect_api_url, emu, {
            "vpc_id": vpc.id, "network_configuration": network})
        (task,) = emu.tasks.values()
        assert run.infrastructure_pid and run.infrastructure_pid.endswith(f"::{task.arn}")
        assert task.eni is not None and task.eni.subnet == subnet.id
        assert emu.calls["DescribeVpcs"] == emu.calls["DescribeSubnets"] == emu.calls["RunTask"] == 1
        assert emu.errors == []


async def test_prefect_ecs_worker_rejects_subnets_of_another_vpc(prefect_api_url, prefect_client):
    """The worker checks the pool's subnets against DescribeSubnets' ``vpc-id`` filter."""
    with EcsEmulator(region=REGION, execute=False) as emu:
        vpc = emu.ec2.add_vpc("10.30.0.0/16")
        emu.ec2.add_subnet(vpc.id, "10.30.0.0/24")
        run = await _submit_with_prefect_worker(prefect_client, prefect_api_url, emu, {
            "vpc_id": vpc.id, "network_configuration": {"subnets": ["subnet-0defaulta"]}})
        assert run.state.type == StateType.CRASHED
        assert "not found within VPC" in run.state.message
        assert emu.calls["RunTask"] == 0 and emu.tasks == {}
        assert emu.errors == []
