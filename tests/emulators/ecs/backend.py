"""The emulated account's state and the task operations (RunTask & co).

One re-entrant lock guards everything; each API call and each ticker pass
takes it, so the HTTP threads, the ticker and the executor's reaper threads
see a consistent world.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..kit import RunDefaults
from . import runtask
from .clusters import Cluster, ClusterStore
from .ec2 import Ec2
from .errors import AwsError, invalid_parameter, throttled
from .executor import Executor
from .faults import EcsFaultDice
from .lifecycle import Lifecycle, Timings
from .logs import LogStore
from .taskdefs import TaskDefinition, TaskDefinitionStore
from .tasks import BEFORE_RUNNING, Container, Eni, RunPlan, Task
from .util import new_task_id, new_uuid, now, paginate, random_hex, without_none

IDEMPOTENCY_TTL_S = 24 * 3600  # RunTask client tokens live 24 hours


@dataclass
class _TokenUse:
    fingerprint: str
    task_arns: list[str]
    failures: list[dict]
    at: float


class Backend:
    def __init__(self, region: str, account: str, *, dice: EcsFaultDice, timings: Timings,
                 defaults: RunDefaults, execute: bool, workdir: str, auto_create_log_groups: bool, ec2: Ec2):
        self.region, self.account = region, account
        self.ec2 = ec2
        self.lock = threading.RLock()
        self.dice = dice
        self.defaults = defaults
        self.clusters = ClusterStore(region, account)
        self.taskdefs = TaskDefinitionStore(region, account)
        self.logs = LogStore(region, account)
        self.tasks: dict[str, Task] = {}
        self._by_id: dict[str, Task] = {}
        self._tokens: dict[tuple[str, str], _TokenUse] = {}
        self._rng = random.Random()
        self.executor = Executor(workdir, self._on_line, self._on_exit) if execute else None
        self.lifecycle = Lifecycle(timings, dice, self.logs, self.executor, auto_create_log_groups)

    # -- time -------------------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            t = now()
            for task in self.tasks.values():
                if task.last_status != "STOPPED":
                    self.lifecycle.advance(task, t)

    def _on_exit(self, task: Task, exit_code: int, at: float) -> None:
        with self.lock:
            self.lifecycle.advance(task, at)
            self.lifecycle.container_exited(task, exit_code, at)

    def _on_line(self, task: Task, line: str) -> None:
        if task.log_target:
            group, stream, _ = task.log_target
            self.logs.put(group, stream, line, int(now() * 1000))

    # -- RunTask ----------------------------------------------------------------

    def run_task(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.clusters.get(params.get("cluster"))
        token = params.get("clientToken")
        runtask.check_client_token(token)
        key, fingerprint = (cluster.arn, token or ""), runtask.fingerprint(params, cluster)
        previous = self._tokens.get(key) if token else None
        if previous and now() - previous.at < IDEMPOTENCY_TTL_S:
            return self._replay(previous, fingerprint)
        runtask.check_basics(params)
        td = runtask.resolve_task_definition(self.taskdefs, params["taskDefinition"])
        launch_type, strategy = runtask.launch_target(params, cluster, td)
        subnet = runtask.check_network(params, td)
        if subnet is not None and self.dice.faults.validate_network:
            awsvpc = params["networkConfiguration"]["awsvpcConfiguration"]
            self.ec2.check_task_network(awsvpc["subnets"], awsvpc.get("securityGroups") or [])
        cpu, memory = runtask.check_overrides(params.get("overrides") or {}, td)
        count = params.get("count", 1)
        providers = self._admit_launch(strategy, launch_type, count)
        tasks, failures = [], []
        if self.dice.capacity_failure():
            failures = [self._capacity_failure(cluster) for _ in range(count)]
        else:
            for index in range(count):
                provider = providers[index] if providers else runtask.pick_provider(strategy, index, self.dice.choice)
                tasks.append(self._new_task(params, cluster, td, launch_type, provider, subnet, cpu, memory))
        if token:
            self._tokens[key] = _TokenUse(fingerprint, [t.arn for t in tasks], failures, now())
        return {"tasks": [t.to_api() for t in tasks], "failures": failures}

    def _admit_launch(self, strategy: list[dict], launch_type: str, count: int) -> list[str | None] | None:
        """Fargate's launch rate (only if ``launch_limits`` are set: the default mode rolls nothing here).

        The providers are picked first, so each task is charged to its own bucket; over the rate the whole
        RunTask is refused with ThrottlingException and nothing is launched."""
        if not self.dice.faults.launch_limits:
            return None
        providers = [runtask.pick_provider(strategy, index, self.dice.choice) for index in range(count)]
        if not self.dice.launch_admits(Counter(p or launch_type for p in providers)):
            raise throttled()
        return providers

    def _replay(self, previous: _TokenUse, fingerprint: str) -> dict[str, Any]:
        if previous.fingerprint != fingerprint:
            raise AwsError(
                "ConflictException",
                "The RunTask request could not be processed due to conflicts. The provided clientToken is "
                "already in use with a different RunTask request.",
                resourceIds=previous.task_arns,
            )
        tasks = [self.tasks[arn].to_api() for arn in previous.task_arns]
        return {"tasks": tasks, "failures": previous.failures}

    def _capacity_failure(self, cluster: Cluster) -> dict[str, str]:
        instance = f"arn:aws:ecs:{self.region}:{self.account}:container-instance/{cluster.name}/{new_task_id()}"
        return {"arn": instance, "reason": self.dice.faults.capacity_failure_reason}

    def _plan(self, env: dict[str, str]) -> RunPlan:
        try:
            run_s, exit_code = self.defaults.plan(env)
        except ValueError as exc:
            raise invalid_parameter(str(exc)) from None
        failure = self.dice.faults.start_failure_reason if self.dice.take("start_failures") else None
        return RunPlan(run_s, exit_code, failure)

    def _new_task(self, params: dict[str, Any], cluster: Cluster, td: TaskDefinition, launch_type: str,
                  provider: str | None, subnet: str | None, cpu: str | None, memory: str | None) -> Task:
        task_id = new_task_id()
        arn = f"arn:aws:ecs:{self.region}:{self.account}:task/{cluster.name}/{task_id}"
        overrides = params.get("overrides") or {}
        primary, command, env = runtask.container_runtime(td, overrides)
        created = now()
        task = Task(
            arn=arn, id=task_id, cluster=cluster, task_definition=td, region=self.region,
            launch_type=launch_type, capacity_provider=provider, platform_version="1.4.0",
            cpu=cpu, memory=memory, overrides=runtask.overrides_for_response(overrides, td),
            tags=self._task_tags(params, td, cluster), started_by=params.get("startedBy"),
            group=params.get("group") or f"family:{td.family}",
            containers=[self._container(c, cluster, task_id) for c in td.containers],
            eni=self._eni(subnet), primary=primary, command=command, environment=env,
            log_target=runtask.log_target(td, primary, task_id), plan=self._plan(env),
            created_at=created, phase_since=created,
            enable_execute_command=bool(params.get("enableExecuteCommand")),
        )
        self.tasks[arn] = task
        self._by_id[task_id] = task
        return task

    def _container(self, spec: dict[str, Any], cluster: Cluster, task_id: str) -> Container:
        arn = f"arn:aws:ecs:{self.region}:{self.account}:container/{cluster.name}/{task_id}/{new_uuid()}"
        return Container(spec["name"], arn, spec["image"], spec["essential"], spec.get("cpu", 0),
                         spec.get("memory"), spec.get("memoryReservation"))

    def _eni(self, subnet: str | None) -> Eni | None:
        if subnet is None:
            return None
        mac = ":".join(random_hex(2, self._rng) for _ in range(6))
        return Eni(new_uuid(), "eni-" + random_hex(17, self._rng), subnet, runtask.private_ip(self._rng), mac)

    @staticmethod
    def _task_tags(params: dict[str, Any], td: TaskDefinition, cluster: Cluster) -> list[dict]:
        tags: dict[str, str] = {}
        if params.get("enableECSManagedTags"):
            tags["aws:ecs:clusterName"] = cluster.name
        if params.get("propagateTags") == "TASK_DEFINITION":
            tags.update({t["key"]: t.get("value", "") for t in td.tags})
        tags.update({t["key"]: t.get("value", "") for t in params.get("tags") or []})
        return [{"key": k, "value": v} for k, v in tags.items()]

    # -- DescribeTasks / StopTask / ListTasks -------------------------------------

    def find_task(self, cluster: Cluster, ref: str) -> Task | None:
        """Accepts a task ARN (new or old format) or a bare task id."""
        prefix = f"arn:aws:ecs:{self.region}:{self.account}:task/"
        cluster_name = None
        if ref.startswith("arn:"):
            if not ref.startswith(prefix):
                return None
            cluster_name, _, ref = ref[len(prefix):].rpartition("/")
        task = self._by_id.get(ref)
        if task is None or task.cluster is not cluster or cluster_name not in (None, "", cluster.name):
            return None
        return task

    def describe_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.clusters.get(params.get("cluster"))
        refs = params["tasks"]
        if not refs:
            raise invalid_parameter("Tasks cannot be empty.")
        if len(refs) > 100:
            raise invalid_parameter("Too many tasks were provided. A maximum of 100 tasks can be described at once.")
        include_tags = "TAGS" in (params.get("include") or [])
        found, failures, seen = [], [], set()
        for ref in refs:
            task = self.find_task(cluster, ref)
            if task is None:
                failures.append({"arn": ref, "reason": "MISSING"})
            elif task.arn not in seen:
                seen.add(task.arn)
                found.append(task.to_api(include_tags))
        return {"tasks": found, "failures": failures}

    def stop_task(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.clusters.get(params.get("cluster"))
        task = self.find_task(cluster, params["task"])
        if task is None:
            raise invalid_parameter("The referenced task was not found.")
        reason = params.get("reason") or "Task stopped by user"
        self.lifecycle.request_stop(task, now(), "UserInitiated", reason)
        return {"task": task.to_api()}

    def list_tasks(self, params: dict[str, Any]) -> dict[str, Any]:
        cluster = self.clusters.get(params.get("cluster"))
        if params.get("serviceName"):
            raise AwsError("ServiceNotFoundException", "Service not found.")
        wanted = {
            "desired_status": params.get("desiredStatus") or "RUNNING",
            "family": params.get("family"),
            "started_by": params.get("startedBy"),
            "launch_type": params.get("launchType"),
        }
        arns = [
            t.arn for t in self.tasks.values()
            if t.cluster is cluster and not params.get("containerInstance")
            and all(v is None or getattr(t, k) == v for k, v in wanted.items())
        ]
        page, token = paginate(arns, params)
        return without_none({"taskArns": page, "nextToken": token})

    def task_counts(self, cluster: Cluster) -> dict[str, int]:
        mine = [t for t in self.tasks.values() if t.cluster is cluster]
        return {
            "running": sum(t.last_status == "RUNNING" for t in mine),
            "pending": sum(t.last_status in BEFORE_RUNNING for t in mine),
        }

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()
