"""Build the ECS requests of a run from its job configuration (pure).

What depends on the run (command, environment, tags, client token) goes into
RunTask; everything else goes into the task definition, so runs with the same
configuration share one revision. Its identity is a content hash over the
canonical JSON of the RegisterTaskDefinition request (tags excluded), stored on
the revision as tag ``prefect.io/task-definition-hash``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from typing import Any, Optional

import botocore.session
from botocore.validate import ParamValidator
from pydantic import BaseModel, ConfigDict, Field

from providers.base import SubmitRequest
from providers.ecs import naming
from providers.ecs.config import (
    DEFAULT_LOG_GROUP,
    DEFAULT_LOG_PREFIX,
    AwsVpcConfiguration,
    EcsJobConfiguration,
)
from providers.ecs.validation import command_argv, is_fargate, task_cpu, task_memory
from providers.errors import InvalidJobConfiguration

OVERRIDES_MAX = 8192  # bytes of RunTask's JSON overrides ECS accepts, formatting included
#: Environment values this long are scrubbed from error messages (API keys are much longer).
SECRET_MIN_LENGTH = 8


class LogTarget(BaseModel):
    """Where the awslogs driver writes the flow container's output."""

    model_config = ConfigDict(frozen=True)

    group: str = Field(description="CloudWatch log group.")
    stream_prefix: Optional[str] = Field(description="awslogs-stream-prefix, None when unset.")
    container: str = Field(description="Name of the container whose stream this is.")
    region: Optional[str] = Field(default=None, description="awslogs-region, when set.")

    def stream(self, task_arn: str) -> str:
        """ECS names streams ``{prefix}/{container}/{task id}`` (just the task id without prefix)."""
        task = naming.task_id(task_arn)
        return f"{self.stream_prefix}/{self.container}/{task}" if self.stream_prefix else task


class TaskDefinitionSpec(BaseModel):
    """A task definition we may register: its request and its identity."""

    model_config = ConfigDict(frozen=True)

    family: str = Field(description="Task definition family.")
    content_hash: str = Field(description="sha256 of the canonical request without tags.")
    request: dict[str, Any] = Field(description="RegisterTaskDefinition parameters, tags included.")
    container_name: str = Field(description="The container that runs the flow.")
    log_target: Optional[LogTarget] = Field(default=None, description="Its awslogs destination, if any.")
    awsvpc: bool = Field(description="networkMode is awsvpc (RunTask needs a network configuration).")


class TaskDefinitionInfo(BaseModel):
    """What a run needs to know about the revision it runs (ours, or a described existing one)."""

    model_config = ConfigDict(frozen=True)

    arn: str = Field(description="Task definition ARN.")
    container_name: str = Field(description="The container that runs the flow.")
    awsvpc: bool = Field(description="networkMode is awsvpc.")
    log_target: Optional[LogTarget] = Field(default=None, description="awslogs destination of that container.")


class RunTaskSpec(BaseModel):
    """One RunTask call."""

    model_config = ConfigDict(frozen=True)

    request: dict[str, Any] = Field(description="RunTask parameters.")
    secrets: tuple[str, ...] = Field(description="Environment values, never to appear in messages or logs.")


# -- task definition ----------------------------------------------------------------------


