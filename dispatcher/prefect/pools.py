"""Create push work pools through Prefect's REST API (its CLI refuses push types)."""

from __future__ import annotations

import re

from prefect.client.orchestration import PrefectClient
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from providers import registry
from providers.managed import official_image

_VERSION = re.compile(r"^\d+\.\d+\.\d+([.+-]?\w+)*$")


async def create_pool(
    api_url: str,
    name: str,
    pool_type: str,
    *,
    api_key: str | None = None,
    auth_string: str | None = None,
    managed_provider: str = "local",
    overwrite: bool = False,
    concurrency_limit: int | None = None,
) -> str:
    """Create (or with ``overwrite`` update) pool ``name``; returns a one-line summary.

    Every push type gets its template, also those whose provider has not landed yet.
    Raises ``providers.registry.RegistryError`` for a type or provider the registry does not know.
    """
    registry.kind_for_pool_type(pool_type, managed_provider)  # an unknown type fails before any call
    async with PrefectClient(api=api_url, api_key=api_key, auth_string=auth_string) as client:
        image = official_image(await _server_version(client)) if pool_type == registry.MANAGED_POOL_TYPE else None
        template = registry.base_job_template(pool_type, managed_provider, image)
        body = {"name": name, "type": pool_type, "base_job_template": template}
        if concurrency_limit is not None:
            body["concurrency_limit"] = concurrency_limit
        try:
            await client.read_work_pool(name)
            exists = True
        except ObjectNotFound:
            exists = False
        if exists and not overwrite:
            raise ObjectAlreadyExists(f"work pool {name!r} already exists (use --overwrite to replace its template)")
        if exists:
            update = {k: v for k, v in body.items() if k not in ("name", "type")}
            await client.request("PATCH", "/work_pools/{name}", path_params={"name": name}, json=update)
            return f"Updated work pool {name!r} ({pool_type}) with {len(template['variables']['properties'])} job variables."
        await client.request("POST", "/work_pools/", json=body)
    return f"Created work pool {name!r} ({pool_type}) with {len(template['variables']['properties'])} job variables."


async def _server_version(client: PrefectClient) -> str | None:
    """The server's Prefect version (``/admin/version``), so managed runs get the image of the Prefect
    they talk to; None (the installed Prefect's) when the server does not say (Prefect Cloud)."""
    try:
        version = await client.api_version()
    except Exception:  # noqa: BLE001 - a default image is better than no pool
        return None
    return version if isinstance(version, str) and _VERSION.match(version) else None
