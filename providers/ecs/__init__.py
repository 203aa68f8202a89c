"""The ECS provider: flow runs as ECS tasks (Fargate, Fargate Spot, EC2), Prefect's ecs:push pools.

Exports are loaded lazily so that reading the registry does not import the AWS SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.ecs.config import EcsJobConfiguration, EcsSettings, EcsVariables
    from providers.ecs.credentials import AwsCredentials
    from providers.ecs.provider import EcsProvider

__all__ = ["AwsCredentials", "EcsJobConfiguration", "EcsProvider", "EcsSettings", "EcsVariables"]

_MODULE_OF = {
    "AwsCredentials": "providers.ecs.credentials",
    "EcsJobConfiguration": "providers.ecs.config",
    "EcsSettings": "providers.ecs.config",
    "EcsVariables": "providers.ecs.config",
    "EcsProvider": "providers.ecs.provider",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
