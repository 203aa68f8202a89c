"""ACI's quotas and capacity for a create, and the usage report (``Location_ListUsage``).

In the order a create meets them: the create rate (100 per 5 minutes and
300 per hour, as two kit token buckets refused whole), regional capacity
(409 ``ServiceUnavailable``), then the standing quotas per region and
subscription: container groups, standard cores, GPU cores per SKU (400
``ContainerGroupQuotaReached``).
"""

from __future__ import annotations

from typing import Any

from . import errors
from .faults import AciFaultDice
from .groups import ContainerGroup
from .rules import GroupSize

WRITE_ACTION = "Microsoft.ContainerInstance/containerGroups/write"
DELETE_ACTION = "Microsoft.ContainerInstance/containerGroups/delete"


class Quotas:
    def __init__(self, dice: AciFaultDice, subscription: str):
        self._dice, self._subscription = dice, subscription

    def admit_create(self, location: str, size: GroupSize, groups: list[ContainerGroup]) -> None:
        faults = self._dice.faults
        self._admit_rate("create", faults.create_quota, WRITE_ACTION)
        if self._dice.capacity_failure():
            raise errors.capacity_unavailable(location, size.cpu, size.memory_gb, "Linux")
        here = [g for g in groups if g.location == location]
        if faults.max_groups_per_region is not None and len(here) + 1 > faults.max_groups_per_region:
            raise errors.quota_reached("ContainerGroups", location, faults.max_groups_per_region, len(here), 1)
        cores = sum(g.cpu for g in here)
        if faults.max_cores_per_region is not None and cores + size.cpu > faults.max_cores_per_region:
            raise errors.quota_reached("StandardCores", location, faults.max_cores_per_region, cores, size.cpu)
        if size.gpu_sku is not None:
            used = sum(g.gpu_count for g in here if _gpu_sku(g) == size.gpu_sku)
            limit = faults.gpu_quota.get(size.gpu_sku, 0)
            if used + size.gpu_count > limit:
                raise errors.quota_reached(f"{size.gpu_sku}Cores", location, limit, used, size.gpu_count)

    def admit_delete(self) -> None:
        self._admit_rate("delete", self._dice.faults.delete_quota, DELETE_ACTION)

    def _admit_rate(self, kind: str, windows: dict, action: str) -> None:
        if not windows:
            return
        window_of = {f"aci:{kind}:{window}": window for window in windows}
        buckets = {key: windows[window] for key, window in window_of.items()}
        refused = self._dice.admit_all(buckets)
        if refused is not None:
            limit = buckets[refused]
            raise errors.action_throttled(action, int(limit.burst), window_of[refused],
                                          self._dice.wait_s(refused, limit))

    def usages(self, location: str, groups: list[ContainerGroup]) -> list[dict[str, Any]]:
        faults = self._dice.faults
        here = [g for g in groups if g.location == location]
        rows = [("ContainerGroups", "Container Groups", len(here), faults.max_groups_per_region or 100),
                ("StandardCores", "Standard Cores", sum(g.cpu for g in here), faults.max_cores_per_region or 100)]
        return [{"id": f"/subscriptions/{self._subscription}/providers/Microsoft.ContainerInstance/locations/"
                       f"{location}/usages/{name}", "unit": "Count", "currentValue": int(round(used)),
                 "limit": int(limit), "name": {"value": name, "localizedValue": label}}
                for name, label, used, limit in rows]


def _gpu_sku(group: ContainerGroup) -> str | None:
    for spec in group.body["properties"]["containers"]:
        gpu = spec["properties"]["resources"]["requests"].get("gpu")
        if gpu:
            return gpu["sku"]
    return None
