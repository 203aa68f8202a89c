"""The container group of one attempt (pure): job configuration + request -> SDK model.

A direct container group, no ARM template deployment (Prefect's worker keeps one
deployment record per run, capped at 800 per resource group): Linux, restartPolicy
Never, one container running the entrypoint plus the run's command. Env values that may
be secrets (a secret-looking name, or a value the dispatcher knows to be secret) go as
``secureValue``, which ACI never shows again. ``arm_template`` is not rendered: its
variables (image, command, cpu, memory) are read from the configuration directly.
"""

from __future__ import annotations

from azure.mgmt.containerinstance import models

from providers.aci import naming
from providers.aci.config import AciJobConfiguration
from providers.aci.credentials import ACRManagedIdentity, DockerRegistryCredentials
from providers.aci.validation import command_line
from providers.base import SubmitRequest
from providers.secrets import name_looks_secret


def location_from_template(cfg: AciJobConfiguration) -> str | None:
    """The template's location when it is a literal (Prefect's default is the expression [resourceGroup().location])."""
    parameters = (cfg.arm_template or {}).get("parameters") or {}
    value = (parameters.get("location") or {}).get("defaultValue")
    if isinstance(value, str) and value.strip() and not value.strip().startswith("["):
        return value.strip()
    return None


def environment(cfg: AciJobConfiguration, secret_values: set[str]) -> list[models.EnvironmentVariable]:
    out = []
    for name, value in cfg.env.items():
        if value is None:
            continue
        text = str(value)
        if name_looks_secret(name) or text in secret_values:
            out.append(models.EnvironmentVariable(name=name, secure_value=text))
        else:
            out.append(models.EnvironmentVariable(name=name, value=text))
    return out


def _resources(cfg: AciJobConfiguration) -> models.ResourceRequirements:
    gpu = None
    if cfg.gpu_count and cfg.gpu_sku:
        gpu = models.GpuResource(count=cfg.gpu_count, sku=cfg.gpu_sku)
    return models.ResourceRequirements(
        requests=models.ResourceRequests(cpu=cfg.cpu, memory_in_gb=cfg.memory, gpu=gpu))


def _registry(cfg: AciJobConfiguration) -> list[models.ImageRegistryCredential] | None:
    registry = cfg.image_registry
    if isinstance(registry, DockerRegistryCredentials):
        return [models.ImageRegistryCredential(server=registry.registry_url, username=registry.username,
                                               password=registry.password.get_secret_value())]
    if isinstance(registry, ACRManagedIdentity):
        return [models.ImageRegistryCredential(server=registry.registry_url, identity=registry.identity)]
    return None


def _identity(cfg: AciJobConfiguration) -> models.ContainerGroupIdentity | None:
    ids = list(cfg.identities or [])
    if isinstance(cfg.image_registry, ACRManagedIdentity) and cfg.image_registry.identity not in ids:
        ids.append(cfg.image_registry.identity)
    if not ids:
        return None
    return models.ContainerGroupIdentity(
        type="UserAssigned", user_assigned_identities={i: models.UserAssignedIdentities() for i in ids})


def build_container_group(cfg: AciJobConfiguration, request: SubmitRequest, location: str) -> models.ContainerGroup:
    container = models.Container(
        name=naming.CONTAINER_NAME, image=cfg.image, command=command_line(cfg) or None,
        environment_variables=environment(cfg, set(request.secrets.revealed())), resources=_resources(cfg))
    subnets = [models.ContainerGroupSubnetId(id=s) for s in cfg.subnet_ids or []] or None
    dns = models.DnsConfiguration(name_servers=list(cfg.dns_servers)) if cfg.dns_servers else None
    return models.ContainerGroup(
        location=location,
        tags=naming.tags(request.flow_run_id, request.attempt_id, request.workspace, request.pool,
                         cfg.keep_container_group),
        identity=_identity(cfg),
        containers=[container],
        os_type="Linux",
        restart_policy="Never",
        image_registry_credentials=_registry(cfg),
        subnet_ids=subnets,
        dns_config=dns,
    )
