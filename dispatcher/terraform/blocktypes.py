"""Register a credentials block type on a Prefect server that does not have it yet.

Prefect servers register their integrations' block types at start (unless
``PREFECT_API_BLOCKS_REGISTER_ON_START`` is off). When one is missing it is
registered Prefect's way: with the integration's block class when it is installed
(what ``prefect block register -m prefect_aws`` does), else from the collection
data Prefect ships and its server registers at start, so the dispatcher needs
none of prefect-aws, prefect-gcp or prefect-azure.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import prefect
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.actions import BlockSchemaCreate, BlockTypeCreate
from prefect.client.schemas.objects import BlockSchema, BlockType
from prefect.exceptions import ObjectNotFound

#: Block type slug -> (integration module, block class, collection name).
INTEGRATION_BLOCKS = {
    "aws-credentials": ("prefect_aws", "AwsCredentials", "prefect-aws"),
    "gcp-credentials": ("prefect_gcp", "GcpCredentials", "prefect-gcp"),
    "azure-container-instance-credentials": ("prefect_azure", "AzureContainerInstanceCredentials", "prefect-azure"),
}
COLLECTION_DATA = Path(prefect.__file__).parent / "server" / "collection_blocks_data.json"


class BlockTypeMissing(Exception):
    """The server does not show the block type even after it was registered."""


async def ensure_block_type(client: PrefectClient, slug: str) -> tuple[BlockType, BlockSchema, str]:
    """The block type ``slug`` and its newest schema, registered if missing; and how they were found."""
    found = await _existing(client, slug)
    if found is not None:
        return found[0], found[1], "present"
    how = await _register_with_integration(client, slug) or await _register_from_collection_data(client, slug)
    found = await _existing(client, slug)
    if found is None:  # the server took the registration but does not show it: report, do not loop
        raise BlockTypeMissing(f"block type {slug} is still missing after registering it {how}")
    return found[0], found[1], how


async def _existing(client: PrefectClient, slug: str) -> tuple[BlockType, BlockSchema] | None:
    try:
        block_type = await client.read_block_type_by_slug(slug)
    except ObjectNotFound:
        return None
    schema = await client.get_most_recent_block_schema_for_block_type(block_type.id)
    return (block_type, schema) if schema is not None else None


async def _register_with_integration(client: PrefectClient, slug: str) -> str | None:
    module_name, class_name, _ = INTEGRATION_BLOCKS[slug]
    try:
        block_class = getattr(importlib.import_module(module_name), class_name)
    except ImportError:
        return None
    await block_class.aregister_type_and_schema(client=client)
    return f"with {module_name}.{class_name}"


async def _register_from_collection_data(client: PrefectClient, slug: str) -> str:
    _, _, collection = INTEGRATION_BLOCKS[slug]
    data: dict[str, Any] = json.loads(COLLECTION_DATA.read_text())["collections"][collection]["block_types"][slug]
    schema = data.pop("block_schema")
    type_fields = set(BlockTypeCreate.model_fields)
    try:
        block_type = await client.read_block_type_by_slug(slug)
    except ObjectNotFound:
        block_type = await client.create_block_type(BlockTypeCreate(**{k: v for k, v in data.items() if k in type_fields}))
    await client.create_block_schema(BlockSchemaCreate(
        fields=schema["fields"], capabilities=schema.get("capabilities", []),
        version=schema.get("version", "non-versioned"), block_type_id=block_type.id,
    ))
    return f"from Prefect's {collection} collection data"
