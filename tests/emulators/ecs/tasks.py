"""Emulated ECS tasks and their containers, and how DescribeTasks shows them.

A ``Task`` is plain data; ``lifecycle.py`` moves it through
PROVISIONING → PENDING → RUNNING → (STOPPING) → DEPROVISIONING → STOPPED.
Tests may read these objects through ``EcsEmulator.tasks``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clusters import Cluster
from .taskdefs import TaskDefinition
from .util import epoch, without_none

# lastStatus values ECS reports before a task's containers have started
BEFORE_RUNNING = ("PROVISIONING", "PENDING")


@dataclass
class Container:
    name: str
    arn: str
    image: str
    essential: bool
    cpu: int = 0
    memory: int | None = None
    memory_reservation: int | None = None
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    runtime_id: str | None = None
    image_digest: str | None = None

    def to_api(self, task_arn: str, eni: Eni | None) -> dict[str, Any]:
        network = [{"attachmentId": eni.attachment_id, "privateIpv4Address": eni.ip}] if eni else []
        return without_none({
            "containerArn": self.arn,
            "taskArn": task_arn,
            "name": self.name,
            "image": self.image,
            "imageDigest": self.image_digest,
            "runtimeId": self.runtime_id,
            "lastStatus": self.last_status,
            "exitCode": self.exit_code,
            "reason": self.reason,
            "networkBindings": [],
            "networkInterfaces": network,
            "healthStatus": "UNKNOWN",
            "cpu": str(self.cpu),
            "memory": None if self.memory is None else str(self.memory),
            "memoryReservation": None if self.memory_reservation is None else str(self.memory_reservation),
        })


@dataclass
class Eni:
    """The elastic network interface an awsvpc task gets, shown as an attachment."""

    attachment_id: str
    eni_id: str
    subnet: str
    ip: str
    mac: str
    status: str = "PRECREATED"

    def to_api(self, region: str) -> dict[str, Any]:
        details = [{"name": "subnetId", "value": self.subnet}]
        if self.status != "PRECREATED":
            details += [
                {"name": "networkInterfaceId", "value": self.eni_id},
                {"name": "macAddress", "value": self.mac},
                {"name": "privateDnsName", "value": f"ip-{self.ip.replace('.', '-')}.{region}.compute.internal"},
                {"name": "privateIPv4Address", "value": self.ip},
            ]
        return {"id": self.attachment_id, "type": "ElasticNetworkInterface", "status": self.status,
                "details": details}


@dataclass
class RunPlan:
    """How the task will behave, fixed when RunTask accepts it."""

    run_s: float
    exit_code: int
    start_failure: str | None = None
    spot_at: float | None = None  # set when the task is chosen for a Spot interruption


@dataclass
class Task:
    arn: str
    id: str
    cluster: Cluster
    task_definition: TaskDefinition
    region: str
    launch_type: str
    capacity_provider: str | None
    platform_version: str | None
    cpu: str | None
    memory: str | None
    overrides: dict[str, Any]
    tags: list[dict]
    started_by: str | None
    group: str
    containers: list[Container]
    eni: Eni | None
    primary: str
    """Name of the essential container whose command the emulator runs."""
    command: list[str]
    environment: dict[str, str]
    log_target: tuple[str, str, bool] | None
    """(awslogs group, stream, awslogs-create-group) of the primary container."""
    plan: RunPlan
    created_at: float
    enable_execute_command: bool = False
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    stop_code: str | None = None
    stopped_reason: str | None = None
    phase_since: float = 0.0
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    connectivity_at: float | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    execution_stopped_at: float | None = None
    stopped_at: float | None = None
    version: int = 1
    process: Any = None
    """The executor's handle on the running process (execute mode)."""
    output: list[str] = field(default_factory=list)
    """Lines the primary container printed (execute mode), for assertions."""
    history: list[tuple[str, float]] = field(default_factory=list)
    """Every lastStatus the task went through, with the time it was entered."""

    def __post_init__(self) -> None:
        self.history.append((self.last_status, self.created_at))

    @property
    def family(self) -> str:
        return self.task_definition.family

    @property
    def exit_code(self) -> int | None:
        return self.container(self.primary).exit_code

    def container(self, name: str) -> Container:
        return next(c for c in self.containers if c.name == name)

    def set_status(self, status: str, at: float) -> None:
        self.last_status, self.phase_since = status, at
        self.history.append((status, at))
        self.version += 1

    def to_api(self, include_tags: bool = False) -> dict[str, Any]:
        return without_none({
            "taskArn": self.arn,
            "clusterArn": self.cluster.arn,
            "taskDefinitionArn": self.task_definition.arn,
            "availabilityZone": f"{self.region}a",
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": self.launch_type,
            "capacityProviderName": self.capacity_provider,
            "platformVersion": self.platform_version,
            "platformFamily": "Linux" if self.launch_type == "FARGATE" else None,
            "cpu": self.cpu,
            "memory": self.memory,
            "connectivity": "CONNECTED" if self.connectivity_at else None,
            "connectivityAt": epoch(self.connectivity_at),
            "createdAt": epoch(self.created_at),
            "pullStartedAt": epoch(self.pull_started_at),
            "pullStoppedAt": epoch(self.pull_stopped_at),
            "startedAt": epoch(self.started_at),
            "stoppingAt": epoch(self.stopping_at),
            "executionStoppedAt": epoch(self.execution_stopped_at),
            "stoppedAt": epoch(self.stopped_at),
            "stopCode": self.stop_code,
            "stoppedReason": self.stopped_reason,
            "containers": [c.to_api(self.arn, self.eni) for c in self.containers],
            "attachments": [self.eni.to_api(self.region)] if self.eni else [],
            "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
            "group": self.group,
            "startedBy": self.started_by,
            "overrides": self.overrides,
            "tags": list(self.tags) if include_tags else None,
            "healthStatus": "UNKNOWN",
            "enableExecuteCommand": self.enable_execute_command,
            "ephemeralStorage": {"sizeInGiB": 20} if self.launch_type == "FARGATE" else None,
            "version": self.version,
            "inferenceAccelerators": [],
        })
