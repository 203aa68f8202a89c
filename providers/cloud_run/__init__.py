"""Google Cloud Run (jobs, API v2): Prefect's cloud-run-v2:push pools.

Only the pool template has landed (``template_only.py``); the provider follows.
Exports are loaded lazily, as for every cloud package, so reading the registry
imports nothing a cloud does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.cloud_run.config import CloudRunJobConfiguration, CloudRunVariables, SecretKeySelector
    from providers.cloud_run.credentials import GcpCredentials
    from providers.cloud_run.template_only import CloudRunTemplateOnly

__all__ = ["CloudRunJobConfiguration", "CloudRunTemplateOnly", "CloudRunVariables", "GcpCredentials",
           "SecretKeySelector"]

_MODULE_OF = {
    "CloudRunJobConfiguration": "providers.cloud_run.config",
    "CloudRunVariables": "providers.cloud_run.config",
    "SecretKeySelector": "providers.cloud_run.config",
    "GcpCredentials": "providers.cloud_run.credentials",
    "CloudRunTemplateOnly": "providers.cloud_run.template_only",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
