"""Prefect's own ACI worker (prefect-azure ``AzureContainerWorker``) pointed at the ACI emulator.

A sign the emulator is faithful: the upstream worker, with an
``azure-container-instance`` pool made from its own default base job
template, creates an ARM template deployment per run, waits on its LRO, then
watches the container group with GETs until the container is Terminated and
deletes it; the emulated container really executes ``prefect flow-run
execute``, so the ``hello`` flow reaches Completed on the test Prefect server.

prefect-azure has no endpoint setting (its credentials block builds clients
for management.azure.com with an https-only bearer policy), so the one
seam used is the block's two client factories: they return the same SDK
clients pointed at the emulator with the SDK's own ARM auth policy allowed on
http. Everything else — template rendering, the deployment, polling, the exit
code, cleanup — is the worker's unchanged code.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytest.importorskip("prefect_azure", reason="prefect-azure is not installed: cannot run Prefect's own ACI worker")

from azure.mgmt.containerinstance import ContainerInstanceManagementClient  # noqa: E402
from azure.mgmt.resource import ResourceManagementClient  # noqa: E402
from prefect.client.orchestration import PrefectClient  # noqa: E402
from prefect.client.schemas.actions import WorkPoolCreate  # noqa: E402
from prefect.client.schemas.objects import FlowRun, StateType  # noqa: E402
from prefect.events.worker import EventsWorker  # noqa: E402
from prefect.logging.handlers import APILogHandler  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from prefect_azure.credentials import AzureContainerInstanceCredentials  # noqa: E402
from prefect_azure.workers.container_instance import AzureContainerWorker  # noqa: E402

from dispatcher.demo.examples.deploy import deploy_example  # noqa: E402
from tests.e2e.helpers import is_final, wait_until  # noqa: E402
from tests.emulators.aci import AciEmulator, StaticTokenCredential, Timings, client_kwargs  # noqa: E402

pytestmark = pytest.mark.e2e

# The worker's clients keep the SDK's defaults (30 s polling interval, azure-core retries): only the
# endpoint and the http-allowing auth policy differ from production.
SDK_DEFAULTS = {"polling_interval": 30, "retry_total": 10}


@pytest.fixture
def emu(tmp_path, monkeypatch: pytest.MonkeyPatch):
    # Retry-After: 1 on the deployment's LRO, so the poller does not fall back to its 30 s interval.
    with AciEmulator(execute=True, workdir=str(tmp_path), timings=Timings(lro_retry_after_s=1)) as emulator:
        credential = StaticTokenCredential()
        kwargs = client_kwargs(emulator.endpoint_url, credential, is_async=False, **SDK_DEFAULTS)
        monkeypatch.setattr(AzureContainerInstanceCredentials, "get_container_client",
                            lambda self, sub: ContainerInstanceManagementClient(credential, sub, **kwargs))
        monkeypatch.setattr(AzureContainerInstanceCredentials, "get_resource_client",
                            lambda self, sub: ResourceManagementClient(credential, sub, **kwargs))
        yield emulator
    assert emulator.errors == []


async def _aci_pool(client: PrefectClient, subscription_id: str) -> str:
    template = AzureContainerWorker.get_default_base_job_template()
    properties = template["variables"]["properties"]
    properties["resource_group_name"]["default"] = "rg"
    properties["subscription_id"]["default"] = subscription_id
    properties["task_watch_poll_interval"]["default"] = 0.5
    name = f"aci-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(name=name, type="azure-container-instance",
                                                 base_job_template=template))
    return name


async def _run_with_prefect_worker(client: PrefectClient, api_url: str, emu: AciEmulator,
                                   job_variables: dict[str, Any]) -> FlowRun:
    """Deploy ``hello`` to a fresh ACI pool and let one AzureContainerWorker poll run it to the end."""
    with temporary_settings({PREFECT_API_URL: api_url}):
        pool = await _aci_pool(client, emu.subscription_id)
        deployment_id = await deploy_example(client, "hello", pool, job_variables=job_variables)
        run = await client.create_flow_run_from_deployment(deployment_id, parameters={"name": "aci"})
        async with AzureContainerWorker(work_pool_name=pool) as worker:  # leaving waits for the run to end
            submitted = await worker.get_and_submit_flow_runs()
        await APILogHandler.aflush()
        await EventsWorker.drain_all()
        assert [r.id for r in submitted] == [run.id]
    return await client.read_flow_run(run.id)


async def test_prefect_aci_worker_runs_a_flow_on_the_emulator(prefect_api_url, prefect_client, emu):
    # The image's entrypoint script does not exist on this host: run the command as given.
    run = await _run_with_prefect_worker(prefect_client, prefect_api_url, emu, {"entrypoint": None})
    final = (await wait_until(prefect_client, [run.id], is_final, timeout_s=90))[run.id]
    (group,) = emu.deleted_groups  # the worker deleted its group after the run
    container = group.containers[0]
    output = "\n".join(line for _, line in container.output)
    assert final.state.type == StateType.COMPLETED, f"{final.state!r}\n--- container output ---\n{output}"
    assert "hello, aci" in output  # the flow ran inside the emulated container
    assert container.current.exit_code == 0 and group.puts == 1
    assert group.name.endswith(str(run.id)) and final.infrastructure_pid == f"{run.id}:{group.name}"
    # Calls per run, by operation: one deployment, its LRO, one group GET per watch poll, one delete.
    calls = dict(emu.calls)
    assert calls["Deployments_CreateOrUpdate"] == 1 and calls["Deployments_Get"] == 1
    assert calls["DeploymentOperationStatus_Get"] >= 1 and calls["ContainerGroups_Get"] >= 2
    assert calls["ContainerGroups_Delete"] == 1 and "ContainerGroups_CreateOrUpdate" not in calls
    assert emu.permissions["Microsoft.ContainerInstance/containerGroups/write"] == 1  # the deployment's PUT


async def test_prefect_aci_worker_crashes_the_run_when_the_image_cannot_be_pulled(prefect_api_url, prefect_client,
                                                                                  emu):
    emu.faults.pull_failures = 1
    run = await _run_with_prefect_worker(prefect_client, prefect_api_url, emu, {"entrypoint": None})
    final = (await wait_until(prefect_client, [run.id], is_final, timeout_s=60))[run.id]
    assert final.state.type == StateType.CRASHED
    assert emu.calls["Deployments_CreateOrUpdate"] == 1 and emu.calls["ContainerGroups_Delete"] == 1
    (group,) = emu.deleted_groups
    assert [e.name for e in group.containers[0].events][:3] == ["Pulling", "Failed", "BackOff"]
