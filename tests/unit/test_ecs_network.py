"""Subnet resolution (EC2, stubbed: the ECS emulator has no EC2) and the shared single-flight cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiobotocore.session import AioSession
from aiobotocore.stub import AioStubber

from providers.ecs.config import EcsJobConfiguration, EcsSettings
from providers.ecs.network import Subnets, subnet_filters
from providers.ecs.singleflight import SingleFlight
from providers.errors import CredentialsError, InvalidJobConfiguration


@pytest.fixture
async def ec2() -> AsyncIterator[tuple[object, AioStubber]]:
    session = AioSession()
    async with session.create_client("ec2", region_name="us-east-1", aws_access_key_id="a",
                                     aws_secret_access_key="b") as client:
        with AioStubber(client) as stubber:
            yield client, stubber


def subnets_answer(*ids: str) -> dict:
    return {"Subnets": [{"SubnetId": i, "VpcId": "vpc-1", "State": "available"} for i in ids]}


def cfg(**values) -> EcsJobConfiguration:
    return EcsJobConfiguration(image="x", **values)


async def test_default_vpc_is_looked_up_once_for_many_runs(ec2) -> None:
    client, stubber = ec2
    stubber.add_response("describe_subnets", subnets_answer("subnet-b", "subnet-a"),
                         {"Filters": subnet_filters(None)})
    subnets, settings = Subnets(), EcsSettings()

    async def factory():
        return client

    networks = await asyncio.gather(*(subnets.network(cfg(), settings, "creds-1", factory) for _ in range(20)))
    assert subnets.lookups == 1
    assert {tuple(n.subnets) for n in networks} == {("subnet-a", "subnet-b")}  # sorted: same request everywhere
    assert networks[0].assignPublicIp == "ENABLED"
    stubber.assert_no_pending_responses()


async def test_vpc_id_filters_by_vpc_and_keeps_security_groups(ec2) -> None:
    client, stubber = ec2
    stubber.add_response("describe_subnets", subnets_answer("subnet-9"), {"Filters": subnet_filters("vpc-123")})

    async def factory():
        return client

    configuration = cfg(vpc_id="vpc-123", network_configuration={"securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"})
    network = await Subnets().network(configuration, EcsSettings(), "k", factory)
    assert (network.subnets, network.securityGroups, network.assignPublicIp) == (["subnet-9"], ["sg-1"], "DISABLED")


async def test_a_vpc_without_subnets_is_a_configuration_error(ec2) -> None:
    client, stubber = ec2
    stubber.add_response("describe_subnets", {"Subnets": []})

    async def factory():
        return client

    with pytest.raises(InvalidJobConfiguration, match="default VPC has no available subnets"):
        await Subnets().network(cfg(), EcsSettings(), "k", factory)


async def test_ec2_permission_errors_are_credentials_errors(ec2) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_subnets", service_error_code="UnauthorizedOperation", http_status_code=403)

    async def factory():
        return client

    with pytest.raises(CredentialsError):
        await Subnets().network(cfg(), EcsSettings(), "k", factory)


async def test_given_subnets_and_operator_subnets_need_no_lookup() -> None:
    async def factory():
        raise AssertionError("no EC2 call expected")

    given = await Subnets().network(cfg(network_configuration={"subnets": ["subnet-1"]}), EcsSettings(), "k", factory)
    assert given.subnets == ["subnet-1"]
    settings = EcsSettings(subnets=["subnet-op"], security_groups=["sg-op"])
    operator = await Subnets().network(cfg(), settings, "k", factory)
    assert (operator.subnets, operator.securityGroups) == (["subnet-op"], ["sg-op"])


async def test_single_flight_shares_one_computation_and_does_not_cache_failures() -> None:
    cache: SingleFlight[int] = SingleFlight()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 42

    assert await asyncio.gather(*(cache.get("k", compute) for _ in range(10))) == [42] * 10
    assert calls == 1 and await cache.get("k", compute) == 42 and calls == 1

    async def fail() -> int:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await cache.get("other", fail)
    assert await cache.get("other", compute) == 42
    cache.forget("other")
    assert cache.peek("other") is None
