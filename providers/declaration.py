"""What a cloud declares about itself, read by the registry (:mod:`providers.registry`).

Every provider class is a ``CloudDeclaration`` (``providers.base.Provider``
subclasses it). Until a cloud's provider lands, its registry line names a bare
``CloudDeclaration`` subclass instead - a template-only declaration - so its pools
can be created with Prefect's variable names while ``serve`` refuses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from prefect.workers.base import BaseJobConfiguration, BaseVariables
    from pydantic import BaseModel


def base_job_template(
    job_configuration: type[BaseJobConfiguration], job_variables: type[BaseVariables]
) -> dict[str, Any]:
    """A pool's base job template, built the way Prefect's workers build theirs (a new dict per call)."""
    return {
        "job_configuration": job_configuration.json_template(),
        "variables": job_variables.model_json_schema(),
    }


class CloudDeclaration:
    """A cloud's kind, pool types, job configuration, variables, secret-bearing fields and settings."""

    #: Registry key ("local", "ecs", ...); must equal the kind of the class's registry line.
    kind: ClassVar[str]
    #: Prefect work pool types whose runs this cloud starts (``prefect:managed`` is mapped by configuration).
    pool_types: ClassVar[tuple[str, ...]] = ()
    #: Prefect job configuration class; its fields are what the base job template fills in.
    job_configuration: ClassVar[type[BaseJobConfiguration]]
    #: Prefect variables model; its JSON schema is the pool's ``variables`` section.
    job_variables: ClassVar[type[BaseVariables]]
    #: Job variables whose values may hold secrets: named in messages, their values never shown.
    #: ``env`` is always treated so (see ``providers.errors.invalid_configuration``).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    #: Model of the cloud's section under ``providers:`` in dispatcher.yaml (None: it takes none).
    settings_model: ClassVar[type[BaseModel] | None] = None

    @classmethod
    def managed_allocation(cls, configuration: Any, allocation: Any) -> Any:
        """A copy of ``configuration`` (this cloud's) with Prefect Managed's allocation
        (``providers.managed.ManagedAllocation``) in this cloud's own resource fields. Pure."""
        raise NotImplementedError(f"provider {cls.kind!r} cannot serve prefect:managed pools")

    @classmethod
    def base_job_template(cls) -> dict[str, Any]:
        """The base job template ``dispatcher pool create`` writes for this cloud's pool types."""
        return base_job_template(cls.job_configuration, cls.job_variables)
