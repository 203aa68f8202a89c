"""The provider registry: adding a cloud is one package under ``providers/`` plus one line here.

A line names the cloud's kind, the import path of the class that declares it, and
the pip extra that installs its SDK. Everything else (the pool types it serves,
its settings model, the job variables that may hold secrets, its base job
template) is read from that class by :mod:`providers.registry`, which imports a
class only when its cloud is used. A line may name a provider class
(``providers.base.Provider``) or, until a cloud's provider lands, a template-only
declaration (``providers.declaration.CloudDeclaration``): ``dispatcher pool create``
writes its pools, ``serve`` and ``check`` refuse them.

This module is imported by the local provider's supervisor, which runs without
the dispatcher's dependencies: keep it to the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cloud:
    """One registry line."""

    kind: str  # the name used in dispatcher.yaml (providers.<kind>, managed_provider, pools[].provider)
    declared_by: str  # "package.module:ClassName" of the provider class or template-only declaration
    extra: str | None = None  # pip extra of prefect-push-dispatcher that installs the cloud's SDK


CLOUDS: tuple[Cloud, ...] = (
    Cloud("local", "providers.local.provider:LocalProvider"),
    Cloud("ecs", "providers.ecs.provider:EcsProvider", extra="aws"),
    Cloud("cloud-run", "providers.cloud_run.provider:CloudRunProvider", extra="gcp"),
    Cloud("aci", "providers.aci.provider:AciProvider", extra="azure"),
)
