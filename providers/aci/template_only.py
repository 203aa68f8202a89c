"""Azure Container Instances until its provider lands: pools can be created, ``serve`` and ``check`` refuse them.

The registry line ``aci`` names this class. When ``AciProvider`` lands
(``providers/aci/provider.py``, declaring the same kind, pool types, job
configuration, variables and secret fields), the line names it instead and this
module is deleted.
"""

from __future__ import annotations

from typing import ClassVar

from providers.aci.config import AciJobConfiguration, AciVariables
from providers.declaration import CloudDeclaration


class AciTemplateOnly(CloudDeclaration):
    """The pool template of azure-container-instance:push, without a provider to run it."""

    kind = "aci"
    pool_types: ClassVar[tuple[str, ...]] = ("azure-container-instance:push",)
    job_configuration = AciJobConfiguration
    job_variables = AciVariables
    # A service principal's secret, a registry password, and the subscription id (a SecretStr in prefect-azure).
    secret_fields: ClassVar[tuple[str, ...]] = ("aci_credentials", "image_registry", "subscription_id")