def content_hash(request: dict[str, Any]) -> str:
    body = {key: value for key, value in request.items() if key != "tags"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def log_options(cfg: EcsJobConfiguration, region: Optional[str]) -> Optional[dict[str, str]]:
    """awslogs driver options (Prefect's defaults, the user's options on top); None when not configured."""
    if not cfg.configure_cloudwatch_logs:
        return None
    options = {
        "awslogs-create-group": "true",
        "awslogs-group": DEFAULT_LOG_GROUP,
        "awslogs-stream-prefix": cfg.cloudwatch_logs_prefix or DEFAULT_LOG_PREFIX,
    }
    if region:
        options["awslogs-region"] = region
    options.update(cfg.cloudwatch_logs_options)
    return options


def log_target_of(container: dict[str, Any]) -> Optional[LogTarget]:
    """The awslogs destination of a container definition (ours or a described one)."""
    config = container.get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or not options.get("awslogs-group"):
        return None
    return LogTarget(
        group=options["awslogs-group"],
        stream_prefix=options.get("awslogs-stream-prefix") or None,
        container=container.get("name", ""),
        region=options.get("awslogs-region"),
    )


def log_target_for(cfg: EcsJobConfiguration, region: Optional[str]) -> Optional[LogTarget]:
    """Where the task definition built from ``cfg`` sends the flow container's output."""
    return log_target_of(_our_container(cfg, region))


def _our_container(cfg: EcsJobConfiguration, region: Optional[str]) -> dict[str, Any]:
    container: dict[str, Any] = {"name": cfg.effective_container_name, "image": cfg.image, "essential": True}
    if not is_fargate(cfg):  # EC2/EXTERNAL size containers, not tasks
        container.update(cpu=task_cpu(cfg), memory=task_memory(cfg))
    options = log_options(cfg, region)
    if options is not None:
        container["logConfiguration"] = {"logDriver": "awslogs", "options": options}
    secrets = {
        "PREFECT_API_KEY": cfg.prefect_api_key_secret_arn,
        "PREFECT_API_AUTH_STRING": cfg.prefect_api_auth_string_secret_arn,
    }
    if any(secrets.values()):
        container["secrets"] = [{"name": k, "valueFrom": v} for k, v in secrets.items() if v]
    return container


def _task_level(cfg: EcsJobConfiguration, family: str) -> dict[str, Any]:
    fargate = is_fargate(cfg)
    awsvpc = fargate or bool(cfg.network_configuration.subnets)
    body: dict[str, Any] = {
        "family": family,
        "requiresCompatibilities": ["FARGATE"] if fargate else [cfg.launch_type],
        "networkMode": "awsvpc" if awsvpc else None,
        "cpu": str(task_cpu(cfg)) if fargate else None,
        "memory": str(task_memory(cfg)) if fargate else None,
        "executionRoleArn": cfg.execution_role_arn,
        "taskRoleArn": cfg.task_role_arn,
        "ephemeralStorage": {"sizeInGiB": cfg.ephemeral_storage} if cfg.ephemeral_storage else None,
    }
    return {key: value for key, value in body.items() if value is not None}


def _merge_containers(raw: list[dict[str, Any]], ours: dict[str, Any]) -> list[dict[str, Any]]:
    """Raw template containers (sidecars) kept; ours merged over the one with our name."""
    merged, found = [], False
    for container in raw:
        if container.get("name") in (ours["name"], None) and not found:
            merged.append({**container, **ours})
            found = True
        else:
            merged.append(container)
    return merged if found else [*merged, ours]


def build_task_definition(cfg: EcsJobConfiguration, pool: str, region: Optional[str]) -> TaskDefinitionSpec:
    """The RegisterTaskDefinition request of a configuration (which must not use task_definition_arn)."""
    raw = copy.deepcopy(cfg.task_definition)
    given = cfg.family or raw.get("family")
    family = naming.sanitize_family(given) if given else naming.default_family(pool, cfg.labels)
    container = _our_container(cfg, region)
    request = {**raw, **_task_level(cfg, family)}
    request["containerDefinitions"] = _merge_containers(raw.get("containerDefinitions") or [], container)
    request.pop("tags", None)
    digest = content_hash(request)
    request["tags"] = naming.ecs_tags({naming.HASH_TAG: digest, naming.MANAGED_BY_TAG[0]: naming.MANAGED_BY_TAG[1]}, {})
    return TaskDefinitionSpec(
        family=family,
        content_hash=digest,
        request=request,
        container_name=container["name"],
        log_target=log_target_of(container),
        awsvpc=request.get("networkMode") == "awsvpc",
    )


def info_of(spec: TaskDefinitionSpec, arn: str) -> TaskDefinitionInfo:
    return TaskDefinitionInfo(arn=arn, container_name=spec.container_name, awsvpc=spec.awsvpc, log_target=spec.log_target)


def describe_info(task_definition: dict[str, Any], wanted_container: Optional[str], reference: str) -> TaskDefinitionInfo:
    """What we need from a DescribeTaskDefinition answer: the flow container, network mode, logs.

    ``arn`` stays the user's ``reference``: a bare family keeps meaning "latest ACTIVE revision" in RunTask.
    """
    containers = task_definition.get("containerDefinitions") or []
    by_name = {c.get("name"): c for c in containers}
    container = by_name.get(wanted_container) or by_name.get("prefect")
    if container is None:
        container = next((c for c in containers if c.get("essential", True)), containers[0] if containers else {})
    return TaskDefinitionInfo(
        arn=reference,
        container_name=wanted_container or container.get("name") or "prefect",
        awsvpc=task_definition.get("networkMode") == "awsvpc",
        log_target=log_target_of(container) if container else None,
    )


# -- run task ---------------------------------------------------------------------------


def environment(cfg: EcsJobConfiguration) -> list[dict[str, str]]:
    """The flow run's environment as ECS key-value pairs: None dropped (Prefect's "unset"), values as strings."""
    return [{"name": str(k), "value": str(v)} for k, v in sorted(cfg.env.items()) if v is not None]


def launch_target(cfg: EcsJobConfiguration) -> dict[str, Any]:
    """launchType, or a capacity provider strategy (explicit, or FARGATE_SPOT's)."""
    if cfg.capacity_provider_strategy:
        return {"capacityProviderStrategy": [item.model_dump() for item in cfg.capacity_provider_strategy]}
    if cfg.launch_type == "FARGATE_SPOT":
        return {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]}
    return {"launchType": cfg.launch_type}


