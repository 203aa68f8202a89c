"""`dispatcher pool from-terraform` against a real Prefect server, with recorded outputs of each module.

The command runs in a thread (it calls asyncio.run itself) with stdout, stderr and
logs captured, so every test can also check that no secret value was shown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from pathlib import Path

import pytest
from prefect.exceptions import ObjectNotFound

from dispatcher.cli import main
from dispatcher.config import PoolConfig, WorkspaceConfig
from dispatcher.demo.embedded import free_port
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.prefect.api import PrefectApi
from dispatcher.prefect.jobconfig import build_configuration
from dispatcher.prefect.pools import create_pool
from providers import registry

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "terraform_outputs"


#: Every secret value in the fixtures (checked below to sit in their sensitive outputs), and ACI's
#: subscription id, a write-only variable of our template.
SECRETS = (
    "AKIAFAKEFIXTURE7EXAMPLE", "fIxTuReSeCrEt/K7MDENG/bPxRfiCYzzAWSSECRET",
    "0f1e2d3c4b5a69788796a5b4c3d2e1f0fixture", "MIIEvQIBADANFIXTUREgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7fakefake",
    "ZmFrZWtleWZpeHR1cmVub3RhcmVhbGtleWF0YWxsZmFrZWZha2VmYWtlZmFrZQ==", "Xq8Q~fIxTuRe.ClientSecret-Value_0123456789ab",
    "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
)


def test_the_secrets_are_those_of_the_fixtures_sensitive_outputs():
    sensitive = "".join(json.dumps(entry["value"]) for path in FIXTURES.glob("*.json")
                        for entry in json.loads(path.read_text()).values() if entry["sensitive"])
    assert all(secret in sensitive for secret in SECRETS[:-1])


class Run:
    """One invocation of the command: exit code and what it printed."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def command(capsys, caplog, prefect_api_url):
    """Runs the command; after the test, no secret of any fixture is in anything it printed or logged."""
    caplog.set_level(logging.DEBUG)
    printed: list[str] = []

    async def run(pool: str, source: Path | str, *extra: str, api_url: str | None = None) -> Run:
        where = ["--api-url", api_url or prefect_api_url] if api_url != "" else []
        argv = ["pool", "from-terraform", pool, str(source), *where, *extra]
        code = await asyncio.to_thread(main, argv)
        captured = capsys.readouterr()
        printed.extend([captured.out, captured.err])
        return Run(code, captured.out, captured.err)

    yield run
    shown = "\n".join([*printed, caplog.text])
    for secret in SECRETS:
        assert secret not in shown, f"secret {secret[:4]}... was shown"


def fresh_pool() -> str:
    return f"tf-{uuid.uuid4().hex[:8]}"


def pool_defaults(pool) -> dict:
    return {name: p.get("default") for name, p in pool.base_job_template["variables"]["properties"].items()}


async def resolved_configuration(prefect_api_url, client, pool_name: str):
    """The job configuration the dispatcher's provider builds for a run of the pool."""
    deployment_id = await deploy_example(client, "hello", pool_name)
    flow_run = await client.create_flow_run_from_deployment(deployment_id)
    work_pool = await client.read_work_pool(pool_name)
    kind = registry.kind_for_pool_type(work_pool.type, managed_provider="local")
    config = WorkspaceConfig(name="w", api_url=prefect_api_url, pools=[PoolConfig(name=pool_name)])
    async with PrefectApi(config, "worker-tf") as workspace:
        resolved = await build_configuration(workspace, registry.provider_class(kind).job_configuration,
                                             flow_run, work_pool)
    return resolved.configuration


