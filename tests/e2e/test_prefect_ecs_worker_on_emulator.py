"""Prefect's own ECS worker (prefect-aws ``ECSWorker``) pointed at the ECS emulator.

A sign the emulator is faithful: the upstream worker, with an ``ecs`` pool made
from its own default base job template and no network configuration, finds
the default VPC and its subnets through EC2, registers a task definition,
runs the task, and the emulated task really executes ``prefect flow-run
execute`` so the ``hello`` flow reaches Completed on the test Prefect server.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

pytest.importorskip("prefect_aws", reason="prefect-aws is not installed: cannot run Prefect's own ECS worker")

from prefect.client.orchestration import PrefectClient  # noqa: E402
from prefect.client.schemas.actions import WorkPoolCreate  # noqa: E402
from prefect.client.schemas.objects import StateType  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from prefect_aws import AwsClientParameters, AwsCredentials  # noqa: E402
from prefect_aws.workers import ecs_worker  # noqa: E402
from prefect_aws.workers.ecs_worker import ECSWorker  # noqa: E402

from dispatcher.examples.deploy import deploy_example  # noqa: E402
from tests.e2e.helpers import is_final, wait_until  # noqa: E402
from tests.emulators.ecs import EcsEmulator  # noqa: E402

pytestmark = pytest.mark.e2e

REGION = "us-east-1"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[EcsEmulator]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # The worker's observer follows ECS events through an SQS queue that
    # `prefect-aws ecs-worker deploy-events` creates; it is not part of submitting
    # a run (without the queue it only logs a warning), and the emulator does not
    # speak SQS, so keep it from calling out to the real AWS.
    async def no_observer() -> None:
        return None

    monkeypatch.setattr(ecs_worker, "start_observer", no_observer)
    monkeypatch.setattr(ecs_worker, "stop_observer", no_observer)
    with EcsEmulator(region=REGION, execute=True, workdir=str(tmp_path)) as emulator:
        yield emulator


async def _ecs_pool(client: PrefectClient, credentials_block_id: uuid.UUID) -> str:
    """An ``ecs`` pool from the worker's own template, its credentials defaulting to the block
    (as the UI stores it; the same ``$ref`` as a deployment job variable fails the server's schema check,
    which finds it valid under both branches of the variable's ``oneOf``)."""
    template = ECSWorker.get_default_base_job_template()
    template["variables"]["properties"]["aws_credentials"]["default"] = {
        "$ref": {"block_document_id": str(credentials_block_id)}}
    name = f"ecs-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(name=name, type="ecs", base_job_template=template))
    return name


async def test_prefect_ecs_worker_runs_a_flow_on_the_emulator(prefect_api_url, prefect_client, emu):
    with temporary_settings({PREFECT_API_URL: prefect_api_url}):
        credentials = AwsCredentials(
            aws_access_key_id="AKIAEMULATOR", aws_secret_access_key="emulator-secret", region_name=REGION,
            aws_client_parameters=AwsClientParameters(endpoint_url=emu.endpoint_url),
        )
        block_id = await credentials.asave(f"emulator-{uuid.uuid4().hex[:8]}")
        pool = await _ecs_pool(prefect_client, block_id)
        deployment_id = await deploy_example(prefect_client, "hello", pool)
        run = await prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"name": "ecs"})

        async with ECSWorker(work_pool_name=pool) as worker:
            await worker.sync_with_backend()
            submitted = await worker.get_and_submit_flow_runs()
        assert [r.id for r in submitted] == [run.id]

    runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
    final = runs[run.id]
    (task_arn, task), = emu.tasks.items()
    output = "\n".join(task.output)
    assert final.state.type == StateType.COMPLETED, f"{final.state!r}\n--- task output ---\n{output}"
    assert "hello, ecs" in output
    assert final.infrastructure_pid == f"{task.cluster.arn}::{task_arn}"
    assert emu.wait_for_task(task_arn).containers[0].exit_code == 0
    for op in ("DescribeVpcs", "DescribeSubnets", "RegisterTaskDefinition", "RunTask"):
        assert emu.calls[op] >= 1, dict(emu.calls)
    assert emu.errors == []
    print(dict(emu.calls))
