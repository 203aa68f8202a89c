"""Plain models that stand for Prefect blocks (``aws-credentials``, ``gcp-credentials``...).

The dispatcher reads credentials blocks without Prefect's integrations
(prefect-aws, prefect-gcp, prefect-azure) installed: Prefect's server resolves a
job variable ``{"$ref": {"block_document_id": ...}}`` into the block's data before
the job configuration is built, and a plain model reads that. Its JSON schema
carries ``block_type_slug`` the way Prefect's block schemas do, so Prefect's UI
offers a block picker for the variable.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict


def block_schema(slug: str, *secret_fields: str, **config: Any) -> ConfigDict:
    """Model config making a model's JSON schema a reference to the Prefect block type ``slug``.

    ``not: {required: [$ref]}`` keeps a block reference from also matching the
    block's own (all-optional) fields: Prefect's server wraps block definitions in
    ``oneOf: [fields, {"$ref": ...}]`` before validating job variables, and without
    it a reference matches both branches and a deployment naming a block is refused
    (422; Prefect's integrations' own templates have this flaw on a self-hosted server).
    ``config`` is the rest of the model's config (``extra``, ``frozen``...).
    """
    return ConfigDict(
        json_schema_extra={
            "block_type_slug": slug,
            "block_schema_references": {},
            "secret_fields": list(secret_fields),
            "not": {"required": ["$ref"]},
        },
        **config,
    )
