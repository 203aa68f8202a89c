"""Every check ACI would make that can be made before calling it (pure).

A bad value raises InvalidJobConfiguration naming the job variable, the value and what
is allowed, so the run ends ``InvalidJobConfiguration`` without an ARM call. Sizes: ACI
takes cpu in steps of 0.01 vCPU and memory in steps of 0.1 GB, up to the region's
per-group maximum (``providers.aci.max_cpu`` / ``max_memory_gb``, 4 vCPU / 16 GB in most
regions for Linux Standard groups). Names, ids and GPU values follow ACI's documented rules.
"""

from __future__ import annotations

import ipaddress
import re
import shlex

from providers.aci.config import AciJobConfiguration, AciSettings
from providers.aci.credentials import ACRManagedIdentity, DockerRegistryCredentials
from providers.base import ResourceRequest
from providers.errors import InvalidJobConfiguration

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
SUBSCRIPTION_ID = re.compile(f"^{GUID}$")
RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
SUBNET_ID = re.compile(rf"^/subscriptions/{GUID}/resourceGroups/[-\w._()]+/providers/Microsoft\.Network/"
                       r"virtualNetworks/[-\w._]+/subnets/[-\w._]+$", re.IGNORECASE)
IDENTITY_ID = re.compile(rf"^/subscriptions/{GUID}/resourceGroups/[-\w._()]+/providers/"
                         r"Microsoft\.ManagedIdentity/userAssignedIdentities/[-\w._]+$", re.IGNORECASE)
ENV_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_]*[A-Za-z0-9])?$")
GPU_COUNTS = (1, 2, 4)
CPU_STEP, MEMORY_STEP = 0.01, 0.1
HIDDEN = "<hidden>"


def _on_step(value: float, step: float) -> bool:
    return abs(round(value / step) * step - value) < 1e-9


def subscription_of(cfg: AciJobConfiguration, settings: AciSettings) -> str:
    value = cfg.subscription_id.get_secret_value() if cfg.subscription_id else ""
    return value.strip() or (settings.subscription_id or "")


def resource_group_of(cfg: AciJobConfiguration, settings: AciSettings) -> str:
    return (cfg.resource_group_name or "").strip() or (settings.resource_group_name or "")


def resources(cfg: AciJobConfiguration) -> ResourceRequest:
    return ResourceRequest(vcpu=cfg.cpu, memory_mib=int(round(cfg.memory * 1024)),
                           fields={"vcpu": "cpu", "memory_mib": "memory"})


def validate(cfg: AciJobConfiguration, settings: AciSettings) -> None:
    _ids(cfg, settings)
    _size(cfg, settings)
    _gpu(cfg, settings)
    _network(cfg)
    _identities(cfg)
    _container(cfg)


def _ids(cfg: AciJobConfiguration, settings: AciSettings) -> None:
    if not SUBSCRIPTION_ID.match(subscription_of(cfg, settings)):
        raise InvalidJobConfiguration("subscription_id", HIDDEN, "a subscription id: a GUID such as "
                                      "00000000-0000-0000-0000-000000000000")
    group = resource_group_of(cfg, settings)
    if not RESOURCE_GROUP.match(group) or group.endswith("."):
        raise InvalidJobConfiguration("resource_group_name", group, "1-90 letters, digits, '_', '-', '.', '(' or ')', "
                                      "not ending in '.'")


def _size(cfg: AciJobConfiguration, settings: AciSettings) -> None:
    if cfg.cpu <= 0 or not _on_step(cfg.cpu, CPU_STEP) or cfg.cpu > settings.max_cpu:
        raise InvalidJobConfiguration("cpu", cfg.cpu, f"ACI allows 0.01 to {settings.max_cpu:g} vCPU per container "
                                      "group, in steps of 0.01")
    if cfg.memory <= 0 or not _on_step(cfg.memory, MEMORY_STEP) or cfg.memory > settings.max_memory_gb:
        raise InvalidJobConfiguration("memory", cfg.memory, f"ACI allows 0.1 to {settings.max_memory_gb:g} GB per "
                                      "container group, in steps of 0.1")


def _gpu(cfg: AciJobConfiguration, settings: AciSettings) -> None:
    if cfg.gpu_count is None and cfg.gpu_sku is None:
        return
    if cfg.gpu_count is None or cfg.gpu_count == 0:
        raise InvalidJobConfiguration("gpu_count", cfg.gpu_count, f"one of {GPU_COUNTS} when gpu_sku is set")
    if cfg.gpu_count not in GPU_COUNTS:
        raise InvalidJobConfiguration("gpu_count", cfg.gpu_count, f"one of {GPU_COUNTS}")
    if cfg.gpu_sku not in settings.gpu_skus:
        raise InvalidJobConfiguration("gpu_sku", cfg.gpu_sku, f"one of {settings.gpu_skus} (the region's GPU SKUs; "
                                      "ACI retired its GPU SKUs in most regions in 2025)")


def _network(cfg: AciJobConfiguration) -> None:
    for index, subnet in enumerate(cfg.subnet_ids or []):
        if not SUBNET_ID.match(subnet):
            raise InvalidJobConfiguration(f"subnet_ids[{index}]", subnet, "a subnet resource id: /subscriptions/{id}/"
                                          "resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}/"
                                          "subnets/{subnet}")
    for index, server in enumerate(cfg.dns_servers or []):
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidJobConfiguration(f"dns_servers[{index}]", server, "an IP address") from None
    if cfg.dns_servers and not cfg.subnet_ids:
        raise InvalidJobConfiguration("dns_servers", cfg.dns_servers, "only with subnet_ids (ACI applies DNS "
                                      "servers to groups in a virtual network)")


def _identities(cfg: AciJobConfiguration) -> None:
    for index, identity in enumerate(cfg.identities or []):
        if not IDENTITY_ID.match(identity):
            raise InvalidJobConfiguration(f"identities[{index}]", identity, "a user-assigned identity resource id: "
                                          "/subscriptions/{id}/resourceGroups/{rg}/providers/"
                                          "Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
    registry = cfg.image_registry
    if isinstance(registry, ACRManagedIdentity) and not IDENTITY_ID.match(registry.identity):
        raise InvalidJobConfiguration("image_registry.identity", registry.identity,
                                      "a user-assigned identity resource id")
    if isinstance(registry, (ACRManagedIdentity, DockerRegistryCredentials)) and not registry.registry_url.strip():
        raise InvalidJobConfiguration("image_registry.registry_url", registry.registry_url, "a registry host name")


def _container(cfg: AciJobConfiguration) -> None:
    if not (cfg.image or "").strip():
        raise InvalidJobConfiguration("image", cfg.image, "an image reference")
    for name in cfg.env:
        if not (1 <= len(name) <= 63) or not ENV_NAME.match(name):
            raise InvalidJobConfiguration(f"env.{name}", HIDDEN, "names of 1-63 letters, digits or underscores, "
                                          "not starting or ending with an underscore (ACI's rule)")
    try:
        command_line(cfg)
    except ValueError as exc:
        raise InvalidJobConfiguration("command", cfg.command, f"a command line shlex can split ({exc})") from None
    if cfg.task_start_timeout_seconds <= 0:
        raise InvalidJobConfiguration("task_start_timeout_seconds", cfg.task_start_timeout_seconds, "more than 0")


def command_line(cfg: AciJobConfiguration) -> list[str]:
    """The container's command: the entrypoint (if any) followed by the run's command, as prefect-azure does."""
    command = shlex.split(cfg.command) if cfg.command else []
    entrypoint = shlex.split(cfg.entrypoint) if cfg.entrypoint else []
    return [*entrypoint, *command]
