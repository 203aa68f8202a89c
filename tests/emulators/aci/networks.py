"""The subscription's virtual networks and subnets, as a container group's ``subnetIds`` refer to them.

Only consulted when ``Faults.validate_network`` is on (realistic mode). A subnet must exist (else ARM's
linked-resource error, 400 ``InvalidResourceReference``, worded as ARM words a missing referenced resource),
be in the group's region (same error: "both resources are in the same region") and be delegated to
``Microsoft.ContainerInstance/containerGroups`` (else 400 ``SubnetMissingRequiredDelegation``, as reported by
Azure/dev-box-images#8). Tests add subnets: ``emu.networks.add_subnet("rg", "vnet", "aci")`` returns its id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from . import errors


@dataclass(frozen=True)
class Subnet:
    id: str
    location: str
    delegated: bool


class VirtualNetworks:
    def __init__(self, subscription: str):
        self.subscription = subscription
        self.lock = threading.Lock()
        self.subnets: dict[str, Subnet] = {}
        """By lower-cased id (ARM ids are case-insensitive)."""

    def add_subnet(self, resource_group: str, vnet: str, subnet: str, location: str = "eastus",
                   delegated: bool = True) -> str:
        subnet_id = (f"/subscriptions/{self.subscription}/resourceGroups/{resource_group}/providers/"
                     f"Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}")
        with self.lock:
            self.subnets[subnet_id.lower()] = Subnet(subnet_id, location, delegated)
        return subnet_id

    def check(self, group_id: str, group_name: str, location: str, subnet_ids: list[str]) -> None:
        with self.lock:
            for subnet_id in subnet_ids:
                subnet = self.subnets.get(subnet_id.lower())
                if subnet is None or subnet.location != location:
                    raise errors.bad_request(
                        "InvalidResourceReference",
                        f"Resource {subnet_id} referenced by resource {group_id} was not found. Please make sure "
                        "that the referenced resource exists, and that both resources are in the same region.")
                if not subnet.delegated:
                    raise errors.bad_request(
                        "SubnetMissingRequiredDelegation",
                        f"Subnet missing required delegation 'Microsoft.ContainerInstance' for container group "
                        f"'{group_name}'.")
