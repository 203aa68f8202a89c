"""Job configuration and job variables of ``azure-container-instance:push`` pools (Azure Container Instances).

The variables are prefect-azure's ``AzureContainerVariables`` (names, types,
defaults, required fields) and the job configuration has the fields of its
``AzureContainerJobConfiguration``, whose ``json_template()`` is that worker's
default base job template - including its ARM deployment template with one
``Microsoft.ContainerInstance/containerGroups`` resource - so a deployment written
for a Prefect Cloud ``azure-container-instance:push`` pool (or an
``azure-container-instance`` worker pool) moves over unchanged. ``arm_template``
is a job-configuration field in Prefect too, not a job variable. Fields both
models have are declared once (``_AciFields``). No Azure SDK and no prefect-azure
is imported.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from prefect.workers.base import BaseVariables
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.aci.credentials import (
    ACRManagedIdentity,
    AzureContainerInstanceCredentials,
    DockerRegistryCredentials,
)
from providers.jobconfig import JobConfiguration

DEFAULT_IMAGE = "prefecthq/prefect:3-latest"
DEFAULT_CPU = 1.0
DEFAULT_MEMORY_GB = 1.0
DEFAULT_ENTRYPOINT = "/opt/prefect/entrypoint.sh"


class _AciFields(BaseModel):
    """The fields the job configuration and the pool's variables share (declared once)."""

    image: str = Field(
        default=DEFAULT_IMAGE,
        description="The image to use for the Prefect container in the task.",
    )
    resource_group_name: str = Field(
        title="Azure Resource Group Name",
        description="The name of the Azure Resource Group in which to run Prefect ACI tasks.",
    )
    subscription_id: SecretStr = Field(
        title="Azure Subscription ID", description="The ID of the Azure subscription to create containers under."
    )
    identities: Optional[list[str]] = Field(
        default=None,
        title="Identities",
        description=(
            "A list of user-assigned identities to associate with the container group. The identities should be "
            "ARM resource IDs in the form: '/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
            "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{identityName}'."
        ),
    )
    entrypoint: Optional[str] = Field(
        default=DEFAULT_ENTRYPOINT,
        description=(
            "The entrypoint of the container you wish you run. This value defaults to the entrypoint used by "
            "Prefect images and should only be changed when using a custom image that is not based on an official "
            "Prefect image. Any commands set on deployments will be passed to the entrypoint as parameters."
        ),
    )
    image_registry: Optional[Union[ACRManagedIdentity, DockerRegistryCredentials]] = Field(
        default=None,
        title="Image Registry (Optional)",
        description=(
            "To use any private container registry with a username and password, choose DockerRegistry. "
            "To use a private Azure Container Registry with a managed identity, choose ACRManagedIdentity."
        ),
    )
    cpu: float = Field(
        default=DEFAULT_CPU,
        title="CPU",
        description=(
            "The number of virtual CPUs to assign to the task container. "
            f"If not provided, a default value of {DEFAULT_CPU} will be used."
        ),
    )
    gpu_count: Optional[int] = Field(
        default=None,
        title="GPU Count",
        description="The number of GPUs to assign to the task container. If not provided, no GPU will be used.",
    )
    gpu_sku: Optional[str] = Field(
        default=None,
        title="GPU SKU",
        description="The Azure GPU SKU to use. See the ACI documentation for the GPU SKUs available in each region.",
    )
    memory: float = Field(
        default=DEFAULT_MEMORY_GB,
        description=(
            "The amount of memory in gigabytes to provide to the ACI task. Valid amounts are specified in the "
            f"Azure documentation. If not provided, a default value of {DEFAULT_MEMORY_GB} will be used."
        ),
    )
    subnet_ids: Optional[list[str]] = Field(
        default=None, title="Subnet IDs", description="A list of subnet IDs to associate with the container group."
    )
    dns_servers: Optional[list[str]] = Field(
        default=None, title="DNS Servers", description="A list of DNS servers to associate with the container group."
    )
    stream_output: bool = Field(
        default=False,
        description="If `True`, logs will be streamed from the Prefect container to the local console.",
    )
    aci_credentials: AzureContainerInstanceCredentials = Field(
        default_factory=AzureContainerInstanceCredentials,
        description="The credentials to use to authenticate with Azure.",
    )
    task_start_timeout_seconds: int = Field(
        default=240,
        description="The amount of time to watch for the start of the ACI container before marking it as failed.",
    )
    task_watch_poll_interval: float = Field(
        default=5.0,
        description=(
            "The number of seconds to wait between Azure API calls while monitoring "
            "the state of an Azure Container Instances task."
        ),
    )


def _parameter(default: str, description: str) -> dict[str, Any]:
    return {"type": "string", "defaultValue": default, "metadata": {"description": description}}


