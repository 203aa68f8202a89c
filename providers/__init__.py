"""Provider registry: adding a cloud is one folder plus one line here.

Entries are import paths so that a cloud's SDK is imported only when a pool of
that cloud is served (the local default needs no cloud SDK at all).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from providers.base import Provider

PROVIDERS: dict[str, str] = {
    "local": "providers.local:LocalProvider",
    "ecs": "providers.ecs:EcsProvider",
}

#: Pool types whose base job template we write, with the provider that runs them.
#: ``prefect:managed`` runs on the provider the operator configures (``managed_provider``).
POOL_TYPES: dict[str, str | None] = {
    "local:push": "local",
    "ecs:push": "ecs",
    "cloud-run-v2:push": "cloud-run",
    "azure-container-instance:push": "aci",
    "prefect:managed": None,
}

#: Declarations of clouds whose provider has not landed yet: their pool templates (Prefect's variable names).
TEMPLATE_ONLY: dict[str, str] = {
    "cloud-run": "providers.cloud_run.template_only:CloudRunTemplateOnly",
    "aci": "providers.aci.template_only:AciTemplateOnly",
}


def _load(path: str) -> object:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def provider_class(kind: str) -> type[Provider]:
    """The provider class registered under ``kind``; KeyError names what exists."""
    if kind not in PROVIDERS:
        raise KeyError(f"no provider {kind!r}; available: {', '.join(sorted(PROVIDERS))}")
    return _load(PROVIDERS[kind])  # type: ignore[return-value]


def provider_kind_for(pool_type: str, managed_provider: str) -> str:
    """Which provider runs pools of ``pool_type``."""
    if pool_type not in POOL_TYPES:
        raise KeyError(f"pool type {pool_type!r} is not a push type; known: {', '.join(POOL_TYPES)}")
    return POOL_TYPES[pool_type] or managed_provider


def base_job_template(pool_type: str, managed_provider: str = "local") -> dict:
    """The base job template ``dispatcher pool create`` writes for ``pool_type``."""
    kind = provider_kind_for(pool_type, managed_provider)
    if kind in PROVIDERS:
        return provider_class(kind).base_job_template()
    return _load(TEMPLATE_ONLY[kind]).base_job_template()  # type: ignore[attr-defined]
