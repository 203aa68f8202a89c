"""Task definitions: registration rules, revisions, lookup and listing."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from . import fargate
from .errors import client_error
from .util import check_tags, epoch, paginate, without_none

_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_ECR_IMAGE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/")
# What ECS fills into each container definition it stores.
_CONTAINER_DEFAULTS = {"cpu": 0, "portMappings": [], "essential": True, "environment": [],
                       "mountPoints": [], "volumesFrom": []}


@dataclass
class TaskDefinition:
    family: str
    revision: int
    arn: str
    body: dict[str, Any]
    registered_at: float
    registered_by: str
    tags: list[dict] = field(default_factory=list)
    status: str = "ACTIVE"
    deregistered_at: float | None = None

    @property
    def containers(self) -> list[dict[str, Any]]:
        return self.body["containerDefinitions"]

    def container(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.containers if c["name"] == name), None)

    @property
    def network_mode(self) -> str:
        return self.body.get("networkMode", "bridge")

    @property
    def compatibilities(self) -> list[str]:
        return self.body["compatibilities"]

    def to_api(self) -> dict[str, Any]:
        data = copy.deepcopy(self.body)
        data.update(status=self.status, registeredAt=epoch(self.registered_at), registeredBy=self.registered_by)
        if self.deregistered_at is not None:
            data["deregisteredAt"] = epoch(self.deregistered_at)
        return data


def _normalise_container(spec: dict[str, Any], awsvpc: bool) -> dict[str, Any]:
    if not spec.get("name"):
        raise client_error("Container.name should not be null or empty.")
    if not spec.get("image"):
        raise client_error("Container.image should not be null or empty.")
    container = {**copy.deepcopy(_CONTAINER_DEFAULTS), **copy.deepcopy(spec)}
    for mapping in container["portMappings"]:
        host = mapping.get("hostPort")
        if awsvpc and host not in (None, mapping.get("containerPort")):
            raise client_error(
                "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
            )
        if awsvpc and "containerPort" in mapping:
            mapping.setdefault("hostPort", mapping["containerPort"])
        mapping.setdefault("protocol", "tcp")
    return container


def _check_containers(containers: list[dict], params: dict[str, Any], task_memory: int | None) -> None:
    names = [c["name"] for c in containers]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise client_error(f"Duplicate container name found: {duplicate}.")
    if not any(c["essential"] for c in containers):
        raise client_error("Task definition must have at least one essential container.")
    for c in containers:
        if task_memory is None and c.get("memory") is None and c.get("memoryReservation") is None:
            raise client_error(
                f"Invalid setting for container '{c['name']}'. "
                "At least one of 'memory' or 'memoryReservation' must be specified."
            )
        if c.get("secrets") and not params.get("executionRoleArn"):
            raise client_error(
                "When you are specifying container secrets, you must also specify a value for 'executionRole'."
            )


def _check_fargate(params: dict[str, Any], containers: list[dict], cpu: int | None, memory: int | None) -> None:
    """What RegisterTaskDefinition enforces for ``requiresCompatibilities: [FARGATE]``."""
    if params.get("networkMode") != "awsvpc":
        raise client_error("Fargate only supports network mode 'awsvpc'.")
    if params.get("cpu") is None:
        raise client_error("Fargate requires that 'cpu' be defined at the task level.")
    if params.get("memory") is None:
        raise client_error("Fargate requires that 'memory' be defined at the task level.")
    if not fargate.is_fargate_size(cpu, memory):
        raise client_error(fargate.no_fargate_configuration(params["cpu"], params["memory"]))
    if params.get("executionRoleArn"):
        return
    for c in containers:
        if (c.get("logConfiguration") or {}).get("logDriver") == "awslogs":
            raise client_error(
                "Fargate requires task definition to have execution role ARN to support log driver awslogs."
            )
        if _ECR_IMAGE.match(c["image"]):
            raise client_error("Fargate requires task definition to have execution role ARN to support ECR images.")


def _task_size(params: dict[str, Any]) -> tuple[int | None, int | None]:
    cpu, memory = fargate.parse_cpu(params.get("cpu")), fargate.parse_memory(params.get("memory"))
    if params.get("cpu") is not None and cpu is None:
        raise client_error(f"Invalid 'cpu' setting for task: {params['cpu']}.")
    if params.get("memory") is not None and memory is None:
        raise client_error(f"Invalid 'memory' setting for task: {params['memory']}.")
    return cpu, memory


def _required_attributes(params: dict[str, Any], containers: list[dict]) -> list[dict]:
    names = ["com.amazonaws.ecs.capability.docker-remote-api.1.18"]
    if params.get("networkMode") == "awsvpc":
        names.append("ecs.capability.task-eni")
    if params.get("taskRoleArn"):
        names.append("com.amazonaws.ecs.capability.task-iam-role")
    for c in containers:
        if (c.get("logConfiguration") or {}).get("logDriver") == "awslogs":
            names.append("com.amazonaws.ecs.capability.logging-driver.awslogs")
            if params.get("executionRoleArn"):
                names.append("ecs.capability.execution-role-awslogs")
    return [{"name": n} for n in dict.fromkeys(names)]


class TaskDefinitionStore:
    def __init__(self, region: str, account: str):
        self._prefix = f"arn:aws:ecs:{region}:{account}:task-definition/"
        self._registered_by = f"arn:aws:iam::{account}:root"
        self._families: dict[str, list[TaskDefinition]] = {}

    def register(self, params: dict[str, Any], now: float) -> TaskDefinition:
        family = params["family"]
        if not _FAMILY.match(family):
            raise client_error("Family contains invalid characters. Up to 255 letters (uppercase and lowercase), "
                               "numbers, hyphens, and underscores are allowed.")
        awsvpc = params.get("networkMode") == "awsvpc"
        containers = [_normalise_container(c, awsvpc) for c in params["containerDefinitions"]]
        if not containers:
            raise client_error("Container list cannot be empty.")
        cpu, memory = _task_size(params)
        if "FARGATE" in (params.get("requiresCompatibilities") or []):
            _check_fargate(params, containers, cpu, memory)
        _check_containers(containers, params, memory)
        check_tags(params.get("tags"))
        revision = len(self._families.get(family, [])) + 1
        body = {k: copy.deepcopy(v) for k, v in params.items() if k not in ("tags", "containerDefinitions")}
        body.update(without_none({
            "taskDefinitionArn": f"{self._prefix}{family}:{revision}",
            "containerDefinitions": containers,
            "revision": revision,
            "cpu": None if cpu is None else str(cpu),
            "memory": None if memory is None else str(memory),
        }))
        body.setdefault("volumes", [])
        body.setdefault("placementConstraints", [])
        body["requiresAttributes"] = _required_attributes(params, containers)
        fargate_ok = awsvpc and fargate.is_fargate_size(cpu, memory)
        body["compatibilities"] = ["EC2", "FARGATE"] if fargate_ok else ["EC2"]
        td = TaskDefinition(family, revision, body["taskDefinitionArn"], body, now, self._registered_by,
                            list(params.get("tags") or []))
        self._families.setdefault(family, []).append(td)
        return td

    def lookup(self, ref: str) -> TaskDefinition | None:
        """Resolve an ARN, ``family:revision`` or ``family`` (latest ACTIVE revision)."""
        if ref.startswith("arn:"):
            if not ref.startswith(self._prefix):
                return None
            ref = ref[len(self._prefix):]
        family, sep, rev = ref.partition(":")
        revisions = self._families.get(family, [])
        if not sep:
            active = [td for td in revisions if td.status == "ACTIVE"]
            return active[-1] if active else None
        if not rev.isdigit():
            raise client_error(f"Invalid revision number. Number: {rev}")
        number = int(rev)
        return revisions[number - 1] if 1 <= number <= len(revisions) else None

    def all(self) -> list[TaskDefinition]:
        return [td for revisions in self._families.values() for td in revisions]

    def deregister(self, ref: str, now: float) -> TaskDefinition:
        family = ref[len(self._prefix):] if ref.startswith(self._prefix) else ref
        if ":" not in family:
            raise client_error("A task definition revision must be specified to deregister it.")
        td = self.lookup(ref)
        if td is None:
            raise client_error("The specified task definition does not exist.")
        if td.status == "ACTIVE":
            td.status, td.deregistered_at = "INACTIVE", now
        return td

    def list_arns(self, params: dict[str, Any]) -> dict[str, Any]:
        status = params.get("status") or "ACTIVE"
        family = params.get("familyPrefix")  # despite its name ECS matches the full family
        found = [td for td in self.all() if td.status == status and (family is None or td.family == family)]
        found.sort(key=lambda td: (td.family, td.revision), reverse=params.get("sort") == "DESC")
        page, token = paginate([td.arn for td in found], params)
        return without_none({"taskDefinitionArns": page, "nextToken": token})

    def list_families(self, params: dict[str, Any]) -> dict[str, Any]:
        status, prefix = params.get("status") or "ALL", params.get("familyPrefix") or ""
        families = []
        for family, revisions in sorted(self._families.items()):
            active = any(td.status == "ACTIVE" for td in revisions)
            if family.startswith(prefix) and (status == "ALL" or active == (status == "ACTIVE")):
                families.append(family)
        page, token = paginate(families, params)
        return without_none({"families": page, "nextToken": token})
