"""Write a module's outputs to Prefect: its credentials block, then the pool's defaults.

Idempotent: each object is compared with what the server has and written only when
it differs (the block in place: same document id). Block values are never shown.
Defaults come from the modules' non-sensitive job-variables outputs; a default's
value is shown unless it is the credentials reference (its block id is shown) or a
variable the template marks write-only (ACI's subscription_id).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import BlockDocumentCreate, BlockDocumentUpdate
from prefect.client.schemas.objects import BlockDocument, WorkPool
from prefect.exceptions import ObjectNotFound
from pydantic import BaseModel, Field

from dispatcher.terraform.blocktypes import ensure_block_type
from dispatcher.terraform.modules import PoolSettings, TerraformModule
from providers import registry

Action = Literal["created", "updated", "unchanged", "skipped", "registered"]


class Change(BaseModel):
    """One object the command looked at, and what it did; ``detail`` never holds a secret value."""

    action: Action = Field(description="What happened to the object.")
    subject: str = Field(description="The object, e.g. 'block aws-credentials/prod' or 'default cluster'.")
    detail: str = Field(default="", description="Field names, a non-secret value, or why it was skipped.")

    def render(self) -> str:
        return f"{self.action:<10} {self.subject}" + (f": {self.detail}" if self.detail else "")


class PoolTypeMismatch(Exception):
    """The pool exists with a type the module's outputs are not for."""


class PoolTarget(BaseModel):
    """Where the outputs go."""

    pool: str = Field(description="Work pool name (created when missing).")
    block_name: str = Field(description="Name of the credentials block document.")


def default_block_name(pool: str) -> str:
    """A block name Prefect accepts (lowercase letters, digits, dashes) derived from the pool's name."""
    return re.sub(r"[^a-z0-9-]+", "-", pool.lower()).strip("-") or "dispatcher"


async def sync_pool(client: PrefectClient, module: TerraformModule, settings: PoolSettings,
                    target: PoolTarget) -> list[Change]:
    """Block, then pool; the pool's type is checked first so a refused pool changes nothing."""
    pool = await _read_pool(client, target.pool)
    if pool is not None and pool.type != module.pool_type:
        raise PoolTypeMismatch(f"work pool {target.pool!r} is of type {pool.type}, but outputs of {module.name} "
                               f"are for {module.pool_type} pools")
    changes: list[Change] = []
    block_id = await _sync_block(client, module, settings, target.block_name, changes)
    defaults = {**settings.defaults, module.credentials_variable: {"$ref": {"block_document_id": str(block_id)}}}
    await _sync_pool_defaults(client, module, pool, target.pool, defaults, changes)
    return changes


async def _read_pool(client: PrefectClient, name: str) -> WorkPool | None:
    try:
        return await client.read_work_pool(name)
    except ObjectNotFound:
        return None


async def _sync_block(client: PrefectClient, module: TerraformModule, settings: PoolSettings, name: str,
                      changes: list[Change]) -> UUID:
    block_type, schema, how = await ensure_block_type(client, module.block_type)
    if how != "present":
        changes.append(Change(action="registered", subject=f"block type {module.block_type}", detail=how))
    subject = f"block {module.block_type}/{name}"
    existing = await _read_block(client, module.block_type, name)
    base = dict(existing.data) if existing is not None else {}
    data = {k: v for k, v in {**base, **settings.block_fields}.items() if v is not None}
    named = ", ".join(sorted(k for k, v in settings.block_fields.items() if v is not None)) or "none (ambient identity)"
    detail = f"fields {named} (values not shown)"
    if existing is None:
        created = await client.create_block_document(BlockDocumentCreate(
            name=name, data=data, block_type_id=block_type.id, block_schema_id=schema.id))
        changes.append(Change(action="created", subject=subject, detail=detail))
        return created.id
    if data == base:
        changes.append(Change(action="unchanged", subject=subject, detail=detail))
    else:
        await client.update_block_document(existing.id, BlockDocumentUpdate(
            block_schema_id=schema.id, data=data, merge_existing_data=False))
        changes.append(Change(action="updated", subject=subject, detail=detail))
    return existing.id


async def _read_block(client: PrefectClient, slug: str, name: str) -> BlockDocument | None:
    try:
        return await client.read_block_document_by_name(name, slug, include_secrets=True)
    except ObjectNotFound:
        return None


async def _sync_pool_defaults(client: PrefectClient, module: TerraformModule, pool: WorkPool | None, name: str,
                              defaults: dict[str, Any], changes: list[Change]) -> None:
    if pool is None:
        template = registry.base_job_template(module.pool_type, managed_provider="local")  # not prefect:managed
    else:
        template = copy.deepcopy(pool.base_job_template)
    properties = template.get("variables", {}).get("properties", {})
    changed = "created" if pool is None else "updated"
    default_changes = [_set_default(properties, variable, value, module, changed)
                       for variable, value in defaults.items()]
    subject = f"work pool {name!r} ({module.pool_type})"
    if pool is None:
        await client.request("POST", "/work_pools/", json={"name": name, "type": module.pool_type,
                                                           "base_job_template": template})
        changes.append(Change(action="created", subject=subject, detail="with our base job template"))
    elif any(c.action == changed for c in default_changes):
        await client.request("PATCH", "/work_pools/{name}", path_params={"name": name},
                             json={"base_job_template": template})
        changes.append(Change(action="updated", subject=subject, detail="base job template defaults"))
    else:
        changes.append(Change(action="unchanged", subject=subject))
    changes.extend(default_changes)


def _set_default(properties: dict[str, Any], variable: str, value: Any, module: TerraformModule,
                 changed: Action) -> Change:
    """Set one variable's default in ``properties``; a dict is merged into the pool's own (a block reference is not)."""
    subject = f"  default {variable}"
    schema = properties.get(variable)
    if schema is None:
        return Change(action="skipped", subject=subject, detail="the pool's template has no such variable")
    current = schema.get("default")
    new = {**current, **value} if isinstance(current, dict) and isinstance(value, dict) and "$ref" not in value \
        else value
    shown = _shown(variable, new, schema, module)
    if current == new:
        return Change(action="unchanged", subject=subject, detail=shown)
    schema["default"] = new
    return Change(action=changed, subject=subject, detail=shown)


def _shown(variable: str, value: Any, schema: dict[str, Any], module: TerraformModule) -> str:
    if variable == module.credentials_variable:
        return f"block {module.block_type} {value['$ref']['block_document_id']}"
    if schema.get("writeOnly") or schema.get("format") == "password":
        return "(secret, not shown)"
    return _compact(value)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
