"""Base job template of ``cloud-run-v2:push`` pools (Google Cloud Run jobs, API v2).

The variables are prefect-gcp's ``CloudRunWorkerV2Variables`` (names, types,
defaults and constraints), and the job configuration is the one that worker's
default base job template produces, so a deployment written for a Prefect Cloud
``cloud-run-v2:push`` pool (or a ``cloud-run-v2`` worker pool) moves over unchanged
and a job configuration class with prefect-gcp's semantics can read it.

prefect-gcp is not imported (the dispatcher needs no Google SDK to write a pool):
the block it references, ``gcp-credentials``, is described by a plain model
(:mod:`providers.blocks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from prefect.workers.base import BaseVariables
from pydantic import BaseModel, Field

from providers.blocks import block_schema

DEFAULT_IMAGE = "prefecthq/prefect:3-latest"
#: Cloud Run's maximum task timeout (168 h), which prefect-gcp enforces too.
MAX_TIMEOUT_S = 604800


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


class SecretKeySelector(BaseModel):
    """A Secret Manager secret version injected into the job as an environment variable.

    https://cloud.google.com/run/docs/reference/rest/v2/Container#SecretKeySelector
    """

    secret: str
    version: str


class CloudRunV2Variables(BaseVariables):
    """Job variables of a cloud-run-v2:push work pool (prefect-gcp's CloudRunWorkerV2Variables)."""

    credentials: GcpCredentials = Field(
        default_factory=GcpCredentials,
        title="GCP Credentials",
        description=(
            "The GCP Credentials used to connect to Cloud Run. "
            "If not provided credentials will be inferred from the local environment."
        ),
    )
    region: str = Field(default="us-central1", description="The region in which to run the Cloud Run job")
    image: Optional[str] = Field(
        default=DEFAULT_IMAGE,
        title="Image Name",
        description="The image to use for the Cloud Run job. If not provided the default Prefect image will be used.",
    )
    args: list[str] = Field(
        default_factory=list, description="The arguments to pass to the Cloud Run Job V2's entrypoint command."
    )
    env_from_secrets: dict[str, SecretKeySelector] = Field(
        default_factory=dict,
        title="Environment Variables from Secrets",
        description="Environment variables to set from GCP secrets when starting a flow run.",
        examples=[{"ENV_VAR_NAME": {"secret": "SECRET_NAME", "version": "latest"}}],
    )
    prefect_api_key_secret: Optional[SecretKeySelector] = Field(
        default=None,
        title="Prefect API Key Secret",
        description=(
            "The GCP secret to use for the Prefect API key. When provided, the secret "
            "will be used instead of the PREFECT_API_KEY environment variable."
        ),
        examples=[{"secret": "prefect-api-key", "version": "latest"}],
    )
    prefect_api_auth_string_secret: Optional[SecretKeySelector] = Field(
        default=None,
        title="Prefect API Auth String Secret",
        description=(
            "The GCP secret to use for the Prefect API auth string. When provided, the secret "
            "will be used instead of the PREFECT_API_AUTH_STRING environment variable."
        ),
        examples=[{"secret": "prefect-api-auth-string", "version": "latest"}],
    )
    cloudsql_instances: Optional[list[str]] = Field(
        default_factory=list,
        title="Cloud SQL Instances",
        description=(
            "List of Cloud SQL instance connection names to connect to. Format: {project}:{location}:{instance}"
        ),
        examples=["project:region:instance-id"],
    )
    keep_job: bool = Field(
        default=False,
        title="Keep Job After Completion",
        description="Keep the completed Cloud run job on Google Cloud Platform.",
    )
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
    timeout: int = Field(
        default=600,
        gt=0,
        le=MAX_TIMEOUT_S,
        title="Job Timeout",
        description=(
            "Max allowed time duration the Job may be active before Cloud Run will actively try to mark it "
            f"failed and kill associated containers (maximum of {MAX_TIMEOUT_S} seconds, 7 days)."
        ),
    )
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


def _job_configuration() -> dict[str, Any]:
    """prefect-gcp's CloudRunWorkerJobV2Configuration.json_template(), job body included."""
    return {
        "command": "{{ command }}",
        "env": "{{ env }}",
        "labels": "{{ labels }}",
        "name": "{{ name }}",
        "credentials": "{{ credentials }}",
        "env_from_secrets": "{{ env_from_secrets }}",
        "prefect_api_key_secret": "{{ prefect_api_key_secret }}",
        "prefect_api_auth_string_secret": "{{ prefect_api_auth_string_secret }}",
        "cloudsql_instances": "{{ cloudsql_instances }}",
        "job_body": {
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
        },
        "keep_job": "{{ keep_job }}",
        "region": "{{ region }}",
        "timeout": "{{ timeout }}",
    }


def CLOUD_RUN_V2_TEMPLATE() -> dict[str, Any]:  # noqa: N802 - registry name, see providers.TEMPLATE_ONLY
    """Base job template of a ``cloud-run-v2:push`` pool (a new dict on every call)."""
    return {"job_configuration": _job_configuration(), "variables": CloudRunV2Variables.model_json_schema()}
