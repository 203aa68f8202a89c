"""Classes named by the registry lines of ``tests/unit/test_registry.py``: a cloud whose provider has not
landed ("grid"), and the mistakes a registry line can make."""

from __future__ import annotations

from typing import ClassVar, Optional

from prefect.workers.base import BaseJobConfiguration, BaseVariables
from pydantic import Field

from providers.base import Provider
from providers.declaration import CloudDeclaration
from providers.local.config import LocalJobConfiguration

_TOKEN = "Token the grid's API accepts; a secret."


class GridJobConfiguration(BaseJobConfiguration):
    """One flow run on the grid."""

    grid_token: Optional[str] = Field(default=None, description=_TOKEN)
    nodes: int = Field(default=1, ge=1, description="Grid nodes the run gets.")


class GridVariables(BaseVariables):
    """Job variables of a grid:push pool."""

    grid_token: Optional[str] = Field(default=None, description=_TOKEN)
    nodes: int = Field(default=1, ge=1, description="Grid nodes the run gets.")


class GridTemplateOnly(CloudDeclaration):
    """A cloud whose pool template has landed and whose provider has not."""

    kind = "grid"
    pool_types: ClassVar[tuple[str, ...]] = ("grid:push",)
    job_configuration = GridJobConfiguration
    job_variables = GridVariables
    secret_fields: ClassVar[tuple[str, ...]] = ("grid_token",)


class SecondLocalTemplateOnly(CloudDeclaration):
    """Declares a pool type the local provider already serves."""

    kind = "second-local"
    pool_types: ClassVar[tuple[str, ...]] = ("local:push",)
    job_configuration = LocalJobConfiguration
    job_variables = BaseVariables


class ManagedTemplateOnly(CloudDeclaration):
    """Declares prefect:managed, which the configuration maps to a provider."""

    kind = "managed"
    pool_types: ClassVar[tuple[str, ...]] = ("prefect:managed",)
    job_configuration = LocalJobConfiguration
    job_variables = BaseVariables


class UnfinishedProvider(Provider[LocalJobConfiguration]):
    """A provider class that implements none of the contract's methods."""

    kind = "unfinished"
    pool_types: ClassVar[tuple[str, ...]] = ("unfinished:push",)
    job_configuration = LocalJobConfiguration
    job_variables = BaseVariables


NOT_A_CLASS = "grid"
