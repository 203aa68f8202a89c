"""Job configuration, job variables and settings of the ECS provider.

Variable names are those of Prefect's ECS worker (prefect-aws ``ECSVariables``),
so a deployment written for Prefect Cloud's ``ecs:push`` pool moves over
unchanged; ``ephemeral_storage`` is ours. Each field is declared once (as an
``Annotated`` type) and shared by the job configuration and the variables.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Literal, Optional

import prefect
from prefect.workers.base import BaseVariables
from pydantic import BaseModel, ConfigDict, Field, model_validator

from providers.ecs.credentials import AwsCredentials
from providers.jobconfig import JobConfiguration

DEFAULT_CPU = 1024
DEFAULT_MEMORY = 2048
DEFAULT_CONTAINER_NAME = "prefect"
DEFAULT_LOG_GROUP = "prefect"
DEFAULT_LOG_PREFIX = "prefect"
DEFAULT_IMAGE = f"prefecthq/prefect:{prefect.__version__}-python{sys.version_info.major}.{sys.version_info.minor}"
LaunchType = Literal["FARGATE", "FARGATE_SPOT", "EC2", "EXTERNAL"]
#: Job configuration entries that are raw AWS request fragments, not variables.
RAW_TEMPLATES = ("task_definition", "task_run_request")


class CapacityProvider(BaseModel):
    """One item of a RunTask capacity provider strategy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacityProvider: str = Field(description="Capacity provider name, e.g. FARGATE or FARGATE_SPOT.")
    weight: int = Field(default=1, ge=0, le=1000, description="Relative share of tasks for this provider.")
    base: int = Field(default=0, ge=0, le=100000, description="Tasks placed on this provider first.")