@pytest.mark.parametrize("fixture", ["aws-ecs.iam-user", "gcp-cloud-run.key", "azure-aci.service-principal"])
async def test_creates_block_and_pool_then_changes_nothing(fixture, command, prefect_client, prefect_api_url):
    path = FIXTURES / f"{fixture}.json"
    module = fixture.split(".")[0]
    name = fresh_pool()
    first = await command(name, path)
    assert first.code == 0, first.err
    assert "created    work pool" in first.out and "created    block " in first.out
    assert "(values not shown)" in first.out

    pool = await prefect_client.read_work_pool(name)
    defaults = pool_defaults(pool)
    credentials_variable = {"aws-ecs": "aws_credentials", "gcp-cloud-run": "credentials",
                            "azure-aci": "aci_credentials"}[module]
    block_id = defaults[credentials_variable]["$ref"]["block_document_id"]
    block = await prefect_client.read_block_document(uuid.UUID(block_id), include_secrets=True)
    assert block.name == name

    second = await command(name, path)
    assert second.code == 0, second.err
    assert second.out.strip().endswith("no changes")
    assert "created" not in second.out and "updated" not in second.out
    assert pool_defaults(await prefect_client.read_work_pool(name)) == defaults

    configuration = await resolved_configuration(prefect_api_url, prefect_client, name)
    if module == "aws-ecs":
        assert configuration.aws_credentials.aws_access_key_id == "AKIAFAKEFIXTURE7EXAMPLE"
        assert configuration.aws_credentials.aws_secret_access_key.get_secret_value().startswith("fIxTuReSeCrEt")
        assert configuration.aws_credentials.region_name == "eu-west-1"
        assert configuration.cluster == "arn:aws:ecs:eu-west-1:123456789012:cluster/prefect-dispatcher"
        assert configuration.task_role_arn.endswith(":role/prefect-dispatcher-task")
        assert configuration.execution_role_arn.endswith(":role/prefect-dispatcher-execution")
        assert configuration.configure_cloudwatch_logs is True
        assert configuration.cloudwatch_logs_options["awslogs-group"] == "/ecs/prefect-dispatcher"
    elif module == "gcp-cloud-run":
        assert configuration.credentials.project_id() == "acme-flows"
        assert configuration.credentials.service_account_info["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
        assert configuration.region == "europe-west1"
        assert "prefect-flow-runs@acme-flows.iam.gserviceaccount.com" in json.dumps(configuration.job_body)
    else:
        assert configuration.aci_credentials.client_id == "6731de76-14a6-49ae-97bc-6eba6914391e"
        assert configuration.aci_credentials.client_secret.get_secret_value().startswith("Xq8Q~fIxTuRe")
        assert configuration.subscription_id.get_secret_value() == "0b1f6471-1bf0-4dda-aec3-cb9272f09590"
        assert configuration.resource_group_name == "prefect-flows"
        assert "(secret, not shown)" in first.out  # subscription_id is a write-only variable of the template


async def test_changed_outputs_update_in_place_and_keep_the_users_settings(command, prefect_client, tmp_path):
    name = fresh_pool()
    await create_pool(prefect_client.api_url.__str__().rstrip("/"), name, "ecs:push")
    pool = await prefect_client.read_work_pool(name)
    template = pool.base_job_template
    template["variables"]["properties"]["cpu"]["default"] = 2048  # set by the user, not by the module
    template["variables"]["properties"]["cloudwatch_logs_options"]["default"] = {"mode": "non-blocking"}
    await prefect_client.request("PATCH", "/work_pools/{name}", path_params={"name": name},
                                 json={"base_job_template": template})
    assert (await command(name, FIXTURES / "aws-ecs.iam-user.json")).code == 0
    block_id = pool_defaults(await prefect_client.read_work_pool(name))["aws_credentials"]["$ref"]["block_document_id"]

    # Keys replaced by a role, and the cluster moved.
    changed = json.loads((FIXTURES / "aws-ecs.keyless.json").read_text())
    changed["ecs_job_variables"]["value"]["cluster"] = "arn:aws:ecs:eu-west-1:123456789012:cluster/other"
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(changed))
    result = await command(name, path)
    assert result.code == 0, result.err
    assert "updated    block aws-credentials/" in result.out
    assert "updated      default cluster: arn:aws:ecs:eu-west-1:123456789012:cluster/other" in result.out
    assert "unchanged    default task_role_arn" in result.out

    defaults = pool_defaults(await prefect_client.read_work_pool(name))
    assert defaults["aws_credentials"]["$ref"]["block_document_id"] == block_id  # same document, updated in place
    assert defaults["cpu"] == 2048
    assert defaults["cloudwatch_logs_options"]["mode"] == "non-blocking"
    assert defaults["cloudwatch_logs_options"]["awslogs-group"] == "/ecs/prefect-dispatcher"
    block = await prefect_client.read_block_document(uuid.UUID(block_id), include_secrets=True)
    assert block.data["assume_role_arn"] == "arn:aws:iam::123456789012:role/prefect-dispatcher"
    assert "aws_access_key_id" not in block.data and "aws_secret_access_key" not in block.data


