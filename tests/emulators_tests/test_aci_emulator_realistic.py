"""ACI realistic mode through the real aio azure-mgmt client and raw ARM calls: ARM buckets, create quota and
region quota at their documented defaults, capacity, subnets, phase times.

Buckets run on an injected clock (``Realism(clock=...)``): refills happen when the test moves it.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.containerinstance import models as m

from tests.emulators.aci import AciEmulator, aio_aci_client
from tests.emulators.kit import Realism
from tests.emulators_tests.aci_helpers import RG, arm, group, group_path


def create(aci, name="g1", body=None):
    return aci.container_groups.begin_create_or_update(RG, name, body or group(), polling=False)


async def test_create_quota_then_region_quota_at_their_defaults(clock):
    with AciEmulator(realistic=Realism(clock=clock)) as emu:
        for i in range(100):  # the 5-minute window's burst, also the region's 100 groups
            status, _, _ = arm(emu, "PUT", group_path(emu, f"g{i}"), group().serialize())
            assert status == 201
        status, payload, headers = arm(emu, "PUT", group_path(emu, "g100"), group().serialize())
        assert (status, payload["error"]["code"]) == (429, "ResourceRequestsThrottled")
        assert "exceeded the limit of '100' for time interval '00:05:00'" in payload["error"]["message"]
        assert headers["retry-after"] == "3"  # 100 per 300 s: a token every 3 s
        clock.now += 3
        status, payload, _ = arm(emu, "PUT", group_path(emu, "g100"), group().serialize())
        assert (status, payload["error"]["code"]) == (400, "ContainerGroupQuotaReached")
        assert "'ContainerGroups'" in payload["error"]["message"] and len(emu.groups) == 100
        assert emu.errors == []


async def test_arm_buckets_are_the_documented_ones(clock):
    with AciEmulator(realistic=Realism(clock=clock)) as emu:
        arm(emu, "PUT", group_path(emu), group().serialize())
        status, _, headers = arm(emu, "GET", group_path(emu))
        assert status == 200
        assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
        for _ in range(249):
            arm(emu, "GET", group_path(emu))
        status, payload, headers = arm(emu, "GET", group_path(emu))
        assert (status, payload["error"]["code"]) == (429, "SubscriptionRequestsThrottled")
        clock.now += 1  # 25 reads per second
        assert arm(emu, "GET", group_path(emu))[0] == 200


async def test_capacity_errors_in_aci_words(clock):
    with AciEmulator(realistic=Realism(clock=clock, capacity_failure_rate=1.0)) as emu:
        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            with pytest.raises(ResourceExistsError) as refused:  # azure-core maps every 409 here
                await create(aci)
        assert refused.value.error.code == "ServiceUnavailable"
        assert "is not available in the location 'eastus'" in refused.value.message and emu.groups == {}


async def test_subnets_must_exist_in_the_region_and_be_delegated(clock):
    with AciEmulator(realistic=Realism(clock=clock)) as emu:
        private = emu.networks.add_subnet(RG, "flows", "aci")
        undelegated = emu.networks.add_subnet(RG, "flows", "plain", delegated=False)
        elsewhere = emu.networks.add_subnet(RG, "west", "aci", location="westus")
        missing = private.replace("/subnets/aci", "/subnets/nope")

        def in_subnet(subnet_id: str) -> m.ContainerGroup:
            return group(subnet_ids=[m.ContainerGroupSubnetId(id=subnet_id)])

        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            for subnet_id, code in ((missing, "InvalidResourceReference"), (elsewhere, "InvalidResourceReference"),
                                    (undelegated, "SubnetMissingRequiredDelegation")):
                with pytest.raises(HttpResponseError) as refused:
                    await create(aci, body=in_subnet(subnet_id))
                assert (refused.value.status_code, refused.value.error.code) == (400, code)
            await create(aci, body=in_subnet(private))
        assert list(emu.groups) == [f"{RG}/g1"] and emu.errors == []


async def test_creation_phases_are_aci_times_scaled(clock):
    factor = 0.005
    with AciEmulator(realistic=Realism(clock=clock, time_factor=factor)) as emu:
        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            await create(aci)
            assert (await aci.container_groups.get(RG, "g1")).provisioning_state == "Pending"
        running = emu.wait_for_state("g1", "Running")
        container = running.containers[0]
        pulling = next(e for e in container.events if e.name == "Pulling")
        assert pulling.first - running.phase_since == pytest.approx(15 * factor)
        assert container.current.start - pulling.first == pytest.approx(20 * factor)
        assert emu.timings.delete_s == pytest.approx(10 * factor)


def test_default_mode_is_unchanged():
    emu = AciEmulator(realistic=False)
    faults = emu.faults
    assert not (faults.arm_limits or faults.create_quota or faults.validate_network)
    assert emu.timings.pending_s == 0.02 and emu.timings.delete_s == 0.0
