"""Block and variable references in job variables: finding them, and naming the ones that do not exist.

Only used when a build failed (or produced a value that fails validation), so a run's
message can say "job variable env.TOKEN refers to block secret/db, which does not exist"
instead of a generic not-found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from prefect.client.schemas.objects import WorkPool
from prefect.exceptions import ObjectNotFound
from prefect.utilities.templating import PlaceholderType, find_placeholders

from dispatcher.prefect.api import PrefectApi
from providers.errors import InvalidJobConfiguration

_BLOCK_PREFIX = "prefect.blocks."
_VARIABLE_PREFIX = "prefect.variables."


class MissingReference(InvalidJobConfiguration):
    """A job variable refers to a block or a Prefect variable that does not exist."""

    def __init__(self, field: str, what: str) -> None:
        super().__init__(field, "<reference>", what)
        self.message = f"job variable {field} refers to {what}, which does not exist"


def references(node: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(field path, 'block' | 'block_id' | 'variable', name) of every reference in a template (pure)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, dict) and "block_document_id" in ref:
            yield path or "job_variables", "block_id", str(ref["block_document_id"])
            return
        for key, value in node.items():
            yield from references(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from references(item, f"{path}[{index}]")
    elif isinstance(node, str):
        for placeholder in find_placeholders(node):
            if placeholder.type is PlaceholderType.BLOCK_DOCUMENT:
                yield path, "block", placeholder.name[len(_BLOCK_PREFIX):]
            elif placeholder.type is PlaceholderType.VARIABLE:
                yield path, "variable", placeholder.name[len(_VARIABLE_PREFIX):]


async def missing_reference(prefect: PrefectApi, variables: dict[str, Any], work_pool: WorkPool) -> InvalidJobConfiguration:
    """The first block reference (job variables first, then the pool's template) that does not exist."""
    template = work_pool.base_job_template or {}
    sources = (variables, template.get("job_configuration", {}), template.get("variables", {}).get("properties", {}))
    for source in sources:
        for field, kind, name in references(source):
            # A missing Prefect variable does not fail a build: Prefect replaces it with "".
            if kind != "variable" and not await _exists(prefect, kind, name):
                return MissingReference(field, _describe(kind, name))
    return InvalidJobConfiguration("job_variables", "<reference>", "references to blocks and variables that exist")


async def with_missing_variables(
    prefect: PrefectApi, variables: dict[str, Any], error: InvalidJobConfiguration
) -> InvalidJobConfiguration:
    """Add to a validation error the Prefect variables that do not exist (Prefect made them "")."""
    missing = [f"{field} refers to Prefect variable {name!r}, which does not exist"
               for field, kind, name in references(variables)
               if kind == "variable" and not await _exists(prefect, kind, name)]
    if missing:
        error.message += " (job variable " + "; ".join(missing) + ", so Prefect replaced it with an empty string)"
    return error


async def _exists(prefect: PrefectApi, kind: str, name: str) -> bool:
    client = prefect.client
    with prefect.guard():
        try:
            if kind == "variable":
                return await client.read_variable_by_name(name) is not None
            if kind == "block_id":
                await client.read_block_document(UUID(name))
                return True
            slug, _, rest = name.partition(".")
            await client.read_block_document_by_name(rest.split(".")[0], slug)
            return True
        except (ObjectNotFound, ValueError):
            return False


def _describe(kind: str, name: str) -> str:
    if kind == "variable":
        return f"Prefect variable {name!r}"
    if kind == "block_id":
        return f"block document {name}"
    slug, _, rest = name.partition(".")
    return f"block {slug}/{rest.split('.')[0]}"
