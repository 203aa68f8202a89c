"""The project's VPC networks, subnetworks and Serverless VPC Access connectors, as a job refers to them.

Only consulted when ``Faults.validate_network`` is on (realistic mode): a job's
``vpcAccess.connector`` and ``vpcAccess.networkInterfaces[].network/subnetwork`` must exist. The project
starts like a new one: the auto-mode ``default`` network with a ``default`` subnetwork in the region. Tests
add more: ``emu.networks.add_network("flows")``, ``add_subnetwork("flows", "flows-a")``,
``add_connector("flows-conn")``. Names may be short or full resource names, as Cloud Run accepts both.

Google's exact wording for a missing network object at job creation is not documented; the emulator answers
400 ``INVALID_ARGUMENT`` with a field violation naming the field and the missing resource.
"""

from __future__ import annotations

import threading
from typing import Any

Violations = list[tuple[str, str]]


class Networks:
    def __init__(self, project: str, region: str):
        self.project, self.region = project, region
        self.lock = threading.Lock()
        self.networks: set[str] = set()
        self.subnetworks: dict[str, str] = {}
        """Full subnetwork name -> full network name."""
        self.connectors: set[str] = set()
        self.add_network("default")
        self.add_subnetwork("default", "default")

    def network_name(self, ref: str) -> str:
        return ref if ref.startswith("projects/") else f"projects/{self.project}/global/networks/{ref}"

    def subnetwork_name(self, ref: str) -> str:
        prefix = f"projects/{self.project}/regions/{self.region}/subnetworks/"
        return ref if ref.startswith("projects/") else prefix + ref

    def connector_name(self, ref: str) -> str:
        prefix = f"projects/{self.project}/locations/{self.region}/connectors/"
        return ref if ref.startswith("projects/") else prefix + ref

    def add_network(self, name: str) -> str:
        with self.lock:
            full = self.network_name(name)
            self.networks.add(full)
            return full

    def add_subnetwork(self, network: str, name: str) -> str:
        with self.lock:
            if self.network_name(network) not in self.networks:
                raise KeyError(network)
            full = self.subnetwork_name(name)
            self.subnetworks[full] = self.network_name(network)
            return full

    def add_connector(self, name: str) -> str:
        with self.lock:
            full = self.connector_name(name)
            self.connectors.add(full)
            return full

    def violations(self, path: str, vpc_access: dict[str, Any]) -> Violations:
        """What in ``vpcAccess`` (at ``path``) names a network object the project does not have."""
        found: Violations = []
        with self.lock:
            connector = vpc_access.get("connector")
            if connector and self.connector_name(connector) not in self.connectors:
                found.append((f"{path}.connector", f"VPC connector {self.connector_name(connector)} does not exist, "
                                                   "or Cloud Run does not have permission to use it."))
            for i, nic in enumerate(vpc_access.get("networkInterfaces") or []):
                network, subnetwork = nic.get("network"), nic.get("subnetwork")
                if network and self.network_name(network) not in self.networks:
                    found.append((f"{path}.networkInterfaces[{i}].network",
                                  f"Network '{self.network_name(network)}' does not exist."))
                if subnetwork:
                    full = self.subnetwork_name(subnetwork)
                    owner = self.subnetworks.get(full)
                    if owner is None:
                        found.append((f"{path}.networkInterfaces[{i}].subnetwork",
                                      f"Subnetwork '{full}' does not exist."))
                    elif network and owner != self.network_name(network):
                        found.append((f"{path}.networkInterfaces[{i}].subnetwork",
                                      f"Subnetwork '{full}' belongs to network '{owner}', not to the "
                                      "interface's network."))
        return found
