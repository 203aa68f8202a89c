"""GCP credentials as Prefect's ``gcp-credentials`` block stores them (prefect-gcp ``GcpCredentials``).

prefect-gcp is not imported (the dispatcher needs no Google SDK to write a pool):
this plain model reads the block's data once Prefect has resolved a block
reference, and its schema makes Prefect's UI offer the block (:mod:`providers.blocks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, Field

from providers.blocks import block_schema


class GcpCredentials(BaseModel):
    """Fields of Prefect's ``gcp-credentials`` block (prefect-gcp ``GcpCredentials``).

    Give either ``service_account_file`` or ``service_account_info``; with neither,
    Application Default Credentials are used.
    """

    model_config = block_schema("gcp-credentials", "service_account_info.*")

    service_account_file: Optional[Path] = Field(
        default=None, title="Service Account File", description="Path to the service account JSON keyfile."
    )
    service_account_info: Optional[dict[str, Any]] = Field(
        default=None, title="Service Account Info", description="The contents of the keyfile as a dict."
    )
    project: Optional[str] = Field(default=None, title="Project", description="The GCP project to use for the client.")