def _arm_template() -> dict[str, Any]:
    """prefect-azure's default ARM template: one Linux container group, restartPolicy Never."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-08-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": _parameter("[resourceGroup().location]", "Location for all resources."),
            "container_group_name": _parameter(
                "[uniqueString(resourceGroup().id)]", "The name of the container group to create."
            ),
            "container_name": _parameter("[uniqueString(resourceGroup().id)]", "The name of the container to create."),
        },
        "resources": [
            {
                "type": "Microsoft.ContainerInstance/containerGroups",
                "apiVersion": "2022-09-01",
                "name": "[parameters('container_group_name')]",
                "location": "[parameters('location')]",
                "properties": {
                    "containers": [
                        {
                            "name": "[parameters('container_name')]",
                            "properties": {
                                "image": "{{ image }}",
                                "command": "{{ command }}",
                                "resources": {"requests": {"cpu": "{{ cpu }}", "memoryInGB": "{{ memory }}"}},
                                "environmentVariables": [],
                            },
                        }
                    ],
                    "osType": "Linux",
                    "restartPolicy": "Never",
                },
            }
        ],
    }


# _AciFields first: Prefect's base fields (command, env, labels, name) then come first in
# the template, as in prefect-azure's; BaseJobConfiguration's methods still win (BaseModel is last).
class AciJobConfiguration(_AciFields, JobConfiguration):
    """One flow run as an Azure container group (prefect-azure's AzureContainerJobConfiguration fields)."""

    arm_template: dict[str, Any] = Field(
        json_schema_extra={"template": _arm_template()},
        description="The ARM deployment template of the container group; the variables fill its placeholders.",
    )
    keep_container_group: bool = Field(
        default=False, description="Keep the completed container group on Azure."
    )


class AciVariables(_AciFields, BaseVariables):
    """Job variables of an azure-container-instance:push work pool (prefect-azure's AzureContainerVariables)."""

    keep_container_group: bool = Field(
        default=False,
        title="Keep Container Group After Completion",
        description="Keep the completed container group on Azure.",
    )


class AciSettings(BaseModel):
    """Dispatcher-side settings of the ACI provider (``providers: {aci: {...}}``), not per deployment."""

    model_config = ConfigDict(extra="forbid")

    credentials: Optional[AzureContainerInstanceCredentials] = Field(
        default=None,
        description="Operator credentials for prefect:managed pools and configurations whose aci_credentials block "
        "is empty. None (and an empty block): DefaultAzureCredential (managed identity, environment, CLI).",
    )
    subscription_id: Optional[str] = Field(default=None, description="Subscription for configurations that name none.")
    resource_group_name: Optional[str] = Field(
        default=None, description="Resource group for configurations that name none."
    )
    location: Optional[str] = Field(
        default=None,
        description="Region of the container groups. None: the resource group's own location (Prefect's template "
        "default, [resourceGroup().location]), read once per resource group.",
    )
    arm_endpoint: str = Field(
        default="https://management.azure.com", description="Azure Resource Manager endpoint (sovereign clouds, emulators)."
    )
    allow_http: bool = Field(
        default=False,
        description="Send the bearer token to an http:// arm_endpoint (an emulator); never for real Azure.",
    )
    static_bearer_token: Optional[SecretStr] = Field(
        default=None,
        description="Emulators only: send this bearer token instead of asking Azure AD (requires allow_http).",
    )
    max_cpu: float = Field(default=4.0, gt=0, description="Largest vCPU request of one group (the region's maximum).")
    max_memory_gb: float = Field(default=16.0, gt=0, description="Largest memory request of one group in GB.")
    gpu_skus: list[str] = Field(
        default_factory=lambda: ["K80", "P100", "V100"], description="GPU SKUs the region offers (gpu_sku values)."
    )
    create_quota_per_5min: int = Field(default=100, ge=1, description="Container group creates per 5 min (ACI quota).")
    create_quota_per_hour: int = Field(default=300, ge=1, description="Container group creates per hour (ACI quota).")
    delete_quota_per_5min: int = Field(default=100, ge=1, description="Container group deletes per 5 min (ACI quota).")
    delete_quota_per_hour: int = Field(default=300, ge=1, description="Container group deletes per hour (ACI quota).")
    reads_per_s: float = Field(
        default=5.0,
        gt=0,
        description="ARM reads per second per subscription the watcher may spend (ARM allows 25/s per principal; "
        "the rest is left to deletes, logs and other tools).",
    )
    read_burst: float = Field(default=50.0, ge=1, description="Reads that may go at once after a quiet period.")
    refresh_after_s: float = Field(
        default=15.0, ge=0, description="A running group is read again (GET) at most this often; List covers the rest."
    )
    list_interval_s: float = Field(
        default=30.0,
        ge=0,
        description="A resource group is listed at most this often (List costs one read per 100 groups but about "
        "1 ms of CPU per group to deserialise; GETs carry the states anyway).",
    )
    log_lines_on_crash: int = Field(default=20, ge=0, description="Most container log lines shown for a crash.")
    orphan_sweep_interval_s: float = Field(
        default=300.0, gt=0, description="How often housekeeping lists known resource groups for groups left behind."
    )
    orphan_grace_s: float = Field(
        default=3600.0,
        ge=0,
        description="A finished group of ours that nobody released is deleted this long after it finished "
        "(longer than any dispatcher outage during which its run still needs recording).",
    )