def network_configuration(network: AwsVpcConfiguration) -> dict[str, Any]:
    awsvpc: dict[str, Any] = {"subnets": list(network.subnets)}
    if network.securityGroups:
        awsvpc["securityGroups"] = list(network.securityGroups)
    if network.assignPublicIp:
        awsvpc["assignPublicIp"] = network.assignPublicIp
    return {"awsvpcConfiguration": awsvpc}


def _overrides(cfg: EcsJobConfiguration, taskdef: TaskDefinitionInfo, env: list[dict[str, str]]) -> dict[str, Any]:
    raw = copy.deepcopy(cfg.task_run_request.get("overrides") or {})
    ours = {"name": taskdef.container_name, "command": command_argv(cfg), "environment": env}
    overrides = {**raw, "containerOverrides": _merge_containers(raw.get("containerOverrides") or [], ours)}
    if cfg.task_definition_arn:  # an existing definition: the variables that still apply are overrides
        sizes = {"cpu": cfg.cpu, "memory": cfg.memory, "taskRoleArn": cfg.task_role_arn,
                 "executionRoleArn": cfg.execution_role_arn}
        overrides.update({k: str(v) for k, v in sizes.items() if v is not None})
    size = len(json.dumps(overrides, separators=(",", ":"), ensure_ascii=False).encode())
    if size > OVERRIDES_MAX:
        raise InvalidJobConfiguration(
            "env", f"{size} bytes of command and environment",
            f"at most {OVERRIDES_MAX} bytes in total (an ECS RunTask limit); move large values into the "
            "image or AWS Secrets Manager",
        )
    return overrides


def build_run_task(
    cfg: EcsJobConfiguration,
    request: SubmitRequest,
    taskdef: TaskDefinitionInfo,
    network: Optional[AwsVpcConfiguration],
    cluster: Optional[str],
) -> RunTaskSpec:
    """The one RunTask of a run; ``clientToken`` makes a re-submission return the same task."""
    env = environment(cfg)
    ours: dict[str, Any] = {
        "taskDefinition": taskdef.arn,
        **launch_target(cfg),
        "overrides": _overrides(cfg, taskdef, env),
        "tags": naming.ecs_tags(
            {"prefect.io/flow-run-id": str(request.flow_run_id), "prefect.io/attempt-id": str(request.attempt_id),
             "prefect.io/workspace": request.workspace, "prefect.io/pool": request.pool},
            cfg.labels,
        ),
        "startedBy": naming.started_by(request.attempt_id),
        "clientToken": naming.client_token(request.idempotency_key),
    }
    if cluster:
        ours["cluster"] = cluster
    if network is not None:
        ours["networkConfiguration"] = network_configuration(network)
    raw = {k: v for k, v in copy.deepcopy(cfg.task_run_request).items() if k not in ("launchType", "capacityProviderStrategy")}
    secrets = tuple(item["value"] for item in env if len(item["value"]) >= SECRET_MIN_LENGTH)
    return RunTaskSpec(request={**raw, **ours}, secrets=secrets)


# -- the service model ------------------------------------------------------------------------


@cache
def _input_shape(operation: str) -> Any:
    return botocore.session.get_session().get_service_model("ecs").operation_model(operation).input_shape


def model_problems(operation: str, params: dict[str, Any]) -> list[str]:
    """Where ``params`` break botocore's ECS model, as parameter paths only (values may be secrets)."""
    report = ParamValidator().validate(params, _input_shape(operation))
    problems = []
    for kind, name, details in getattr(report, "_errors", []):
        unknown = details.get("unknown_param") if isinstance(details, dict) else None
        problems.append(f"{name or '.'}{'.' + unknown if unknown else ''}: {kind}")
    if report.has_errors() and not problems:
        problems.append("invalid parameters")
    return problems


def check_model(operation: str, params: dict[str, Any], field: str) -> None:
    """InvalidJobConfiguration naming the raw template ``field`` when ``params`` do not fit the model."""
    problems = model_problems(operation, params)
    if problems:
        raise InvalidJobConfiguration(field, "; ".join(problems[:5]), f"members and types of the ECS {operation} API")