async def test_run_network_outputs_set_the_network_and_runs_get_it(command, prefect_client, prefect_api_url):
    name = fresh_pool()
    result = await command(name, FIXTURES / "aws-ecs.keyless.json")
    assert result.code == 0, result.err
    configuration = await resolved_configuration(prefect_api_url, prefect_client, name)
    network = configuration.network_configuration
    assert network.subnets == ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
    assert network.securityGroups == ["sg-0123456789abcdef0"] and network.assignPublicIp == "DISABLED"
    assert configuration.vpc_id == "vpc-0a1b2c3d4e5f67890"
    assert configuration.aws_credentials.assume_role_arn.endswith(":role/prefect-dispatcher")
    assert configuration.aws_credentials.is_empty() is False and configuration.aws_credentials.aws_access_key_id is None


async def test_a_pool_of_another_type_is_refused_and_nothing_is_written(command, prefect_client, prefect_api_url):
    name = fresh_pool()
    await create_pool(prefect_api_url, name, "cloud-run-v2:push")
    before = (await prefect_client.read_work_pool(name)).base_job_template
    result = await command(name, FIXTURES / "aws-ecs.iam-user.json")
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == (f"work pool {name!r} is of type cloud-run-v2:push, but outputs of aws-ecs "
                                  "are for ecs:push pools")
    assert (await prefect_client.read_work_pool(name)).base_job_template == before
    with pytest.raises(ObjectNotFound):
        await prefect_client.read_block_document_by_name(name, "aws-credentials")


async def test_unknown_module_bad_block_name_and_unreachable_prefect_are_one_line(command, tmp_path):
    unknown = tmp_path / "vpc.json"
    unknown.write_text(json.dumps({"vpc_id": {"sensitive": False, "type": "string", "value": "vpc-1"}}))
    result = await command(fresh_pool(), unknown)
    assert result.code == 3 and len(result.err.strip().splitlines()) == 1
    assert "not from one of our modules" in result.err

    result = await command(fresh_pool(), FIXTURES / "azure-aci.service-principal.json", "--block-name", "Prod Creds")
    assert result.code == 2 and "--block-name 'Prod Creds'" in result.err

    result = await command(fresh_pool(), FIXTURES / "azure-aci.service-principal.json",
                           api_url=f"http://127.0.0.1:{free_port()}/api")
    assert result.code == 4 and len(result.err.strip().splitlines()) == 1
    assert "unreachable" in result.err


async def test_connection_from_dispatcher_yaml(command, prefect_client, prefect_api_url, tmp_path):
    config = tmp_path / "dispatcher.yaml"
    config.write_text(f"workspaces:\n  - name: w\n    api_url: {prefect_api_url}\n    pools: [{{name: x}}]\n")
    name = fresh_pool()
    result = await command(name, FIXTURES / "gcp-cloud-run.key.json", "--config", str(config), api_url="")
    assert result.code == 0, result.err
    assert (await prefect_client.read_work_pool(name)).type == "cloud-run-v2:push"


@pytest.mark.parametrize("integration_installed", [True, False], ids=["with-prefect-azure", "collection-data"])
async def test_a_missing_block_type_is_registered(integration_installed, command, prefect_client, monkeypatch):
    """A server started without block registration lacks the type: registered, then used."""
    if not integration_installed:
        monkeypatch.setitem(__import__("sys").modules, "prefect_azure", None)  # import fails: collection data
    slug = "azure-container-instance-credentials"
    block_type = await prefect_client.read_block_type_by_slug(slug)
    await prefect_client.request("DELETE", "/block_types/{id}", path_params={"id": block_type.id})
    name = fresh_pool()
    result = await command(name, FIXTURES / "azure-aci.service-principal.json")
    assert result.code == 0, result.err
    how = "with prefect_azure" if integration_installed else "from Prefect's prefect-azure collection data"
    assert f"registered block type {slug}: {how}" in result.out
    block = await prefect_client.read_block_document_by_name(name, slug, include_secrets=True)
    assert block.data["client_id"] == "6731de76-14a6-49ae-97bc-6eba6914391e"
    assert block.block_schema.fields["secret_fields"] == ["client_secret"]


async def test_the_installed_command_fails_in_one_line_without_traceback(tmp_path):
    """The real entry point in its own process (Prefect's logging set up as for an operator)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dispatcher.cli", "pool", "from-terraform", "p",
        str(FIXTURES / "aws-ecs.iam-user.json"), "--api-url", f"http://127.0.0.1:{free_port()}/api",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 4 and out == b""
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Prefect API http://127.0.0.1:") and "Traceback" not in lines[0]
    assert not any(secret.encode() in err for secret in SECRETS)
