"""GCP credentials as Prefect's ``gcp-credentials`` block stores them (prefect-gcp ``GcpCredentials``).

prefect-gcp is not imported (the dispatcher needs no Google SDK to write a pool):
this plain model reads the block's data once Prefect has resolved a block
reference, and its schema makes Prefect's UI offer the block (:mod:`providers.blocks`).
"""

from __future__ import annotations

import hashlib
import json
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

    def is_empty(self) -> bool:
        return self.service_account_file is None and not self.service_account_info and not self.project

    def fingerprint(self) -> str:
        """Identifies the credential set (clients are cached by it); a hash, so the key never shows."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def project_id(self) -> Optional[str]:
        """The block's project, else the service account key's own ``project_id``."""
        if self.project:
            return self.project
        info = self.service_account_info or {}
        project = info.get("project_id")
        return project if isinstance(project, str) and project else None

    def secret_values(self) -> tuple[str, ...]:
        """Strings that must never appear in a message (the private key)."""
        info = self.service_account_info or {}
        return tuple(str(info[k]) for k in ("private_key", "private_key_id") if info.get(k))
