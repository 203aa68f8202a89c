"""The checks ACI makes on a container group beyond the SDK model: names, sizes, enums, ids.

Runs after the model walk (``schema.py``), so types are right; raises the
``ArmError`` ACI answers. Naming rules come from the ACI troubleshooting
docs; sizes are the common regional defaults (4 vCPU / 16 GB per group),
and a group above them gets the 409 capacity answer ACI gives for an
unavailable size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from . import errors

DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_]*[A-Za-z0-9])?$")
GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SUBNET_ID = re.compile(rf"^/subscriptions/{GUID}/resourceGroups/[-\w._()]+/providers/Microsoft\.Network/"
                       r"virtualNetworks/[-\w._]+/subnets/[-\w._]+$", re.IGNORECASE)
IDENTITY_ID = re.compile(rf"^/subscriptions/{GUID}/resourceGroups/[-\w._()]+/providers/"
                         r"Microsoft\.ManagedIdentity/userAssignedIdentities/[-\w._]+$", re.IGNORECASE)
RESTART_POLICIES = ("Always", "OnFailure", "Never")
OS_TYPES = ("Windows", "Linux")
SKUS = ("Standard", "Dedicated", "Confidential")
PRIORITIES = ("Regular", "Spot")
GPU_SKUS = ("K80", "P100", "V100")
GPU_COUNTS = (1, 2, 4)
IDENTITY_TYPES = ("SystemAssigned", "UserAssigned", "SystemAssigned, UserAssigned", "None")
MAX_CONTAINERS = 60


@dataclass(frozen=True)
class RegionLimits:
    """The largest group a region places (beyond it: 409 capacity)."""

    max_cpu: float = 4.0
    max_memory_gb: float = 16.0


@dataclass(frozen=True)
class GroupSize:
    cpu: float
    memory_gb: float
    gpu_sku: str | None = None
    gpu_count: int = 0


def check_group_name(name: str) -> None:
    if not (1 <= len(name) <= 63) or not DNS_NAME.match(name) or "--" in name:
        raise errors.bad_request(
            "InvalidContainerGroupName",
            f"The container group name '{name}' is invalid. The container group name must contain no more than 63 "
            "characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').")


def check_location(body: dict[str, Any], locations: tuple[str, ...]) -> str:
    location = body.get("location")
    if not location:
        raise errors.bad_request("LocationRequired", "The location property is required for this definition.")
    normalized = str(location).replace(" ", "").lower()
    if normalized not in locations:
        raise errors.bad_request(
            "LocationNotAvailableForResourceType",
            f"The provided location '{location}' is not available for resource type "
            f"'Microsoft.ContainerInstance/containerGroups'. List of available regions for the resource type is "
            f"'{','.join(locations)}'.")
    return normalized


def check_group(name: str, body: dict[str, Any], location: str, limits: RegionLimits) -> GroupSize:
    """Every ACI rule on a create/update body; the group's total size for quotas and capacity."""
    props = body["properties"]
    _check_enums(name, props)
    containers = props["containers"]
    if not 1 <= len(containers) <= MAX_CONTAINERS:
        raise errors.bad_request("InvalidContainerCount", f"The number of containers in container group '{name}' "
                                 f"must be between 1 and {MAX_CONTAINERS}.")
    seen: set[str] = set()
    for container in containers:
        _check_container(name, container, seen)
    _check_subnets(props.get("subnetIds") or [])
    _check_identity(body.get("identity"))
    size = _group_size(name, containers)
    if size.cpu > limits.max_cpu or size.memory_gb > limits.max_memory_gb:
        raise errors.capacity_unavailable(location, size.cpu, size.memory_gb, props["osType"])
    return size


def _check_enums(name: str, props: dict[str, Any]) -> None:
    if props.get("osType") not in OS_TYPES:
        raise errors.bad_request("InvalidOsType", f"The 'osType' for container group '{name}' is invalid. The value "
                                                  f"must be one of '{','.join(OS_TYPES)}'.")
    for key, allowed, type_name in (("restartPolicy", RESTART_POLICIES, "ContainerGroupRestartPolicy"),
                                    ("sku", SKUS, "ContainerGroupSku"),
                                    ("priority", PRIORITIES, "ContainerGroupPriority")):
        if props.get(key) is not None and props[key] not in allowed:
            raise errors.invalid_request_content(f"Error converting value \"{props[key]}\" to type '{type_name}'. "
                                                 f"Path 'properties.{key}'")


def _check_container(group: str, container: dict[str, Any], seen: set[str]) -> None:
    cname, props = container["name"], container["properties"]
    if not (1 <= len(cname) <= 63) or not DNS_NAME.match(cname):
        raise errors.bad_request(
            "InvalidContainerName",
            f"The container name '{cname}' in container group '{group}' is invalid. The container name must contain "
            "no more than 63 characters and must match the regex '[a-z0-9]([-a-z0-9]*[a-z0-9])?' (e.g. 'my-name').")
    if cname in seen:
        raise errors.bad_request("DuplicateContainerName",
                                 f"Duplicate container name '{cname}' in container group '{group}'.")
    seen.add(cname)
    if not str(props.get("image") or "").strip():
        raise errors.bad_request("InvalidImage", f"The image of container '{cname}' in container group '{group}' "
                                                 "must not be empty.")
    _check_resources(group, cname, props.get("resources") or {})
    for variable in props.get("environmentVariables") or []:
        if variable.get("name") is not None:  # a missing name is the model's (required) complaint
            _check_env_name(group, cname, str(variable["name"]))
    for port in props.get("ports") or []:
        if port.get("port") is not None and not 1 <= int(port["port"]) <= 65535:
            raise errors.bad_request("InvalidContainerPort", f"The port '{port['port']}' of container '{cname}' in "
                                                             f"container group '{group}' must be between 1 and 65535.")