class AwsVpcConfiguration(BaseModel):
    """RunTask ``awsvpcConfiguration``; also accepted wrapped as ``{"awsvpcConfiguration": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subnets: list[str] = Field(default_factory=list, description="Subnet ids (at most 16).")
    securityGroups: list[str] = Field(default_factory=list, description="Security group ids (at most 5).")
    assignPublicIp: Optional[Literal["ENABLED", "DISABLED"]] = Field(
        default=None, description="Give the task's ENI a public IP (needed to pull public images without NAT)."
    )

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"awsvpcConfiguration"}:
            return value["awsvpcConfiguration"]
        return value


def _d(text: str, **kwargs: Any) -> Any:
    return Field(description=text, **kwargs)


Credentials = Annotated[AwsCredentials, _d(
    "The AWS credentials (an aws-credentials block). If empty, the dispatcher's own ECS credentials are used.",
    title="AWS Credentials")]
Cluster = Annotated[Optional[str], _d("The ECS cluster (name or ARN). If not provided, the default cluster is used.")]
Image = Annotated[Optional[str], _d("The image of the Prefect container.")]
Cpu = Annotated[Optional[int], _d(
    "Task CPU units (1024 = 1 vCPU); Fargate allows 256, 512, 1024, 2048, 4096, 8192, 16384. "
    f"Default {DEFAULT_CPU}, or the size of task_definition_arn.", title="CPU")]
Memory = Annotated[Optional[int], _d(
    "Task memory in MiB; Fargate allows a range per CPU value. "
    f"Default {DEFAULT_MEMORY}, or the size of task_definition_arn.")]
EphemeralStorage = Annotated[Optional[int], _d(
    "Ephemeral disk of the task in GiB (Fargate: 21-200; 20 GiB when not set).", title="Ephemeral Storage (GiB)")]
Launch = Annotated[LaunchType, _d(
    "ECS launch type. FARGATE_SPOT is not an ECS launch type: it becomes a FARGATE_SPOT capacity provider strategy.")]
Strategy = Annotated[list[CapacityProvider], _d(
    "Capacity provider strategy; when given, the launch type is ignored.")]
VpcId = Annotated[Optional[str], _d(
    "VPC whose subnets are used when network_configuration has none (default: the account's default VPC). "
    "Looked up once per dispatcher process.", title="VPC ID")]
TaskRole = Annotated[Optional[str], _d("IAM role the flow's code runs with.", title="Task Role ARN")]
ExecutionRole = Annotated[Optional[str], _d(
    "IAM role ECS uses to pull the image, read secrets and write CloudWatch logs.", title="Execution Role ARN")]
Family = Annotated[Optional[str], _d(
    "Task definition family. Default: prefect_<pool>_<deployment or flow name>, reduced to ECS's characters.")]
ContainerName = Annotated[Optional[str], _d(
    f"Name of the container that runs the flow. Default: {DEFAULT_CONTAINER_NAME!r}.")]
ConfigureLogs = Annotated[Optional[bool], _d(
    "Send the container's output to CloudWatch Logs (awslogs driver). Requires execution_role_arn.")]
LogOptions = Annotated[dict[str, str], _d(
    "awslogs driver options, merged over the defaults (awslogs-group 'prefect', awslogs-create-group 'true').")]
LogPrefix = Annotated[Optional[str], _d(
    f"awslogs-stream-prefix; streams are named <prefix>/<container>/<task id>. Default {DEFAULT_LOG_PREFIX!r}.")]
TaskDefinitionArn = Annotated[Optional[str], _d(
    "Use this existing task definition instead of one built from these variables (image, cpu, memory... are "
    "then ignored).", title="Task Definition ARN")]
MatchLatest = Annotated[bool, _d(
    "Accepted for compatibility. The dispatcher always reuses an existing revision whose content matches "
    "(found by its prefect.io/task-definition-hash tag) instead of registering a new one.")]
AutoDeregister = Annotated[bool, _d(
    "Accepted for compatibility and ignored: revisions are shared by every run with the same content, so "
    "deregistering one after a run would re-introduce task definition churn.")]
ApiKeySecret = Annotated[Optional[str], _d(
    "Secrets Manager ARN of the Prefect API key; the container reads PREFECT_API_KEY from it instead of the "
    "environment.", title="Prefect API Key Secret ARN")]
AuthStringSecret = Annotated[Optional[str], _d(
    "Secrets Manager ARN of the Prefect API auth string (PREFECT_API_AUTH_STRING).",
    title="Prefect API Auth String Secret ARN")]
StreamOutput = Annotated[Optional[bool], _d(
    "Accepted for compatibility, not used: output goes to CloudWatch Logs when configure_cloudwatch_logs is set.")]
StartTimeout = Annotated[Optional[int], _d(
    "Seconds the task may take to start running its command (pulling the image, placement...) before the run is "
    "marked crashed and the task stopped. Unset: only the runtime cap applies.")]
PollInterval = Annotated[Optional[float], _d(
    "Accepted for compatibility, not used: the dispatcher polls all tasks in batches.")]


class _EcsFields(BaseModel):
    """The fields the job configuration and the pool's variables share (declared once)."""

    aws_credentials: Credentials = Field(default_factory=AwsCredentials)
    cluster: Cluster = None
    image: Image = None
    cpu: Cpu = None
    memory: Memory = None
    ephemeral_storage: EphemeralStorage = None
    launch_type: Launch = "FARGATE"
    capacity_provider_strategy: Strategy = Field(default_factory=list)
    vpc_id: VpcId = None
    task_role_arn: TaskRole = None
    execution_role_arn: ExecutionRole = None
    family: Family = None
    container_name: ContainerName = None
    configure_cloudwatch_logs: ConfigureLogs = None
    cloudwatch_logs_options: LogOptions = Field(default_factory=dict)
    cloudwatch_logs_prefix: LogPrefix = None
    task_definition_arn: TaskDefinitionArn = None
    match_latest_revision_in_family: MatchLatest = False
    auto_deregister_task_definition: AutoDeregister = False
    prefect_api_key_secret_arn: ApiKeySecret = None
    prefect_api_auth_string_secret_arn: AuthStringSecret = None
    stream_output: StreamOutput = None
    task_start_timeout_seconds: StartTimeout = None
    task_watch_poll_interval: PollInterval = None


