"""The emulated subscription: resource groups, container groups, operations, and what ACI does with them.

One re-entrant lock guards everything; every API call and every ticker
pass takes it, so the HTTP threads, the ticker and the executor's reaper
threads see one consistent world. Request bodies arrive already checked
against the SDK model (``validation.py``) and ACI's rules (``rules.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.mgmt.containerinstance.models import ContainerGroup as ContainerGroupModel

from ..kit import RunDefaults
from ..kit.validation import Issue
from . import errors, rules
from .executor import Executor
from .faults import AciFaultDice
from .groups import GROUP_TYPE, Container, ContainerGroup, RunPlan
from .lifecycle import Lifecycle, Timings
from .lro import DELETE, DEPLOY, Operation, Operations
from .networks import VirtualNetworks
from .quotas import Quotas
from .validation import raise_remaining

STOPPED_LOG_LINES, STOPPED_LOG_BYTES = 1000, 16 * 1024  # what ACI keeps of a terminated container's log


class Backend:
    def __init__(self, subscription: str, resource_groups: dict[str, str], locations: tuple[str, ...], *,
                 dice: AciFaultDice, timings: Timings, defaults: RunDefaults, limits: rules.RegionLimits,
                 execute: bool, workdir: str, networks: VirtualNetworks, list_page_size: int = 100):
        self.subscription, self.locations, self.limits = subscription, locations, limits
        self.networks = networks
        self.list_page_size = list_page_size
        self.lock = threading.RLock()
        self.dice, self.timings, self.defaults = dice, timings, defaults
        self.resource_groups = {name.lower(): (name, location) for name, location in resource_groups.items()}
        self.groups: dict[tuple[str, str], ContainerGroup] = {}
        self.deleted: list[ContainerGroup] = []
        self._deleting: dict[tuple[str, str], float] = {}
        self.operations = Operations()
        self.quotas = Quotas(dice, subscription)
        self.executor = Executor(workdir, self._on_exit, self.lock) if execute else None
        self.lifecycle = Lifecycle(timings, dice, self.executor)
        self.deployments: Any = None
        """The ``deployments.Deployments`` of this subscription (set by it; deployments build on groups)."""

    # -- time ----------------------------------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            now = time.time()
            for key, due in list(self._deleting.items()):
                if now >= due:
                    self._remove(key)
            for group in self.groups.values():
                self.lifecycle.advance(group, now)

    def _on_exit(self, group: ContainerGroup, container: Container, run: int, code: int, at: float) -> None:
        self.lifecycle.advance(group, at)
        self.lifecycle.container_exited(group, container, run, code, at)

    # -- lookups -------------------------------------------------------------------------------

    def resource_group(self, name: str) -> tuple[str, str]:
        """(name as created, location); 404 ResourceGroupNotFound if absent."""
        found = self.resource_groups.get(name.lower())
        if found is None:
            raise errors.resource_group_not_found(name)
        return found

    def find(self, resource_group: str, name: str) -> ContainerGroup | None:
        return self.groups.get((resource_group.lower(), name.lower()))

    def get(self, resource_group: str, name: str) -> ContainerGroup:
        self.resource_group(resource_group)
        group = self.find(resource_group, name)
        if group is None:
            raise errors.resource_not_found(GROUP_TYPE, name, resource_group)
        return group

    def listing(self, resource_group: str | None) -> list[ContainerGroup]:
        if resource_group is not None:
            self.resource_group(resource_group)
        wanted = resource_group.lower() if resource_group else None
        return [g for (rg, _), g in sorted(self.groups.items()) if wanted in (None, rg)]

    # -- create / update -----------------------------------------------------------------------

    def put(self, resource_group: str, name: str, body: dict[str, Any],
            model_issues: list[Issue]) -> tuple[int, ContainerGroup, Operation]:
        """PUT: 201 with a new group, or 200 with an existing one updated, which redeploys (restarts) it.

        ``model_issues``: what the SDK model walk left (missing members), reported after ACI's own rules.
        """
        rg_name, _ = self.resource_group(resource_group)
        rules.check_group_name(name)
        location = rules.check_location(body, self.locations)
        size = rules.check_group(name, body, location, self.limits)
        raise_remaining(model_issues)
        if self.dice.faults.validate_network:
            group_id = (f"/subscriptions/{self.subscription}/resourceGroups/{rg_name}/providers/"
                        f"Microsoft.ContainerInstance/containerGroups/{name}")
            subnets = [s["id"] for s in body.get("properties", {}).get("subnetIds") or [] if s.get("id")]
            self.networks.check(group_id, name, location, subnets)
        # Store what ARM stored: the body as its reader typed it ("1" -> 1.0), read-only members dropped.
        body = ContainerGroupModel.deserialize(body).serialize()
        now = time.time()
        existing = self.find(resource_group, name)
        if existing is not None:
            return 200, existing, self._update(existing, body, location, now)
        self.quotas.admit_create(location, size, self.listing(None))
        for container in body["properties"]["containers"]:
            if container["properties"]["image"] in self.dice.faults.inaccessible_images:
                raise errors.inaccessible_image(container["properties"]["image"], name)
        group = ContainerGroup(
            self.subscription, rg_name, name, location, body, self._containers(body),
            body["properties"].get("restartPolicy") or "Always", size.cpu, size.memory_gb, size.gpu_count,
            pull_fails=self.dice.pull_failure())
        self.groups[(rg_name.lower(), name.lower())] = group
        self.lifecycle.deploy(group, now)
        return 201, group, self.operations.begin(DEPLOY, group, now)

    def _update(self, group: ContainerGroup, body: dict[str, Any], location: str, now: float) -> Operation:
        if (group.resource_group.lower(), group.name) in self._deleting:
            raise errors.conflict(f"The container group '{group.name}' is being deleted; another operation cannot "
                                  "run on it until the deletion completes.")
        if location != group.location:
            raise errors.bad_request(
                "InvalidResourceLocation",
                f"The resource '{group.name}' already exists in location '{group.location}' in resource group "
                f"'{group.resource_group}'. A resource with the same name cannot be created in location "
                f"'{location}'. Please select a new resource name.")
        old = {c.name: c for c in group.containers}
        group.body, group.puts = body, group.puts + 1
        group.restart_policy = body["properties"].get("restartPolicy") or "Always"
        group.containers = [self._carry_over(old.get(c.name), c) for c in self._containers(body)]
        group.state = "Pending"
        self.lifecycle.deploy(group, now)
        return self.operations.begin(DEPLOY, group, now)

    @staticmethod
    def _carry_over(old: Container | None, new: Container) -> Container:
        """An updated container keeps its history: state, restart count, events (the redeploy restarts it)."""
        if old is not None:
            new.current, new.previous, new.restart_count = old.current, old.previous, old.restart_count
            new.events, new.run, new.phase = old.events, old.run, old.phase
        return new

    def _containers(self, body: dict[str, Any]) -> list[Container]:
        out = []
        for spec in body["properties"]["containers"]:
            props = spec["properties"]
            env = {str(v["name"]): str(v.get("secureValue", v.get("value")) or "")
                   for v in props.get("environmentVariables") or []}
            out.append(Container(spec["name"], props["image"], [str(a) for a in props.get("command") or []], env,
                                 self._plan(env)))
        return out

    def _plan(self, env: dict[str, str]) -> RunPlan:
        try:
            return RunPlan(*self.defaults.plan(env))
        except ValueError as exc:
            raise errors.bad_request("InvalidEnvironmentVariable", str(exc)) from None

    def update_tags(self, resource_group: str, name: str, body: dict[str, Any]) -> ContainerGroup:
        group = self.get(resource_group, name)
        group.body["tags"] = dict(body.get("tags") or {})
        return group

    # -- actions -------------------------------------------------------------------------------

    def stop(self, resource_group: str, name: str) -> None:
        self.lifecycle.stop(self.get(resource_group, name), time.time())

    def start(self, resource_group: str, name: str) -> Operation:
        group = self.get(resource_group, name)
        now = time.time()
        if group.state != "Stopped":  # starting a running group changes nothing; the operation just succeeds
            return self.operations.begin(DEPLOY, group, now)
        self.lifecycle.deploy(group, now)
        return self.operations.begin(DEPLOY, group, now)

    def restart(self, resource_group: str, name: str) -> Operation:
        group = self.get(resource_group, name)
        now = time.time()
        self.lifecycle.deploy(group, now)
        return self.operations.begin(DEPLOY, group, now)

    def delete(self, resource_group: str, name: str) -> tuple[ContainerGroup | None, Operation | None]:
        """(group, None): deleted now; (group, op): deletion under way; (None, None): there was nothing."""
        self.resource_group(resource_group)
        group = self.find(resource_group, name)
        if group is None:
            return None, None
        key = (group.resource_group.lower(), group.name)
        if key in self._deleting:
            return group, self.operations.begin(DELETE, group, time.time())
        self.quotas.admit_delete()
        self.lifecycle.stop(group, time.time())
        if self.timings.delete_s <= 0:
            self._remove(key)
            return group, None
        group.provisioning_state = "Deleting"
        self._deleting[key] = time.time() + self.timings.delete_s
        return group, self.operations.begin(DELETE, group, time.time())

    def _remove(self, key: tuple[str, str]) -> None:
        self._deleting.pop(key, None)
        group = self.groups.pop(key, None)
        if group is not None:
            self.deleted.append(group)

    # -- reads ---------------------------------------------------------------------------------

    def logs(self, resource_group: str, name: str, container_name: str, tail: int | None,
             timestamps: bool) -> str:
        group = self.get(resource_group, name)
        container = group.container(container_name)
        if container is None:
            raise errors.resource_not_found(f"{GROUP_TYPE}/{name}/containers", container_name, resource_group)
        lines = [(f"{_rfc3339(t)} {line}" if timestamps else line) for t, line in container.output]
        if group.state in ("Stopped", "Succeeded", "Failed"):
            lines = _keep_tail_bytes(lines[-STOPPED_LOG_LINES:], STOPPED_LOG_BYTES)
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        return "".join(f"{line}\n" for line in lines)

    def operation(self, op_id: str) -> Operation | None:
        op = self.operations.get(op_id)
        if op is None:
            return None
        exists = self.groups.get((op.group.resource_group.lower(), op.group.name)) is op.group
        return self.operations.refresh(op, exists, time.time())

    def usages(self, location: str) -> list[dict[str, Any]]:
        return self.quotas.usages(location, self.listing(None))

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e6):06d}Z"


def _keep_tail_bytes(lines: list[str], limit: int) -> list[str]:
    kept, size = [], 0
    for line in reversed(lines):
        size += len(line.encode()) + 1
        if size > limit:
            break
        kept.append(line)
    return kept[::-1]
