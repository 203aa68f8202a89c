"""The awsvpc network configuration of a run: given, from the settings, or looked up once.

Prefect's ECS worker calls DescribeVpcs + DescribeSubnets on every run without
a network configuration. Here subnets come from the job's
``network_configuration``, else the operator's ``subnets`` setting, else one EC2
DescribeSubnets per (credential set, vpc_id) for the life of the process: the
default VPC's default subnets (``default-for-az``), or every available subnet of
``vpc_id``. Looked-up subnets get a public IP, as Prefect does, so public images
can be pulled without a NAT gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Optional

from providers.ecs.config import AwsVpcConfiguration, EcsJobConfiguration, EcsSettings
from providers.ecs.errors import aws_errors
from providers.ecs.singleflight import SingleFlight
from providers.errors import InvalidJobConfiguration, SubmissionRejected


def subnet_filters(vpc_id: Optional[str]) -> list[dict[str, Any]]:
    if vpc_id:
        return [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "state", "Values": ["available"]}]
    return [{"Name": "default-for-az", "Values": ["true"]}, {"Name": "state", "Values": ["available"]}]


class Subnets:
    """Subnets per (credential set, vpc_id), looked up once per process."""

    def __init__(self) -> None:
        self._found: SingleFlight[tuple[str, ...]] = SingleFlight()
        self.lookups = 0

    async def network(
        self, cfg: EcsJobConfiguration, settings: EcsSettings, key: str, ec2: Callable[[], Awaitable[Any]]
    ) -> AwsVpcConfiguration:
        given = cfg.network_configuration
        if given.subnets:
            return given
        if settings.subnets:
            groups = given.securityGroups or settings.security_groups
            return AwsVpcConfiguration(subnets=settings.subnets, securityGroups=groups, assignPublicIp=given.assignPublicIp)
        subnets = await self._found.get((key, cfg.vpc_id), lambda: self._lookup(ec2, cfg.vpc_id))
        return AwsVpcConfiguration(
            subnets=list(subnets)[:16], securityGroups=given.securityGroups,
            assignPublicIp=given.assignPublicIp or "ENABLED",
        )

    async def _lookup(self, ec2: Callable[[], Awaitable[Any]], vpc_id: Optional[str]) -> tuple[str, ...]:
        client = await ec2()
        self.lookups += 1
        with aws_errors("ec2 DescribeSubnets", permanent=SubmissionRejected):
            answer = await client.describe_subnets(Filters=subnet_filters(vpc_id))
        subnets = tuple(sorted(s["SubnetId"] for s in answer.get("Subnets") or []))
        if not subnets:
            where = f"VPC {vpc_id}" if vpc_id else "the account's default VPC"
            raise InvalidJobConfiguration(
                "network_configuration.subnets", [],
                f"subnet ids for the awsvpc network mode: none were given and {where} has no available subnets",
            )
        return subnets
