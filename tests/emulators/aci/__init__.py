"""Wire-protocol emulator of Azure Resource Manager for Azure Container Instances (container groups), plus the
ARM template deployments Prefect's own ACI worker makes.

The real azure-mgmt clients talk to it over plain http::

    from tests.emulators.aci import AciEmulator, Faults, aio_aci_client

    with AciEmulator(execute=True, faults=Faults(seed=1)) as emu:
        async with aio_aci_client(emu.endpoint_url, emu.subscription_id) as aci:
            poller = await aci.container_groups.begin_create_or_update("rg", "run-1", group)
"""

from .faults import ACI_CREATE_QUOTA, ACI_DELETE_QUOTA, ARM_SUBSCRIPTION_LIMITS, Faults
from .groups import Container, ContainerGroup
from .lifecycle import Timings
from .rules import RegionLimits
from .sdk import (
    AsyncStaticTokenCredential,
    InsecureARMAuth,
    InsecureAsyncARMAuth,
    StaticTokenCredential,
    aio_aci_client,
    client_kwargs,
)
from .server import DEFAULT_SUBSCRIPTION, AciEmulator

__all__ = [
    "ACI_CREATE_QUOTA", "ACI_DELETE_QUOTA", "ARM_SUBSCRIPTION_LIMITS", "DEFAULT_SUBSCRIPTION", "AciEmulator",
    "AsyncStaticTokenCredential", "Container", "ContainerGroup", "Faults", "InsecureARMAuth", "InsecureAsyncARMAuth",
    "RegionLimits", "StaticTokenCredential", "Timings", "aio_aci_client", "client_kwargs",
]
