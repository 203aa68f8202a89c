"""Google Cloud Run (jobs, API v2): Prefect's cloud-run-v2:push pools.

Exports are loaded lazily, as for every cloud package, so reading the registry
imports no Google SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.cloud_run.config import (
        CloudRunJobConfiguration,
        CloudRunSettings,
        CloudRunVariables,
        SecretKeySelector,
    )
    from providers.cloud_run.credentials import GcpCredentials
    from providers.cloud_run.provider import CloudRunProvider

__all__ = ["CloudRunJobConfiguration", "CloudRunProvider", "CloudRunSettings", "CloudRunVariables", "GcpCredentials",
           "SecretKeySelector"]

_MODULE_OF = {
    "CloudRunJobConfiguration": "providers.cloud_run.config",
    "CloudRunSettings": "providers.cloud_run.config",
    "CloudRunVariables": "providers.cloud_run.config",
    "SecretKeySelector": "providers.cloud_run.config",
    "GcpCredentials": "providers.cloud_run.credentials",
    "CloudRunProvider": "providers.cloud_run.provider",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