def _check_resources(group: str, cname: str, resources: dict[str, Any]) -> None:
    requests = resources.get("requests") or {}
    if requests.get("cpu") is None or requests.get("memoryInGB") is None:
        raise errors.bad_request(
            "ResourceRequestsNotSpecified",
            f"The resource requests are not specified in container '{cname}' of contain group '{group}'. Both memory "
            "and CPU requests are required since API version '2017-07-01-preview'.")
    cpu, memory = float(requests["cpu"]), float(requests["memoryInGB"])
    if cpu <= 0 or not _on_step(cpu, 0.01):
        raise errors.bad_request("InvalidCpuRequest", f"The 'Cpu' request '{requests['cpu']}' in container "
                                 f"'{cname}' of container group '{group}' must be positive, in steps of 0.01.")
    if memory <= 0 or not _on_step(memory, 0.1):
        raise errors.bad_request("InvalidMemoryRequest", f"The 'MemoryInGB' request '{requests['memoryInGB']}' in "
                                 f"container '{cname}' of container group '{group}' must be positive, in steps of 0.1.")
    _check_gpu(group, cname, requests.get("gpu"))
    limits = resources.get("limits") or {}
    for key, label, requested in (("cpu", "Cpu", cpu), ("memoryInGB", "MemoryInGB", memory)):
        if limits.get(key) is not None and float(limits[key]) > requested:
            raise errors.bad_request(
                "ContainerLimitGreaterThanContainerGroupTotalRequest",
                f"The '{label}' limit '{limits[key]}' in container '{cname}' is greater than the total request "
                f"'{requests[key]}' of container group '{group}'.")


def _check_gpu(group: str, cname: str, gpu: dict[str, Any] | None) -> None:
    if gpu is None:
        return
    if gpu.get("sku") not in GPU_SKUS:
        raise errors.invalid_request_content(f"Error converting value \"{gpu.get('sku')}\" to type 'GpuSku'. Path "
                                             "'properties.containers.properties.resources.requests.gpu.sku'")
    if int(gpu.get("count") or 0) not in GPU_COUNTS:
        raise errors.bad_request("InvalidGpuCount", f"The GPU count '{gpu['count']}' in container '{cname}' of "
                                 f"container group '{group}' must be one of {', '.join(map(str, GPU_COUNTS))}.")


def _check_env_name(group: str, cname: str, name: str) -> None:
    if not (1 <= len(name) <= 63) or not ENV_NAME.match(name):
        raise errors.bad_request(
            "InvalidEnvironmentVariable",
            f"The environment variable name '{name}' in container '{cname}' of container group '{group}' is invalid. "
            "It must be 1 to 63 letters, digits or underscores, and must not start or end with an underscore.")


def _check_subnets(subnets: list[dict[str, Any]]) -> None:
    for subnet in subnets:
        if subnet.get("id") is not None and not SUBNET_ID.match(str(subnet["id"])):
            raise errors.bad_request("InvalidSubnetId", f"The subnet id '{subnet['id']}' is invalid: expected "
                                     "'/subscriptions/{id}/resourceGroups/{rg}/providers/Microsoft.Network/"
                                     "virtualNetworks/{vnet}/subnets/{subnet}'.")


def _check_identity(identity: dict[str, Any] | None) -> None:
    if identity is None:
        return
    kind = identity.get("type")
    if kind not in IDENTITY_TYPES:
        raise errors.invalid_request_content(f"Error converting value \"{kind}\" to type 'ResourceIdentityType'. "
                                             "Path 'identity.type'")
    assigned = identity.get("userAssignedIdentities") or {}
    if ("UserAssigned" in kind) != bool(assigned):
        raise errors.bad_request("InvalidIdentity", "userAssignedIdentities must be given exactly when the identity "
                                                    f"type includes 'UserAssigned' (type '{kind}').")
    for resource_id in assigned:
        if not IDENTITY_ID.match(resource_id):
            raise errors.bad_request("InvalidIdentityResourceId", f"The user assigned identity '{resource_id}' is "
                                     "not a valid Microsoft.ManagedIdentity/userAssignedIdentities resource id.")


def _group_size(name: str, containers: list[dict[str, Any]]) -> GroupSize:
    cpu = sum(float(c["properties"]["resources"]["requests"]["cpu"]) for c in containers)
    memory = sum(float(c["properties"]["resources"]["requests"]["memoryInGB"]) for c in containers)
    gpus = [c["properties"]["resources"]["requests"].get("gpu") for c in containers]
    gpus = [g for g in gpus if g]
    if len({g["sku"] for g in gpus}) > 1:
        raise errors.bad_request("InvalidGpuSku", f"All containers of container group '{name}' must use one GPU SKU.")
    return GroupSize(round(cpu, 2), round(memory, 1), gpus[0]["sku"] if gpus else None,
                     sum(int(g.get("count") or 0) for g in gpus))


def _on_step(value: float, step: float) -> bool:
    return abs(round(value / step) * step - value) < 1e-9
