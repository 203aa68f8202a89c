"""RunTask pieces: request checks, launch type / capacity provider placement,
and what the new task's essential container will run.

Messages are the ones ECS answers where they are publicly known (e.g.
"Network Configuration must be provided when networkMode 'awsvpc' is
specified."); the rest are worded in the same style.
"""

from __future__ import annotations

import json
import random
from typing import Any

from . import fargate
from .clusters import Cluster
from .errors import client_error, invalid_parameter
from .taskdefs import TaskDefinition, TaskDefinitionStore
from .util import check_tags, env_list_to_dict

PLATFORM_VERSIONS = ("LATEST", "1.4.0", "1.3.0")
OVERRIDES_LIMIT = 8192  # characters of the JSON overrides, formatting included


def check_client_token(token: str | None) -> None:
    if token is None:
        return
    if not 1 <= len(token) <= 64 or any(not 33 <= ord(ch) <= 126 for ch in token):
        raise invalid_parameter(
            "The client token must be up to 64 ASCII characters in the range of 33-126 (inclusive)."
        )


def resolve_task_definition(store: TaskDefinitionStore, ref: str) -> TaskDefinition:
    td = store.lookup(ref)
    if td is None:
        raise client_error("TaskDefinition not found.")
    if td.status != "ACTIVE":
        raise invalid_parameter("TaskDefinition is inactive")
    return td


def check_basics(params: dict[str, Any]) -> None:
    if not 1 <= params.get("count", 1) <= 10:
        raise invalid_parameter("count must be between 1 and 10.")
    if len(params.get("startedBy") or "") > 128:
        raise invalid_parameter("startedBy must be no more than 128 characters.")
    if len(params.get("group") or "") > 255:
        raise invalid_parameter("group must be no more than 255 characters.")
    check_tags(params.get("tags"))


def _check_strategy(strategy: list[dict], cluster: Cluster) -> None:
    names = [item["capacityProvider"] for item in strategy]
    if len(set(names)) != len(names):
        raise invalid_parameter("The capacity provider strategy cannot contain duplicate capacity providers.")
    for name in names:
        if name not in cluster.capacity_providers:
            raise invalid_parameter(
                "The specified capacity provider strategy cannot contain a capacity provider that is not "
                "associated with the cluster. Associate the capacity provider with the cluster or specify "
                "a valid capacity provider and try again."
            )
    if len(strategy) > 1 and not any(item.get("weight", 0) > 0 for item in strategy):
        raise invalid_parameter("At least one capacity provider in the strategy must have a weight greater than zero.")
    if sum(1 for item in strategy if item.get("base", 0) > 0) > 1:
        raise invalid_parameter("Only one capacity provider in a strategy can have a base defined.")


def launch_target(params: dict[str, Any], cluster: Cluster, td: TaskDefinition) -> tuple[str, list[dict]]:
    """(launchType, capacity provider strategy) the tasks will run on."""
    launch_type, strategy = params.get("launchType"), params.get("capacityProviderStrategy")
    if launch_type and strategy:
        raise invalid_parameter(
            "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."
        )
    if not launch_type and not strategy:
        strategy = cluster.default_strategy
        launch_type = None if strategy else "EC2"  # ECS's default when the cluster has no strategy
    if launch_type and launch_type != "FARGATE":
        raise invalid_parameter("No Container Instances were found in your cluster.")
    if strategy:
        _check_strategy(strategy, cluster)
    if "FARGATE" not in td.compatibilities:
        raise invalid_parameter("Task definition does not support launch_type FARGATE.")
    version = params.get("platformVersion")
    if version is not None and version not in PLATFORM_VERSIONS:
        raise invalid_parameter("The specified platform does not exist.")
    return "FARGATE", strategy or []


def pick_provider(strategy: list[dict], index: int, rng_choice) -> str | None:
    """Capacity provider for the index-th task: ``base`` first, then by ``weight``."""
    if not strategy:
        return None
    for item in strategy:
        if item.get("base", 0) > index:
            return item["capacityProvider"]
    weights = [item.get("weight", 0) for item in strategy]
    if not any(weights):
        return strategy[0]["capacityProvider"]
    return strategy[rng_choice(weights)]["capacityProvider"]


