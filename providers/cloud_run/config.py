"""Job configuration and job variables of ``cloud-run-v2:push`` pools (Google Cloud Run jobs, API v2).

The variables are prefect-gcp's ``CloudRunWorkerV2Variables`` (names, types,
defaults and constraints) and the job configuration has the fields of its
``CloudRunWorkerJobV2Configuration``, whose ``json_template()`` is that worker's
default base job template (job body included). So a deployment written for a
Prefect Cloud ``cloud-run-v2:push`` pool (or a ``cloud-run-v2`` worker pool) moves
over unchanged, and prefect-gcp's own configuration class reads our template.
Fields both models have are declared once (``Annotated`` types) and shared.
No Google SDK and no prefect-gcp is imported.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional

from prefect.workers.base import BaseJobConfiguration, BaseVariables
from pydantic import BaseModel, Field

from providers.cloud_run.credentials import GcpCredentials

DEFAULT_IMAGE = "prefecthq/prefect:3-latest"
#: Cloud Run's maximum task timeout (168 h), which prefect-gcp enforces too.
MAX_TIMEOUT_S = 604800


class SecretKeySelector(BaseModel):
    """A Secret Manager secret version injected into the job as an environment variable.

    https://cloud.google.com/run/docs/reference/rest/v2/Container#SecretKeySelector
    """

    secret: str = Field(description="Secret Manager secret name.")
    version: str = Field(description="Secret version, e.g. 'latest'.")


Credentials = Annotated[GcpCredentials, Field(
    title="GCP Credentials",
    description=(
        "The GCP Credentials used to connect to Cloud Run. "
        "If not provided credentials will be inferred from the local environment."
    ),
)]
Region = Annotated[str, Field(description="The region in which to run the Cloud Run job")]
EnvFromSecrets = Annotated[dict[str, SecretKeySelector], Field(
    title="Environment Variables from Secrets",
    description="Environment variables to set from GCP secrets when starting a flow run.",
    examples=[{"ENV_VAR_NAME": {"secret": "SECRET_NAME", "version": "latest"}}],
)]
ApiKeySecret = Annotated[Optional[SecretKeySelector], Field(
    title="Prefect API Key Secret",
    description=(
        "The GCP secret to use for the Prefect API key. When provided, the secret "
        "will be used instead of the PREFECT_API_KEY environment variable."
    ),
    examples=[{"secret": "prefect-api-key", "version": "latest"}],
)]
AuthStringSecret = Annotated[Optional[SecretKeySelector], Field(
    title="Prefect API Auth String Secret",
    description=(
        "The GCP secret to use for the Prefect API auth string. When provided, the secret "
        "will be used instead of the PREFECT_API_AUTH_STRING environment variable."
    ),
    examples=[{"secret": "prefect-api-auth-string", "version": "latest"}],
)]
CloudSqlInstances = Annotated[Optional[list[str]], Field(
    title="Cloud SQL Instances",
    description="List of Cloud SQL instance connection names to connect to. Format: {project}:{location}:{instance}",
    examples=["project:region:instance-id"],
)]
KeepJob = Annotated[bool, Field(
    title="Keep Job After Completion", description="Keep the completed Cloud run job on Google Cloud Platform."
)]
Timeout = Annotated[int, Field(
    gt=0,
    le=MAX_TIMEOUT_S,
    title="Job Timeout",
    description=(
        "Max allowed time duration the Job may be active before Cloud Run will actively try to mark it "
        f"failed and kill associated containers (maximum of {MAX_TIMEOUT_S} seconds, 7 days)."
    ),
)]


def _job_body_template() -> dict[str, Any]:
    """prefect-gcp's default Cloud Run v2 job body: the variables below fill its placeholders."""
    return {
        "client": "prefect",
        "launchStage": "{{ launch_stage }}",
        "template": {
            "template": {
                "serviceAccount": "{{ service_account_name }}",
                "maxRetries": "{{ max_retries }}",
                "timeout": "{{ timeout }}",
                "vpcAccess": {"connector": "{{ vpc_connector_name }}"},
                "containers": [
                    {
                        "env": [],
                        "image": "{{ image }}",
                        "command": "{{ command }}",
                        "args": "{{ args }}",
                        "resources": {"limits": {"cpu": "{{ cpu }}", "memory": "{{ memory }}"}},
                    }
                ],
            }
        },
    }


class CloudRunJobConfiguration(BaseJobConfiguration):
    """One flow run as a Cloud Run v2 job (prefect-gcp's CloudRunWorkerJobV2Configuration fields)."""

    credentials: Credentials = Field(default_factory=GcpCredentials)
    env_from_secrets: EnvFromSecrets = Field(default_factory=dict)
    prefect_api_key_secret: ApiKeySecret = None
    prefect_api_auth_string_secret: AuthStringSecret = None
    cloudsql_instances: CloudSqlInstances = Field(default_factory=list)
    job_body: dict[str, Any] = Field(
        json_schema_extra={"template": _job_body_template()},
        description="The Cloud Run Admin API v2 Job body; image, resources, timeout... are placed in it.",
    )
    keep_job: KeepJob = False
    region: Region = "us-central1"
    timeout: Timeout = 600


class CloudRunVariables(BaseVariables):
    """Job variables of a cloud-run-v2:push work pool (prefect-gcp's CloudRunWorkerV2Variables)."""

    credentials: Credentials = Field(default_factory=GcpCredentials)
    region: Region = "us-central1"
    image: Optional[str] = Field(
        default=DEFAULT_IMAGE,
        title="Image Name",
        description="The image to use for the Cloud Run job. If not provided the default Prefect image will be used.",
    )
    args: list[str] = Field(
        default_factory=list, description="The arguments to pass to the Cloud Run Job V2's entrypoint command."
    )
    env_from_secrets: EnvFromSecrets = Field(default_factory=dict)
    prefect_api_key_secret: ApiKeySecret = None
    prefect_api_auth_string_secret: AuthStringSecret = None
    cloudsql_instances: CloudSqlInstances = Field(default_factory=list)
    keep_job: KeepJob = False
    launch_stage: Literal[
        "ALPHA", "BETA", "GA", "DEPRECATED", "EARLY_ACCESS", "PRELAUNCH", "UNIMPLEMENTED", "LAUNCH_TAG_UNSPECIFIED"
    ] = Field(
        default="BETA",
        description=(
            "The launch stage of the Cloud Run Job V2. "
            "See https://cloud.google.com/run/docs/about-features-categories for additional details."
        ),
    )
    max_retries: int = Field(
        default=0, title="Max Retries", description="The number of times to retry the Cloud Run job."
    )
    cpu: str = Field(default="1000m", title="CPU", description="The CPU to allocate to the Cloud Run job.")
    memory: str = Field(
        default="512Mi",
        title="Memory",
        description="The memory to allocate to the Cloud Run job along with the units, which could be: G, Gi, M, Mi.",
        examples=["512Mi"],
        pattern=r"^\d+(?:G|Gi|M|Mi)$",
    )
    timeout: Timeout = 600
    vpc_connector_name: Optional[str] = Field(
        default=None,
        title="VPC Connector Name",
        description="The name of the VPC connector to use for the Cloud Run job.",
    )
    service_account_name: Optional[str] = Field(
        default=None,
        title="Service Account Name",
        description=(
            "The name of the service account to use for the task execution of Cloud Run Job. "
            "By default Cloud Run jobs run as the default Compute Engine Service Account."
        ),
        examples=["service-account@example.iam.gserviceaccount.com"],
    )
