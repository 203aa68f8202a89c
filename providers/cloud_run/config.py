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

from prefect.workers.base import BaseVariables
from pydantic import BaseModel, ConfigDict, Field

from providers.cloud_run.credentials import GcpCredentials
from providers.jobconfig import JobConfiguration

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


class CloudRunJobConfiguration(JobConfiguration):
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


class CloudRunSettings(BaseModel):
    """Dispatcher-side settings of the Cloud Run provider (``providers: {cloud-run: {...}}``), not per deployment."""

    model_config = ConfigDict(extra="forbid")

    credentials: Optional[GcpCredentials] = Field(
        default=None,
        description="Operator credentials for prefect:managed pools and job configurations whose credentials block "
        "is empty. None: Application Default Credentials.",
    )
    project: Optional[str] = Field(default=None, description="Project when neither the block nor its key names one.")
    endpoint: str = Field(
        default="https://run.googleapis.com",
        description="Cloud Run Admin API endpoint (a regional endpoint, or an emulator in tests).",
    )
    anonymous: bool = Field(
        default=False, description="Send no Authorization header (emulators only; never against Google)."
    )
    http_timeout_s: float = Field(default=30.0, gt=0, description="Timeout of one HTTP request to the Admin API.")
    max_connections: int = Field(default=50, ge=1, description="HTTP connections per credential set.")
    list_page_size: int = Field(
        default=1000, ge=1, le=1000, description="Executions per page of the watch's jobs/-/executions list."
    )
    find_page_size: int = Field(default=200, ge=1, le=1000, description="Executions per page when find() looks.")
    find_max_pages: int = Field(default=5, ge=1, description="Pages of a job's executions find() reads at most.")
    job_idle_delete_s: float = Field(
        default=3600.0, ge=0,
        description="A job of ours whose newest execution ended this long ago is deleted by housekeeping "
        "(unless keep_job); 0 never deletes.",
    )
    run_rate_per_s: float = Field(
        default=1.0, gt=0,
        description="Initial pace of :run calls per (project, region): Cloud Run's 'Job run requests per minute "
        "per region' default is not published (60-180/min are reported); the pace adapts to 429s.",
    )
    run_rate_max_per_s: float = Field(default=20.0, gt=0, description="Never more :run calls per second than this.")
    run_quota_per_min: Optional[float] = Field(
        default=None, gt=0,
        description="Your project's 'Job run requests per minute per region' quota, if you know it (console, "
        "Quotas page). Set: :run calls go at exactly that pace (a backlog drains at the quota, with no 429s); "
        "unset: the pace starts at run_rate_per_s and adapts to 429s (AIMD), which averages below the quota.",
    )
    run_burst: float = Field(default=10.0, ge=1, description=":run calls that may go at once after a quiet period.")
    run_rate_increase_per_s: float = Field(
        default=0.1, ge=0, description="How fast the :run pace grows per second without 429s (calls/s per second).")
