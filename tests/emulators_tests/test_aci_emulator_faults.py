"""The ACI emulator's fault knobs and quotas, as the aio SDK meets them (shared kit knobs and ACI's own)."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from tests.emulators.aci import ACI_CREATE_QUOTA, AciEmulator, Faults, aio_aci_client
from tests.emulators.kit import RateLimit
from tests.emulators_tests.aci_helpers import (
    RG,
    arm,
    container,
    error_code,
    group,
    group_path,
)


def create(aci, name="g1", body=None, **kw):
    return aci.container_groups.begin_create_or_update(RG, name, body or group(), polling=False, **kw)


async def test_throttle_is_429_with_retry_after_and_not_carried_out(aci, aci_emu):
    aci_emu.faults = Faults(throttle_rate=1.0, throttle_retry_after_s=7)
    status, payload, headers = arm(aci_emu, "PUT", group_path(aci_emu), group().serialize())
    assert (status, payload["error"]["code"], headers["retry-after"]) == (429, "SubscriptionRequestsThrottled", "7")
    assert aci_emu.groups == {} and aci_emu.calls["ContainerGroups_CreateOrUpdate"] == 1


async def test_the_sdk_retry_policy_honours_retry_after_on_429(aci_emu):
    # A token every 2 s: the second GET, sent right after the first, finds the bucket empty.
    aci_emu.faults = Faults(arm_limits={"reads": RateLimit(per_s=0.5, burst=1)})
    async with aio_aci_client(aci_emu.endpoint_url, aci_emu.subscription_id, retry_total=1) as aci:
        await create(aci)
        await aci.container_groups.get(RG, "g1")  # empties the read bucket
        waited = time.monotonic()
        await aci.container_groups.get(RG, "g1")  # 429 Retry-After: 2, then the retry finds a token
        assert time.monotonic() - waited >= 1.9
    assert aci_emu.calls["ContainerGroups_Get"] == 3


async def test_arm_limits_report_the_remaining_tokens(aci_emu):
    aci_emu.faults = Faults(arm_limits={"reads": RateLimit(per_s=0.001, burst=3)})
    remaining = [arm(aci_emu, "GET", group_path(aci_emu))[2]["x-ms-ratelimit-remaining-subscription-reads"]
                 for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    status, payload, headers = arm(aci_emu, "GET", group_path(aci_emu))
    assert (status, payload["error"]["code"]) == (429, "SubscriptionRequestsThrottled")
    assert int(headers["retry-after"]) >= 1


async def test_server_error_is_503_and_not_carried_out(aci, aci_emu):
    aci_emu.faults = Faults(server_error_rate=1.0, ops={"ContainerGroups_CreateOrUpdate"})
    with pytest.raises(HttpResponseError) as failed:
        await create(aci)
    assert (failed.value.status_code, error_code(failed.value)) == (503, "ServiceUnavailable")
    assert aci_emu.groups == {}
    assert [u async for u in aci.location.list_usage("eastus")]  # an operation outside ``ops`` is unaffected


async def test_accept_then_fail_creates_the_group_and_a_retried_put_restarts_it(aci_emu):
    """What a PUT retried after an ambiguous 503 does on ACI: the second PUT redeploys the group."""
    aci_emu.faults = Faults(accept_then_fail=1)
    async with aio_aci_client(aci_emu.endpoint_url, aci_emu.subscription_id) as aci:
        with pytest.raises(HttpResponseError) as failed:
            await create(aci)
        assert failed.value.status_code == 503 and aci_emu.group("g1").puts == 1  # carried out all the same
    aci_emu.faults = Faults(accept_then_fail=1)
    async with aio_aci_client(aci_emu.endpoint_url, aci_emu.subscription_id, retry_total=1,
                              retry_backoff_factor=0) as retrying:
        await create(retrying, "g2")  # azure-core retries the 503 PUT...
    assert aci_emu.calls["ContainerGroups_CreateOrUpdate"] == 3 and aci_emu.group("g2").puts == 2  # ...a restart


async def test_outage_after_create_hides_the_group_until_it_is_switched_off(aci, aci_emu):
    """The create is carried out, then ARM answers 503 to everything: the client cannot learn what happened."""
    aci_emu.faults = Faults(outage_after_create=1)
    with pytest.raises(HttpResponseError) as failed:
        await create(aci)
    assert failed.value.status_code == 503 and aci_emu.faults.outage and aci_emu.group("g1").puts == 1
    with pytest.raises(HttpResponseError) as unavailable:
        await aci.container_groups.get(RG, "g1")
    assert (unavailable.value.status_code, error_code(unavailable.value)) == (503, "ServiceUnavailable")
    aci_emu.faults.outage = False
    assert (await aci.container_groups.get(RG, "g1")).name == "g1"


async def test_lost_response_is_500_after_the_call_ran(aci, aci_emu):
    aci_emu.faults = Faults(lost_responses=1)
    with pytest.raises(HttpResponseError) as lost:
        await create(aci)
    assert (lost.value.status_code, error_code(lost.value)) == (500, "InternalServerError")
    assert "g1" in aci_emu.group("g1").name and aci_emu.faults.lost_responses == 0


async def test_latency_delays_every_answer(aci, aci_emu):
    aci_emu.faults = Faults(latency_s=0.2, latency_jitter_s=0.05)
    started = time.monotonic()
    await create(aci)
    assert time.monotonic() - started >= 0.2


async def test_create_quota_is_429_resource_requests_throttled_with_retry_after(aci, aci_emu):
    aci_emu.faults = Faults(create_quota={"00:05:00": RateLimit(per_s=100 / 300, burst=2)})
    await create(aci, "g1")
    await create(aci, "g2")
    status, payload, headers = arm(aci_emu, "PUT", group_path(aci_emu, "g3"), group().serialize())
    assert (status, payload["error"]["code"]) == (429, "ResourceRequestsThrottled")
    assert "exceeded the limit of '2' for time interval '00:05:00'" in payload["error"]["message"]
    assert int(headers["retry-after"]) >= 1
    await create(aci, "g1")  # an update is no create: not counted
    assert set(ACI_CREATE_QUOTA) == {"00:05:00", "01:00:00"}


async def test_delete_quota(aci, aci_emu):
    await create(aci, "g1")
    await create(aci, "g2")
    aci_emu.faults = Faults(delete_quota={"00:05:00": RateLimit(per_s=1 / 300, burst=1)})
    await (await aci.container_groups.begin_delete(RG, "g1")).result()
    with pytest.raises(HttpResponseError) as refused:
        await aci.container_groups.begin_delete(RG, "g2")
    assert (refused.value.status_code, error_code(refused.value)) == (429, "ResourceRequestsThrottled")


async def test_group_and_core_quotas_per_region(aci, aci_emu):
    aci_emu.faults = Faults(max_groups_per_region=1)
    await create(aci, "g1")
    with pytest.raises(HttpResponseError) as groups:
        await create(aci, "g2")
    assert error_code(groups.value) == "ContainerGroupQuotaReached" and "'ContainerGroups'" in groups.value.message
    await create(aci, "w1", group(location="westus"))  # another region has its own quota
    aci_emu.faults = Faults(max_cores_per_region=2)
    with pytest.raises(HttpResponseError) as cores:
        await create(aci, "g2", group(container(cpu=1.5)))
    assert cores.value.status_code == 400
    assert "quota 'StandardCores' exceeded in region 'eastus'. Limit: '2', Usage: '1' Requested: '1.5'." in \
        cores.value.message


async def test_gpu_quota_defaults_to_zero(aci, aci_emu):
    from azure.mgmt.containerinstance.models import GpuResource

    gpu_group = group()
    gpu_group.containers[0].resources.requests.gpu = GpuResource(count=1, sku="V100")
    with pytest.raises(HttpResponseError) as refused:
        await create(aci, "g1", gpu_group)
    assert error_code(refused.value) == "ContainerGroupQuotaReached" and "'V100Cores'" in refused.value.message
    aci_emu.faults = Faults(gpu_quota={"V100": 1})
    await create(aci, "g1", gpu_group)


async def test_capacity_failure_is_409_service_unavailable(aci, aci_emu):
    aci_emu.faults = Faults(capacity_failures=1)
    with pytest.raises(ResourceExistsError) as refused:  # azure-core maps every 409 to ResourceExistsError
        await create(aci)
    assert error_code(refused.value) == "ServiceUnavailable" and aci_emu.groups == {}
    assert "Resource requested: '1' CPU '1.5' GB memory 'Linux' OS" in refused.value.message
    await create(aci)


async def test_inaccessible_image_is_refused_at_put(aci, aci_emu):
    aci_emu.faults = Faults(inaccessible_images={"prefecthq/prefect:3-latest"})
    with pytest.raises(HttpResponseError) as refused:
        await create(aci)
    assert error_code(refused.value) == "InaccessibleImage" and aci_emu.groups == {}


async def test_pull_failure_fails_the_create_operation_with_events(aci, aci_emu):
    aci_emu.faults = Faults(pull_failures=1)
    with pytest.raises(HttpResponseError) as failed:
        await (await aci.container_groups.begin_create_or_update(RG, "g1", group())).result()
    assert error_code(failed.value) == "InaccessibleImage"
    got = await aci.container_groups.get(RG, "g1")
    events = {e.name: e for e in got.containers[0].instance_view.events}
    assert got.provisioning_state == "Failed" and got.instance_view.state == "Failed"
    assert (events["Pulling"].count, events["Failed"].count, events["BackOff"].count) == (3, 3, 3)
    assert events["Failed"].type == "Warning" and events["Failed"].message.startswith('Failed to pull image "')
    assert got.containers[0].instance_view.current_state.state == "Waiting"


async def test_platform_may_restart_a_failed_container_under_never(aci, aci_emu):
    aci_emu.faults = Faults(platform_restarts=1)
    failing = group(container(env={"EMULATOR_EXIT_CODE": "2", "EMULATOR_RUN_SECONDS": "0.05"}))
    await create(aci, "g1", failing)
    done = aci_emu.wait_for_state("g1", "Failed")
    assert done.containers[0].restart_count == 1 and done.containers[0].previous.exit_code == 2
    assert aci_emu.faults.platform_restarts == 0


async def test_a_bad_emulator_env_value_is_acis_own_400(aci, aci_emu):
    with pytest.raises(HttpResponseError) as failed:
        await create(aci, "g1", group(container(env={"EMULATOR_EXIT_CODE": "1.5"})))
    assert error_code(failed.value) == "InvalidEnvironmentVariable" and failed.value.status_code == 400
    assert "Emulator: bad EMULATOR_RUN_SECONDS/EMULATOR_EXIT_CODE value" in failed.value.error.message
    assert aci_emu.groups == {}


async def test_restart_policies(aci, aci_emu):
    quick_fail = {"EMULATOR_EXIT_CODE": "1", "EMULATOR_RUN_SECONDS": "0.02"}
    await create(aci, "always", group(container(env={"EMULATOR_RUN_SECONDS": "0.02"}), restart_policy="Always"))
    await create(aci, "onfailure", group(container(env=quick_fail), restart_policy="OnFailure"))
    await create(aci, "never", group(container(env=quick_fail)))
    aci_emu.wait_for("always", lambda g: g.containers[0].restart_count >= 2, what="two restarts")
    aci_emu.wait_for("onfailure", lambda g: g.containers[0].restart_count >= 2, what="two restarts")
    assert aci_emu.wait_for_state("never", "Failed").containers[0].restart_count == 0
    assert aci_emu.group("always").state == "Running"


def test_every_knob_is_off_by_default():
    with AciEmulator() as emu:
        faults = emu.faults
        assert not (faults.create_quota or faults.delete_quota or faults.arm_limits or faults.gpu_quota)
        assert faults.max_groups_per_region is faults.max_cores_per_region is None
        assert faults.capacity_failures == faults.pull_failures == faults.platform_restarts == 0
