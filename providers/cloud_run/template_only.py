"""Cloud Run until its provider lands: pools can be created, ``serve`` and ``check`` refuse them.

The registry line ``cloud-run`` names this class. When ``CloudRunProvider`` lands
(``providers/cloud_run/provider.py``, declaring the same kind, pool types, job
configuration, variables and secret fields), the line names it instead and this
module is deleted.
"""

from __future__ import annotations

from typing import ClassVar

from providers.cloud_run.config import CloudRunJobConfiguration, CloudRunVariables
from providers.declaration import CloudDeclaration


class CloudRunTemplateOnly(CloudDeclaration):
    """The pool template of cloud-run-v2:push, without a provider to run it."""

    kind = "cloud-run"
    pool_types: ClassVar[tuple[str, ...]] = ("cloud-run-v2:push",)
    job_configuration = CloudRunJobConfiguration
    job_variables = CloudRunVariables
    secret_fields: ClassVar[tuple[str, ...]] = ("credentials",)  # a gcp-credentials block: the service account key
