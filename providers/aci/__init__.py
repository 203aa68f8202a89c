"""Azure Container Instances: Prefect's azure-container-instance:push pools.

Only the pool template has landed (``template_only.py``); the provider follows.
Exports are loaded lazily, as for every cloud package, so reading the registry
imports nothing a cloud does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.aci.config import AciJobConfiguration, AciVariables
    from providers.aci.credentials import (
        ACRManagedIdentity,
        AzureContainerInstanceCredentials,
        DockerRegistryCredentials,
    )
    from providers.aci.template_only import AciTemplateOnly

__all__ = ["ACRManagedIdentity", "AciJobConfiguration", "AciTemplateOnly", "AciVariables",
           "AzureContainerInstanceCredentials", "DockerRegistryCredentials"]

_MODULE_OF = {
    "AciJobConfiguration": "providers.aci.config",
    "AciVariables": "providers.aci.config",
    "ACRManagedIdentity": "providers.aci.credentials",
    "AzureContainerInstanceCredentials": "providers.aci.credentials",
    "DockerRegistryCredentials": "providers.aci.credentials",
    "AciTemplateOnly": "providers.aci.template_only",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
