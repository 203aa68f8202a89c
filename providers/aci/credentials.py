"""Credentials of ``azure-container-instance:push`` pools, as Prefect's blocks store them.

``aci_credentials`` is prefect-azure's ``azure-container-instance-credentials``
block (a service principal, or DefaultAzureCredential when empty), and a private
image registry is either prefect-docker's ``docker-registry-credentials`` block or
a managed identity of the container group. prefect-azure and prefect-docker are
not imported: plain models read the resolved blocks (:mod:`providers.blocks`).
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, Field, SecretStr

from providers.blocks import block_schema

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
