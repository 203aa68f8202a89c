"""Job configuration equals what Prefect's own worker builds, with the workspace's connection settings."""

from __future__ import annotations

import uuid

from prefect.blocks.system import Secret
from prefect.client.schemas.actions import VariableCreate
from prefect.settings import PREFECT_API_URL, temporary_settings

from dispatcher.config import PoolConfig, WorkspaceConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.prefect.jobconfig import build_configuration, build_from_pool_template
from dispatcher.prefect.templating import applied_template
from dispatcher.prefect.api import PrefectApi
from providers.local import LocalJobConfiguration


async def _run_with_references(client, pool: str):
    """A run whose job variables use a Secret block placeholder and a Prefect variable."""
    suffix = uuid.uuid4().hex[:8]
    await Secret(value="s3cr3t-token").save(f"token-{suffix}", client=client)
    await client.create_variable(VariableCreate(name=f"workdir_{suffix}", value="/tmp"))
    deployment_id = await deploy_example(
        client, "hello", pool,
        job_variables={
            "env": {"FROM_DEPLOYMENT": "1", "TOKEN": "{{ prefect.blocks.secret.token-%s }}" % suffix},
            "working_dir": "{{ prefect.variables.workdir_%s }}" % suffix,
            "memory": 1024,
        },
    )
    return await client.create_flow_run_from_deployment(deployment_id, job_variables={"env": {"FROM_RUN": "2"}, "cpu": 2})


async def test_configuration_equals_prefect_workers(prefect_api_url, prefect_client, local_pool):
    flow_run = await _run_with_references(prefect_client, local_pool)
    work_pool = await prefect_client.read_work_pool(local_pool)

    # What a Prefect worker process configured for this server builds (BaseWorker._submit_run_and_capture_errors).
    with temporary_settings(updates={PREFECT_API_URL: prefect_api_url}):
        expected = await LocalJobConfiguration.resolve_for_flow_run(
            flow_run.model_copy(deep=True), client=prefect_client, work_pool=work_pool, worker_name="worker-x"
        )
    workspace = PrefectApi(WorkspaceConfig(name="w", api_url=prefect_api_url, pools=[PoolConfig(name=local_pool)]), "worker-x")
    async with workspace:
        ours = (await build_configuration(workspace, LocalJobConfiguration, flow_run, work_pool)).configuration
        again = (await build_configuration(workspace, LocalJobConfiguration, flow_run, work_pool)).configuration
    assert again.model_dump() == ours.model_dump()  # building twice from one FlowRun object is stable

    assert ours.model_dump() == expected.model_dump()
    assert ours.env["TOKEN"] == "s3cr3t-token"  # block reference resolved with its secret
    assert ours.env["FROM_DEPLOYMENT"] == "1" and ours.env["FROM_RUN"] == "2"  # env merged, run wins
    assert ours.env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id)
    assert ours.env["PREFECT_API_URL"] == prefect_api_url
    assert str(ours.working_dir) == "/tmp" and ours.memory == 1024 and ours.cpu == 2
    assert ours.command == "prefect flow-run execute"
    assert ours.labels["prefect.io/flow-run-id"] == str(flow_run.id)


async def test_flow_run_env_carries_the_workspaces_own_connection(prefect_api_url, prefect_client, local_pool):
    """Each workspace's runs talk to their own API with their own credentials, not the dispatcher's."""
    flow_run = await _run_with_references(prefect_client, local_pool)
    work_pool = await prefect_client.read_work_pool(local_pool)
    other_url = prefect_api_url.replace("127.0.0.1", "localhost")
    config = WorkspaceConfig(name="cloud", api_url=other_url, api_key="pnu_" + "k" * 36, pools=[PoolConfig(name=local_pool)])
    workspace = PrefectApi(config, "worker-y")
    async with workspace:
        configuration = (await build_configuration(workspace, LocalJobConfiguration, flow_run, work_pool)).configuration
    assert configuration.env["PREFECT_API_URL"] == other_url
    assert configuration.env["PREFECT_API_KEY"] == "pnu_" + "k" * 36
    assert "PREFECT_API_AUTH_STRING" not in configuration.env


async def test_run_secrets_name_every_referenced_value(prefect_api_url, prefect_client, local_pool):
    """Block and variable references, secret-looking env names and the workspace's own key; nothing else."""
    flow_run = await _run_with_references(prefect_client, local_pool)
    work_pool = await prefect_client.read_work_pool(local_pool)
    config = WorkspaceConfig(name="w", api_url=prefect_api_url, api_key="pnu_" + "q" * 36, pools=[PoolConfig(name=local_pool)])
    async with PrefectApi(config, "worker-z") as workspace:
        resolved = await build_configuration(workspace, LocalJobConfiguration, flow_run, work_pool)
        deployment_gone = await build_from_pool_template(workspace, LocalJobConfiguration, flow_run, work_pool)
    secrets = set(resolved.secrets.revealed())
    # The Secret block, the variable behind working_dir ("/tmp"), the API key.
    assert secrets == {"s3cr3t-token", "/tmp", "pnu_" + "q" * 36}
    assert "pnu_" + "q" * 36 in deployment_gone.secrets.revealed()  # rebuilt after the deployment was deleted


async def test_applied_template_follows_prefects_merge(prefect_client, local_pool):
    """applied_template repeats from_template_and_values' steps; without references both give the same configuration."""
    template = (await prefect_client.read_work_pool(local_pool)).base_job_template
    template["variables"]["properties"]["env"]["default"] = {"FROM_POOL": "p", "OVERRIDDEN": "pool"}
    values = {"env": {"OVERRIDDEN": "deployment", "NEW": "n"}, "env.DOTTED": "d", "memory": 512, "cpu": 1.5}
    expected = await LocalJobConfiguration.from_template_and_values(template, values, client=prefect_client)
    assert LocalJobConfiguration(**applied_template(template, values)).model_dump() == expected.model_dump()
    assert expected.env == {"FROM_POOL": "p", "OVERRIDDEN": "deployment", "NEW": "n", "DOTTED": "d"}
