"""Execute mode (container commands really run), logs through the SDK, and template deployments."""

from __future__ import annotations

import datetime as dt

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resource import ResourceManagementClient
from azure.mgmt.resource.resources.models import Deployment, DeploymentProperties

from tests.emulators.aci import StaticTokenCredential, aio_aci_client, client_kwargs
from tests.emulators_tests.aci_helpers import (
    RG,
    container,
    error_code,
    group,
    python_group,
)


async def test_execute_runs_the_command_with_its_env_and_serves_its_logs(aci_live):
    code = ("import os, sys; print('hello', os.environ['GREETING'], os.environ.get('SECRET_FROM_HOST', 'clean')); "
            "print('key', os.environ['API_KEY'], file=sys.stderr); sys.exit(3)")
    async with aio_aci_client(aci_live.endpoint_url, aci_live.subscription_id) as aci:
        spec = python_group(code, container={"env": {"GREETING": "world"}, "secure": {"API_KEY": "s3cret"}})
        await (await aci.container_groups.begin_create_or_update(RG, "g1", spec)).result()
        aci_live.wait_for_state("g1", "Failed")
        got = await aci.container_groups.get(RG, "g1")
        state = got.containers[0].instance_view.current_state
        assert (state.state, state.exit_code, state.detail_status) == ("Terminated", 3, "Error")
        plain = await aci.containers.list_logs(RG, "g1", "job")
        assert sorted(plain.content.splitlines()) == ["hello world clean", "key s3cret"]
        stamped = await aci.containers.list_logs(RG, "g1", "job", tail=1, timestamps=True)
        stamp, _, line = stamped.content.rstrip("\n").partition(" ")
        assert line in ("hello world clean", "key s3cret") and len(stamped.content.splitlines()) == 1
        assert dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None  # what Prefect parses


async def test_stop_sends_sigterm_to_the_running_command(aci_live):
    async with aio_aci_client(aci_live.endpoint_url, aci_live.subscription_id) as aci:
        spec = group(container(command=["sh", "-c", "echo up; sleep 30"]))
        await (await aci.container_groups.begin_create_or_update(RG, "g1", spec)).result()
        aci_live.wait_for("g1", lambda g: g.containers[0].output, what="the first output line")
        await aci.container_groups.stop(RG, "g1")
        stopped = aci_live.wait_for("g1", lambda g: g.containers[0].current.state == "Terminated", what="Terminated")
        assert stopped.containers[0].current.exit_code == 143 and stopped.state == "Stopped"


async def test_a_command_that_cannot_run_exits_127(aci_live):
    async with aio_aci_client(aci_live.endpoint_url, aci_live.subscription_id) as aci:
        spec = group(container(command=["no-such-binary-here"]))
        await (await aci.container_groups.begin_create_or_update(RG, "g1", spec)).result()
        failed = aci_live.wait_for_state("g1", "Failed")
        assert failed.containers[0].current.exit_code == 127
        assert any(e.name == "Failed" and "no-such-binary-here" in e.message for e in failed.containers[0].events)


async def test_a_put_over_a_running_group_kills_and_reruns_the_command(aci_live):
    """The hazard a dispatcher must avoid: PUT on its own group's name runs the flow a second time."""
    async with aio_aci_client(aci_live.endpoint_url, aci_live.subscription_id) as aci:
        spec = group(container(command=["sh", "-c", "echo run; sleep 30"]))
        await (await aci.container_groups.begin_create_or_update(RG, "g1", spec)).result()
        aci_live.wait_for("g1", lambda g: g.containers[0].output, what="the first run's output")
        await (await aci.container_groups.begin_create_or_update(RG, "g1", spec)).result()
        rerun = aci_live.wait_for("g1", lambda g: g.containers[0].output and g.containers[0].run == 2,
                                  what="the second run's output")
        assert rerun.containers[0].restart_count == 1 and rerun.puts == 2


# -- ARM template deployments (what Prefect's worker sends) ---------------------------------------------


def _template(**container_props):
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-08-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"name": {"type": "string"},
                       "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
                       "cname": {"type": "string", "defaultValue": "[uniqueString(resourceGroup().id)]"}},
        "resources": [{"type": "Microsoft.ContainerInstance/containerGroups", "apiVersion": "2022-09-01",
                       "name": "[parameters('name')]", "location": "[parameters('location')]",
                       "properties": {"osType": "Linux", "restartPolicy": "Never", "containers": [
                           {"name": "[parameters('cname')]", "properties": {
                               "image": "[concat('prefecthq/', 'prefect:3')]",
                               "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.0}}, **container_props}}]}}],
    }


def _resources(emu):
    credential = StaticTokenCredential()
    return ResourceManagementClient(credential, emu.subscription_id,
                                    **client_kwargs(emu.endpoint_url, credential, is_async=False))


def test_a_template_deployment_creates_the_container_group(aci_emu):
    with _resources(aci_emu) as resources:
        properties = DeploymentProperties(mode="Incremental", template=_template(),
                                          parameters={"name": {"value": "from-template"}})
        deployment = resources.deployments.begin_create_or_update(RG, "d1", Deployment(properties=properties))
        done = deployment.result()
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.output_resources[0].id.endswith("/containerGroups/from-template")
    group_ = aci_emu.group("from-template")
    assert group_.location == "eastus" and group_.containers[0].image == "prefecthq/prefect:3"
    assert len(group_.containers[0].name) == 13  # uniqueString's length
    assert aci_emu.permissions["Microsoft.ContainerInstance/containerGroups/write"] == 1


@pytest.mark.parametrize("template, parameters, message", [
    (_template(command="[bogus()]"), {"name": {"value": "x"}}, "The template function 'bogus' is not valid"),
    (_template(), {"name": {"value": "x"}, "extra": {"value": 1}}, "The template parameters 'extra'"),
    (_template(), {}, "The value for the template parameter 'name' is not provided"),
])
def test_template_errors_are_invalid_template(aci_emu, template, parameters, message):
    with _resources(aci_emu) as resources, pytest.raises(HttpResponseError) as refused:
        resources.deployments.begin_create_or_update(RG, "d1", Deployment(properties=DeploymentProperties(
            mode="Incremental", template=template, parameters=parameters)))
    assert error_code(refused.value) == "InvalidTemplate" and message in refused.value.message
    assert aci_emu.groups == {}


def test_a_group_the_provider_refuses_fails_the_deployment(aci_emu):
    with _resources(aci_emu) as resources:
        properties = DeploymentProperties(mode="Incremental", template=_template(),
                                          parameters={"name": {"value": "Not_Valid"}})
        poller = resources.deployments.begin_create_or_update(RG, "d1", Deployment(properties=properties))
        with pytest.raises(HttpResponseError) as failed:
            poller.result()
        assert error_code(failed.value) == "DeploymentFailed"
        assert failed.value.error.details[0].code == "InvalidContainerGroupName"
        assert resources.deployments.get(RG, "d1").properties.provisioning_state == "Failed"
