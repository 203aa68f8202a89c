"""Base job template of ``azure-container-instance:push`` pools (Azure Container Instances).

The variables are prefect-azure's ``AzureContainerVariables`` (names, types,
defaults, required fields), and the job configuration is the one that worker's
default base job template produces - including its ARM deployment template with
one ``Microsoft.ContainerInstance/containerGroups`` resource - so a deployment
written for a Prefect Cloud ``azure-container-instance:push`` pool (or an
``azure-container-instance`` worker pool) moves over unchanged. ``arm_template`` is
a job-configuration field in Prefect too, not a job variable.

prefect-azure and prefect-docker are not imported: the blocks referenced
(``azure-container-instance-credentials``, ``docker-registry-credentials``) are
described by plain models whose schemas carry ``block_type_slug``.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from prefect.workers.base import BaseVariables
from pydantic import BaseModel, Field, SecretStr

from providers.blocks import block_schema
from providers.templates.cloud_run import DEFAULT_IMAGE

DEFAULT_CPU = 1.0
DEFAULT_MEMORY_GB = 1.0
DEFAULT_ENTRYPOINT = "/opt/prefect/entrypoint.sh"

_ALL_OR_NONE = (
    " If none of client_id, tenant_id and client_secret are provided, DefaultAzureCredential is used; "
    "otherwise all three are needed (ClientSecretCredential)."
)


class AzureContainerInstanceCredentials(BaseModel):
    """Fields of Prefect's ``azure-container-instance-credentials`` block (a service principal)."""

    model_config = block_schema("azure-container-instance-credentials", "client_secret")

    client_id: Optional[str] = Field(
        default=None, title="Client ID", description="The service principal client ID." + _ALL_OR_NONE
    )
    tenant_id: Optional[str] = Field(
        default=None, title="Tenant ID", description="The service principal tenant ID." + _ALL_OR_NONE
    )
    client_secret: Optional[SecretStr] = Field(
        default=None, title="Client Secret", description="The service principal client secret." + _ALL_OR_NONE
    )
    credential_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        title="Additional Credential Keyword Arguments",
        description="Additional keyword arguments to pass to `ClientSecretCredential` or `DefaultAzureCredential`.",
    )


class DockerRegistryCredentials(BaseModel):
    """Fields of Prefect's ``docker-registry-credentials`` block (prefect-docker)."""

    model_config = block_schema("docker-registry-credentials", "password")

    username: str = Field(title="Username", description="The username to log into the registry with.")
    password: SecretStr = Field(title="Password", description="The password to log into the registry with.")
    registry_url: str = Field(
        title="Registry Url",
        description='The URL to the registry. Generally, "http" or "https" can be omitted.',
        examples=["index.docker.io"],
    )
    reauth: bool = Field(
        default=True, title="Reauth", description="Whether or not to reauthenticate on each interaction."
    )


class ACRManagedIdentity(BaseModel):
    """Pull from an Azure Container Registry with a user-assigned managed identity of the container group."""

    registry_url: str = Field(
        title="Registry URL",
        description=(
            "The URL to the registry, such as myregistry.azurecr.io. Generally, 'http' or 'https' can be omitted."
        ),
    )
    identity: str = Field(
        title="Identity", description="The user-assigned Azure managed identity for the private registry."
    )


class AciVariables(BaseVariables):
    """Job variables of an azure-container-instance:push work pool (prefect-azure's AzureContainerVariables)."""

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
    aci_credentials: AzureContainerInstanceCredentials = Field(
        default_factory=AzureContainerInstanceCredentials,
        description="The credentials to use to authenticate with Azure.",
    )
    stream_output: bool = Field(
        default=False,
        description="If `True`, logs will be streamed from the Prefect container to the local console.",
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
    keep_container_group: bool = Field(
        default=False,
        title="Keep Container Group After Completion",
        description="Keep the completed container group on Azure.",
    )


def _arm_template() -> dict[str, Any]:
    """prefect-azure's default ARM template: one Linux container group, restartPolicy Never."""

    def parameter(default: str, description: str) -> dict[str, Any]:
        return {"type": "string", "defaultValue": default, "metadata": {"description": description}}

    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-08-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": parameter("[resourceGroup().location]", "Location for all resources."),
            "container_group_name": parameter(
                "[uniqueString(resourceGroup().id)]", "The name of the container group to create."
            ),
            "container_name": parameter("[uniqueString(resourceGroup().id)]", "The name of the container to create."),
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


def _job_configuration() -> dict[str, Any]:
    """prefect-azure's AzureContainerJobConfiguration.json_template()."""
    configuration: dict[str, Any] = {
        name: "{{ " + name + " }}"
        for name in (
            "command", "env", "labels", "name", "image", "resource_group_name", "subscription_id", "identities",
            "entrypoint", "image_registry", "cpu", "gpu_count", "gpu_sku", "memory", "subnet_ids", "dns_servers",
            "stream_output", "aci_credentials", "task_start_timeout_seconds", "task_watch_poll_interval",
        )
    }  # fmt: skip
    configuration["arm_template"] = _arm_template()
    configuration["keep_container_group"] = "{{ keep_container_group }}"
    return configuration


def ACI_TEMPLATE() -> dict[str, Any]:  # noqa: N802 - registry name, see providers.TEMPLATE_ONLY
    """Base job template of an ``azure-container-instance:push`` pool (a new dict on every call)."""
    return {"job_configuration": _job_configuration(), "variables": AciVariables.model_json_schema()}
