"""The ACI emulator through the real aio SDK: create (with and without the poller), get, list, delete, stop,
start, restart, logs, LRO headers, ARM errors and headers."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from tests.emulators.aci import AciEmulator, Timings, aio_aci_client
from tests.emulators_tests.aci_helpers import (
    RG,
    arm,
    container,
    error_code,
    group,
    group_path,
)


async def test_create_without_polling_answers_201_pending_with_the_async_operation(aci, aci_emu):
    poller = await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
    created = await poller.result()
    assert created.provisioning_state == "Pending" and created.instance_view.state == "Pending"
    assert created.id == group_path(aci_emu) and created.type == "Microsoft.ContainerInstance/containerGroups"
    assert aci_emu.calls == {"ContainerGroups_CreateOrUpdate": 1}  # no poll
    status, _, headers = arm(aci_emu, "PUT", group_path(aci_emu, "g2"), group().serialize())
    assert status == 201 and headers["retry-after"] == "0"
    assert headers["azure-asyncoperation"].startswith(
        f"{aci_emu.endpoint_url}/subscriptions/{aci_emu.subscription_id}/providers/Microsoft.ContainerInstance/"
        "locations/eastus/operations/") and headers["azure-asyncoperation"].endswith("?api-version=2023-05-01")
    assert headers["x-ms-ratelimit-remaining-subscription-writes"] and headers["x-ms-request-id"]


async def test_create_with_the_poller_follows_the_operation_then_gets_the_group(aci, aci_emu):
    poller = await aci.container_groups.begin_create_or_update(RG, "g1", group())
    created = await poller.result()
    assert created.provisioning_state == "Succeeded" and created.instance_view.state == "Running"
    assert aci_emu.calls["AsyncOperation_Get"] >= 1 and aci_emu.calls["ContainerGroups_Get"] == 1  # the final GET
    assert aci_emu.permissions["Microsoft.ContainerInstance/locations/operations/read"] >= 1


async def test_get_has_the_instance_view_of_a_finished_container(aci, aci_emu):
    await (await aci.container_groups.begin_create_or_update(RG, "g1", group())).result()
    aci_emu.wait_for_state("g1", "Succeeded")
    got = await aci.container_groups.get(RG, "g1")
    view = got.containers[0].instance_view
    assert (view.current_state.state, view.current_state.exit_code, view.current_state.detail_status) == (
        "Terminated", 0, "Completed")
    assert view.current_state.start_time < view.current_state.finish_time and view.restart_count == 0
    events = {e.name: e for e in view.events}
    assert list(events) == ["Pulling", "Pulled", "Started"]
    assert events["Pulling"].first_timestamp <= events["Pulled"].first_timestamp <= view.current_state.start_time
    assert events["Pulling"].message == 'pulling image "prefecthq/prefect:3-latest"' and events["Pulled"].count == 1
    assert got.instance_view.state == "Succeeded" and got.provisioning_state == "Succeeded"


async def test_list_omits_the_instance_view_and_pages_with_next_link():
    with AciEmulator(resource_groups={"rg": "eastus", "other": "westus"}, list_page_size=2) as emu:
        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            for i in range(5):
                await aci.container_groups.begin_create_or_update(RG, f"g{i}", group(), polling=False)
            await aci.container_groups.begin_create_or_update("other", "x", group(location="westus"), polling=False)
            listed = [g async for g in aci.container_groups.list_by_resource_group(RG)]
            everywhere = [g async for g in aci.container_groups.list()]
        assert [g.name for g in listed] == [f"g{i}" for i in range(5)]
        assert emu.calls["ContainerGroups_ListByResourceGroup"] == 3  # pages of 2, 2, 1 via absolute nextLink
        assert all(g.instance_view is None and g.containers[0].instance_view is None for g in listed)
        assert all(g.provisioning_state for g in listed)  # what List does give: existence, state, tags
        assert sorted(g.name for g in everywhere) == ["g0", "g1", "g2", "g3", "g4", "x"]
        assert emu.errors == []


async def test_delete_answers_200_with_the_group_then_204_once_absent(aci, aci_emu):
    await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
    deleted = await (await aci.container_groups.begin_delete(RG, "g1")).result()
    assert deleted.name == "g1" and aci_emu.groups == {} and [g.name for g in aci_emu.deleted_groups] == ["g1"]
    with pytest.raises(ResourceNotFoundError) as missing:
        await aci.container_groups.get(RG, "g1")
    assert error_code(missing.value) == "ResourceNotFound"
    assert await (await aci.container_groups.begin_delete(RG, "g1")).result() is None
    assert arm(aci_emu, "DELETE", group_path(aci_emu))[0] == 204


async def test_slow_delete_is_a_202_operation_the_poller_follows():
    with AciEmulator(timings=Timings(delete_s=0.1)) as emu:
        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
            status, _, headers = arm(emu, "DELETE", group_path(emu))
            assert status == 202 and "/operationResults/" in headers["location"] and headers["retry-after"] == "0"
            assert (await aci.container_groups.get(RG, "g1")).provisioning_state == "Deleting"
            await (await aci.container_groups.begin_delete(RG, "g1")).result()
            assert emu.groups == {} and emu.calls["AsyncOperation_Get"] >= 1
        assert emu.errors == []


async def test_stop_terminates_containers_and_start_runs_them_again(aci, aci_emu):
    await aci.container_groups.begin_create_or_update(RG, "g1", group(container(env={"EMULATOR_RUN_SECONDS": "30"})))
    aci_emu.wait_for_state("g1", "Running")
    await aci.container_groups.stop(RG, "g1")
    stopped = await aci.container_groups.get(RG, "g1")
    state = stopped.containers[0].instance_view.current_state
    assert stopped.instance_view.state == "Stopped" and (state.state, state.exit_code) == ("Terminated", 143)
    assert "Killing" in [e.name for e in stopped.containers[0].instance_view.events]
    await (await aci.container_groups.begin_start(RG, "g1")).result()
    started = await aci.container_groups.get(RG, "g1")
    view = started.containers[0].instance_view
    assert started.instance_view.state == "Running" and view.current_state.state == "Running"
    assert view.previous_state.state == "Terminated" and view.restart_count == 1
    assert aci_emu.permissions["Microsoft.ContainerInstance/containerGroups/stop/action"] == 1


async def test_put_over_an_existing_group_updates_and_restarts_it(aci, aci_emu):
    long_run = group(container(env={"EMULATOR_RUN_SECONDS": "30"}))
    await (await aci.container_groups.begin_create_or_update(RG, "g1", long_run)).result()
    status, _, _ = arm(aci_emu, "PUT", group_path(aci_emu), long_run.serialize())
    assert status == 200  # an update, not a create...
    aci_emu.wait_for_state("g1", "Running")
    view = (await aci.container_groups.get(RG, "g1")).containers[0].instance_view
    assert view.restart_count == 1 and view.previous_state.state == "Running"  # ...that restarted the container
    assert aci_emu.group("g1").puts == 2 and [e.name for e in view.events].count("Killing") == 1


async def test_restart_redeploys_every_container(aci, aci_emu):
    await (await aci.container_groups.begin_create_or_update(RG, "g1", group())).result()
    await (await aci.container_groups.begin_restart(RG, "g1")).result()
    aci_emu.wait_for_state("g1", "Running")
    assert aci_emu.group("g1").containers[0].restart_count == 1


async def test_logs_of_a_container_and_of_a_missing_one(aci, aci_emu):
    await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
    logs = await aci.containers.list_logs(RG, "g1", "job", tail=10, timestamps=True)
    assert logs.content == ""  # a simulated container prints nothing; execute mode has the real output
    with pytest.raises(ResourceNotFoundError):
        await aci.containers.list_logs(RG, "g1", "nope")
    assert aci_emu.permissions["Microsoft.ContainerInstance/containerGroups/containers/logs/read"] == 2


async def test_tags_update_and_usage(aci, aci_emu):
    from azure.mgmt.containerinstance.models import Resource

    await aci.container_groups.begin_create_or_update(RG, "g1", group(), polling=False)
    assert (await aci.container_groups.update(RG, "g1", Resource(tags={"run": "a"}))).tags == {"run": "a"}
    usage = {u.name.value: u.current_value async for u in aci.location.list_usage("eastus")}
    assert usage == {"ContainerGroups": 1, "StandardCores": 1}


async def test_arm_request_checks(aci_emu):
    path = group_path(aci_emu)
    status, payload, _ = arm(aci_emu, "GET", path, query="")
    assert (status, payload["error"]["code"]) == (400, "MissingApiVersionParameter")
    assert arm(aci_emu, "GET", path, query="api-version=2099-01-01")[1]["error"]["code"] == "NoRegisteredProviderFound"
    status, payload, _ = arm(aci_emu, "GET", path, token=None)
    assert (status, payload["error"]["message"]) == (
        401, "Authentication failed. The 'Authorization' header is missing.")
    bad_sub = path.replace(aci_emu.subscription_id, "not-a-guid")
    assert arm(aci_emu, "GET", bad_sub)[1]["error"]["code"] == "InvalidSubscriptionId"
    other_sub = path.replace(aci_emu.subscription_id, "11111111-1111-1111-1111-111111111111")
    assert arm(aci_emu, "GET", other_sub)[:2] == (404, {"error": {
        "code": "SubscriptionNotFound", "message": "The subscription '11111111-1111-1111-1111-111111111111' could "
                                                   "not be found."}})
    assert arm(aci_emu, "GET", path.replace("/rg/", "/nope/"))[1]["error"]["code"] == "ResourceGroupNotFound"
    assert arm(aci_emu, "POST", path)[0] == 405
    shouted = path.replace("resourceGroups", "RESOURCEGROUPS").replace("containerGroups", "CONTAINERGROUPS")
    assert arm(aci_emu, "GET", shouted)[1]["error"]["code"] == "ResourceNotFound"  # ARM paths ignore case


async def test_sdk_errors_map_to_azure_core_exceptions(aci_emu):
    async with aio_aci_client(aci_emu.endpoint_url, "11111111-1111-1111-1111-111111111111") as wrong_sub:
        with pytest.raises(ResourceNotFoundError):
            await wrong_sub.container_groups.get(RG, "g1")
    async with aio_aci_client(aci_emu.endpoint_url, aci_emu.subscription_id) as aci:
        with pytest.raises(ResourceNotFoundError) as rg_missing:
            await aci.container_groups.get("nope", "g1")
        assert error_code(rg_missing.value) == "ResourceGroupNotFound"
        with pytest.raises(HttpResponseError) as bad_name:
            await aci.container_groups.begin_create_or_update(RG, "Bad_Name", group(), polling=False)
        assert bad_name.value.status_code == 400 and error_code(bad_name.value) == "InvalidContainerGroupName"
