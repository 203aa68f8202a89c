"""Azure Container Instances: Prefect's azure-container-instance:push pools.

One container group per attempt (``provider.py``); see README.md in this package.
Exports are loaded lazily, as for every cloud package, so reading the registry
imports nothing a cloud does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.lazy import lazy_exports

if TYPE_CHECKING:
    from providers.aci.config import AciJobConfiguration, AciSettings, AciVariables
    from providers.aci.credentials import (
        ACRManagedIdentity,
        AzureContainerInstanceCredentials,
        DockerRegistryCredentials,
    )
    from providers.aci.provider import AciProvider

__all__ = ["ACRManagedIdentity", "AciJobConfiguration", "AciProvider", "AciSettings", "AciVariables",
           "AzureContainerInstanceCredentials", "DockerRegistryCredentials"]

_MODULE_OF = {
    "AciJobConfiguration": "providers.aci.config",
    "AciVariables": "providers.aci.config",
    "AciSettings": "providers.aci.config",
    "ACRManagedIdentity": "providers.aci.credentials",
    "AzureContainerInstanceCredentials": "providers.aci.credentials",
    "DockerRegistryCredentials": "providers.aci.credentials",
    "AciProvider": "providers.aci.provider",
}


__getattr__ = lazy_exports(__name__, _MODULE_OF)
