"""Container groups as the emulator holds them, and how they are rendered on the wire.

A group keeps the (validated) body the client PUT, plus what ACI adds: the
provisioning state, the group's instance view (state, events) and, per
container, the run state (current/previous state, restart count, events,
the output lines of the current run). ``to_api`` renders GET's answer;
``instance_view=False`` renders what List answers in production (no
``instanceView`` anywhere).
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

GROUP_TYPE = "Microsoft.ContainerInstance/containerGroups"

# Container run phases (emulator-internal; the wire shows Waiting/Running/Terminated).
PULLING, STARTING, RUNNING, BACKOFF, TERMINATED = "pulling", "starting", "running", "backoff", "terminated"


def iso(t: float | None) -> str | None:
    """ARM timestamps: UTC, ISO 8601 with a Z."""
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Event:
    name: str
    message: str
    type: str
    first: float
    last: float
    count: int = 1

    def to_api(self) -> dict[str, Any]:
        return {"count": self.count, "firstTimestamp": iso(self.first), "lastTimestamp": iso(self.last),
                "name": self.name, "message": self.message, "type": self.type}


def record_event(events: list[Event], name: str, message: str, at: float, type_: str = "Normal") -> None:
    """Kubernetes-style aggregation, as ACI shows it: a repeated event bumps ``count`` and ``lastTimestamp``."""
    for event in events:
        if event.name == name and event.message == message:
            event.count += 1
            event.last = at
            return
    events.append(Event(name, message, type_, at, at))


@dataclass
class State:
    state: str  # Waiting, Running, Terminated
    start: float | None = None
    finish: float | None = None
    exit_code: int | None = None
    detail: str | None = None

    def to_api(self) -> dict[str, Any]:
        out = {"state": self.state, "startTime": iso(self.start), "exitCode": self.exit_code,
               "finishTime": iso(self.finish), "detailStatus": self.detail}
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class RunPlan:
    """How a non-executed container behaves: how long it runs and its exit code."""

    run_s: float
    exit_code: int


@dataclass
class Container:
    name: str
    image: str
    command: list[str]
    env: dict[str, str]
    plan: RunPlan
    phase: str = PULLING
    phase_since: float = 0.0
    current: State | None = None
    previous: State | None = None
    restart_count: int = 0
    events: list[Event] = field(default_factory=list)
    output: list[tuple[float, str]] = field(default_factory=list)
    """(timestamp, line) of the current run, what the logs endpoint serves."""
    run: int = 0
    """Runs started so far; an executed process reports its exit under this number, so a stale exit is ignored."""
    pull_attempts: int = 0
    stop_requested: bool = False

    def instance_view(self) -> dict[str, Any]:
        view: dict[str, Any] = {"restartCount": self.restart_count, "events": [e.to_api() for e in self.events]}
        if self.current is not None:
            view["currentState"] = self.current.to_api()
        if self.previous is not None:
            view["previousState"] = self.previous.to_api()
        return view


@dataclass
class ContainerGroup:
    subscription: str
    resource_group: str
    name: str
    location: str
    body: dict[str, Any]
    containers: list[Container]
    restart_policy: str
    cpu: float
    memory_gb: float
    gpu_count: int = 0
    provisioning_state: str = "Pending"
    state: str = "Pending"
    phase_since: float = 0.0
    events: list[Event] = field(default_factory=list)
    pull_fails: bool = False
    """Decided at create time (fault knob): this deployment's image pull will fail."""
    puts: int = 1
    """PUTs of this name since it was created: every PUT after the first redeployed (restarted) the group."""
    principal_ids: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"{GROUP_TYPE}/{self.name}")

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    def to_api(self, instance_view: bool = True) -> dict[str, Any]:
        body = copy.deepcopy(self.body)
        props = body["properties"]
        props["provisioningState"] = self.provisioning_state
        props.setdefault("restartPolicy", self.restart_policy)
        props.setdefault("sku", "Standard")
        for spec, container in zip(props["containers"], self.containers):
            _hide_secrets(spec["properties"])
            spec["properties"].pop("instanceView", None)
            if instance_view:
                spec["properties"]["instanceView"] = container.instance_view()
        for credential in props.get("imageRegistryCredentials") or []:
            credential.pop("password", None)  # ACI never echoes registry passwords
        if instance_view:
            props["instanceView"] = {"events": [e.to_api() for e in self.events], "state": self.state}
        else:
            props.pop("instanceView", None)
        self._add_identity_ids(body)
        return {"id": self.id, "name": self.name, "type": GROUP_TYPE, **body}

    def _add_identity_ids(self, body: dict[str, Any]) -> None:
        identity = body.get("identity")
        if not identity or identity.get("type") == "None":
            return
        if "SystemAssigned" in identity["type"]:
            identity["principalId"] = self.principal_ids.setdefault("system", str(uuid.uuid4()))
            identity["tenantId"] = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        for resource_id, value in (identity.get("userAssignedIdentities") or {}).items():
            principal = self.principal_ids.setdefault(resource_id, str(uuid.uuid4()))
            value.update(principalId=principal, clientId=str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id)))


def _hide_secrets(container_props: dict[str, Any]) -> None:
    """Secure environment variables come back by name only, as ACI shows them."""
    for variable in container_props.get("environmentVariables") or []:
        variable.pop("secureValue", None)
