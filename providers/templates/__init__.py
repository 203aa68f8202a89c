"""Base job templates for push pool types whose provider has not landed yet.

Each is built the way Prefect's workers build theirs - a ``BaseVariables``
subclass whose JSON schema is the ``variables`` section and a job configuration
whose ``{{ placeholders }}`` name only those variables - with the variable names
of Prefect's own worker for that infrastructure, so deployments move over from
Prefect Cloud push pools unchanged. ``providers.TEMPLATE_ONLY`` points here.
No cloud SDK (nor prefect-gcp / prefect-azure) is imported.
"""

from providers.templates.aci import ACI_TEMPLATE, AciVariables
from providers.templates.cloud_run import CLOUD_RUN_V2_TEMPLATE, CloudRunV2Variables

__all__ = ["ACI_TEMPLATE", "CLOUD_RUN_V2_TEMPLATE", "AciVariables", "CloudRunV2Variables"]