class EcsJobConfiguration(JobConfiguration, _EcsFields):
    """One flow run as an ECS task (Prefect's ECS worker fields, flattened and typed)."""

    network_configuration: AwsVpcConfiguration = Field(
        default_factory=AwsVpcConfiguration, description="awsvpc settings: subnets, securityGroups, assignPublicIp."
    )
    task_definition: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Advanced, edited in the pool's base job template: extra RegisterTaskDefinition members (volumes, "
            "sidecar containers, secrets of the Prefect container...). The variables above take precedence."
        ),
    )
    task_run_request: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Advanced, edited in the pool's base job template: extra RunTask members (platformVersion, "
            "enableExecuteCommand, propagateTags...). The dispatcher's own members take precedence."
        ),
    )

    @classmethod
    def json_template(cls) -> dict[str, Any]:
        template = super().json_template()
        template.update({name: {} for name in RAW_TEMPLATES})
        return template

    def prepare_for_flow_run(self, flow_run: Any, *args: Any, **kwargs: Any) -> None:
        """Prefect's preparation; a secret ARN replaces the matching plain environment variable."""
        super().prepare_for_flow_run(flow_run, *args, **kwargs)
        if self.prefect_api_key_secret_arn:
            self.env.pop("PREFECT_API_KEY", None)
        if self.prefect_api_auth_string_secret_arn:
            self.env.pop("PREFECT_API_AUTH_STRING", None)

    @property
    def effective_container_name(self) -> str:
        return self.container_name or DEFAULT_CONTAINER_NAME


class EcsVariables(BaseVariables, _EcsFields):
    """Job variables of an ecs:push work pool: prefect-aws's names, plus ephemeral_storage."""

    image: Image = DEFAULT_IMAGE
    network_configuration: dict[str, Any] = Field(
        default_factory=dict,
        description="awsvpcConfiguration of the task: subnets, securityGroups, assignPublicIp.",
    )


def _env_retry_mode() -> str:
    mode = os.environ.get("AWS_RETRY_MODE", "adaptive")
    return mode if mode in ("legacy", "standard", "adaptive") else "adaptive"


def _env_max_attempts() -> int:
    try:
        return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", "5")))
    except ValueError:
        return 5


class EcsSettings(BaseModel):
    """Dispatcher-side settings of the ECS provider (``providers: {ecs: {...}}``), not per deployment."""

    model_config = ConfigDict(extra="forbid")

    credentials: Optional[AwsCredentials] = Field(
        default=None,
        description=(
            "Operator credentials, used for prefect:managed pools and whenever a job configuration has no "
            "aws_credentials. None: the SDK's default chain (environment, instance or task role)."
        ),
    )
    region_name: Optional[str] = Field(default=None, description="Region when the credentials name none.")
    cluster: Optional[str] = Field(default=None, description="Cluster for configurations that name none.")
    subnets: list[str] = Field(
        default_factory=list, description="Subnets for Fargate tasks whose network_configuration has none."
    )
    security_groups: list[str] = Field(default_factory=list, description="Security groups used with `subnets`.")
    retry_mode: Literal["legacy", "standard", "adaptive"] = Field(
        default_factory=_env_retry_mode,
        description="botocore retry mode (default: AWS_RETRY_MODE, else adaptive: client-side rate limiting).",
    )
    max_attempts: int = Field(
        default_factory=_env_max_attempts,
        ge=1,
        description="botocore attempts per call incl. the first (default: AWS_MAX_ATTEMPTS, else 5). "
        "The dispatcher retries transient errors again around each provider call.",
    )
    launch_rate_per_s: float = Field(
        default=20.0, gt=0,
        description="RunTask calls per second per (credential set, region): AWS documents Fargate's task launch "
        "rate (100 burst, 20/s sustained) and Fargate's RunTask rate (20/s burst and sustained) per account and "
        "region. Raise it with your quota; lower it when other software launches tasks in the same account.",
    )
    launch_burst: float = Field(
        default=20.0, ge=1, description="RunTask calls that may go at once after a quiet period (RunTask's burst)."
    )
    max_pool_connections: int = Field(default=50, ge=1, description="HTTP connections per SDK client.")
    log_lines_on_crash: int = Field(default=20, ge=0, description="Most CloudWatch log lines shown for a crash.")
    describe_batch_size: int = Field(default=100, ge=1, le=100, description="Tasks per DescribeTasks call.")
    revision_search_depth: int = Field(
        default=5, ge=1, le=100, description="Newest revisions of a family checked for a matching content hash."
    )