def check_network(params: dict[str, Any], td: TaskDefinition) -> str | None:
    """The subnet the task's ENI goes into (awsvpc), validating the configuration."""
    awsvpc = (params.get("networkConfiguration") or {}).get("awsvpcConfiguration")
    if td.network_mode != "awsvpc":
        if awsvpc:
            raise invalid_parameter(
                "Network Configuration is not valid for the given networkMode of this task definition."
            )
        return None
    if not awsvpc:
        raise invalid_parameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
    subnets, groups = awsvpc["subnets"], awsvpc.get("securityGroups") or []
    if not subnets:
        raise invalid_parameter("subnets can not be empty.")
    if len(subnets) > 16:
        raise invalid_parameter("at most 16 subnets can be specified.")
    if len(groups) > 5:
        raise invalid_parameter("at most 5 securityGroups can be specified.")
    for subnet in subnets:
        if not subnet.startswith("subnet-"):
            raise invalid_parameter(
                f"Error retrieving subnet information for [{subnet}]: The subnet ID '{subnet}' is malformed"
            )
    for group in groups:
        if not group.startswith("sg-"):
            raise invalid_parameter(
                f"Error retrieving security group information for [{group}]: "
                f"The security group '{group}' does not exist"
            )
    return subnets[0]


def check_overrides(overrides: dict[str, Any], td: TaskDefinition) -> tuple[str | None, str | None]:
    """Validate RunTask ``overrides``; returns the task (cpu, memory) they set."""
    if len(json.dumps(overrides, separators=(",", ":"))) > OVERRIDES_LIMIT:
        raise invalid_parameter(f"Container Overrides length must be at most {OVERRIDES_LIMIT}")
    for item in overrides.get("containerOverrides") or []:
        name = item.get("name")
        if not name:
            raise invalid_parameter("Container overrides must specify a container name.")
        if td.container(name) is None:
            raise invalid_parameter(f"Override for container named {name} is not a container in the TaskDefinition.")
    cpu_text, memory_text = overrides.get("cpu"), overrides.get("memory")
    if cpu_text is None and memory_text is None:
        return td.body.get("cpu"), td.body.get("memory")
    cpu = fargate.parse_cpu(cpu_text if cpu_text is not None else td.body.get("cpu"))
    memory = fargate.parse_memory(memory_text if memory_text is not None else td.body.get("memory"))
    if not fargate.is_fargate_size(cpu, memory):
        raise client_error(fargate.no_fargate_configuration(cpu_text or td.body.get("cpu"),
                                                            memory_text or td.body.get("memory")))
    return str(cpu), str(memory)


def overrides_for_response(overrides: dict[str, Any], td: TaskDefinition) -> dict[str, Any]:
    """ECS echoes overrides with an entry per container, overridden or not."""
    given = {o["name"]: o for o in overrides.get("containerOverrides") or []}
    shown = dict(overrides)
    shown["containerOverrides"] = [given.get(c["name"], {"name": c["name"]}) for c in td.containers]
    shown.setdefault("inferenceAcceleratorOverrides", [])
    return shown


def container_runtime(td: TaskDefinition, overrides: dict[str, Any]) -> tuple[str, list[str], dict[str, str]]:
    """(primary container name, argv, environment) after applying overrides."""
    primary = next(c for c in td.containers if c["essential"])
    override = next((o for o in overrides.get("containerOverrides") or [] if o.get("name") == primary["name"]), {})
    command = override.get("command") if override.get("command") is not None else primary.get("command") or []
    env = env_list_to_dict(primary.get("environment"))
    env.update(env_list_to_dict(override.get("environment")))
    return primary["name"], list(primary.get("entryPoint") or []) + list(command), env


def log_target(td: TaskDefinition, container: str, task_id: str) -> tuple[str, str, bool] | None:
    """awslogs group and stream ``{prefix}/{container}/{task id}``, as ECS names it."""
    config = td.container(container).get("logConfiguration") or {}
    options = config.get("options") or {}
    if config.get("logDriver") != "awslogs" or "awslogs-group" not in options:
        return None
    prefix = options.get("awslogs-stream-prefix")
    stream = f"{prefix}/{container}/{task_id}" if prefix else task_id
    return options["awslogs-group"], stream, options.get("awslogs-create-group", "").lower() == "true"


def fingerprint(params: dict[str, Any], cluster: Cluster) -> str:
    """Identity of a RunTask request for clientToken idempotency."""
    same = {k: v for k, v in params.items() if k != "clientToken"}
    same["cluster"] = cluster.arn
    return json.dumps(same, sort_keys=True)


def private_ip(rng: random.Random) -> str:
    return f"10.0.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
