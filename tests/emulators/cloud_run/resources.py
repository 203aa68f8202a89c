"""Jobs, executions and tasks as the emulator keeps them, and their API views (enum names, camelCase).

The views are plain dicts the protocol checks against ``run_v2`` and prints
with the requested enum encoding. Times are epoch seconds here and RFC 3339
on the wire. Condition messages follow what the real service writes
(``Provisioned imported containers.``, ``Started deployed execution in
56.03s.``, ``Task x-task0 failed with exit code: 1 and message: The
container exited with an error.``).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .codec import go_duration, rfc3339
from .errors import RPC_CODES

PENDING, RUNNING, CANCELLING, DONE = "PENDING", "RUNNING", "CANCELLING", "DONE"
SUCCEEDED, FAILED, CANCELLED = "SUCCEEDED", "FAILED", "CANCELLED"
TASK_FINAL = {SUCCEEDED, FAILED, CANCELLED}
EXITED_WITH_ERROR = "The container exited with an error."
TIMED_OUT = "The configured timeout was reached."


def etag(*parts: object) -> str:
    return '"' + hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:24] + '"'


def condition(type_: str, state: str, at: float, message: str | None = None, **extra: str) -> dict[str, Any]:
    found = {"type": type_, "state": f"CONDITION_{state}", "lastTransitionTime": rfc3339(at), **extra}
    if message:
        found["message"] = message
    return found


@dataclass
class Job:
    name: str
    job_id: str
    uid: str
    spec: dict[str, Any]
    """The Job as created (labels, annotations, launchStage, client, template...), defaults filled in."""
    created_at: float
    ready_at: float
    missing_image: str | None = None
    """An image the registry does not have: Ready fails with CONTAINER_MISSING."""
    execution_count: int = 0
    latest: Execution | None = None
    deleted_at: float | None = None

    @property
    def template(self) -> dict[str, Any]:
        return self.spec["template"]

    @property
    def launch_stage(self) -> str:
        return self.spec.get("launchStage", "GA")

    def ready(self, now: float) -> bool:
        return self.missing_image is None and now >= self.ready_at

    def to_api(self, now: float, creator: str) -> dict[str, Any]:
        api = {**self.spec, "name": self.name, "uid": self.uid, "generation": "1", "createTime": rfc3339(
            self.created_at), "updateTime": rfc3339(self.created_at), "creator": creator, "lastModifier": creator,
            "observedGeneration": "1", "terminalCondition": self._ready_condition(now),
            "executionCount": self.execution_count, "latestCreatedExecution": self._latest(now),
            "reconciling": not self.ready(now) and self.missing_image is None,
            "etag": etag(self.uid, self.execution_count, self.deleted_at)}
        if self.deleted_at is not None:
            api |= {"deleteTime": rfc3339(self.deleted_at), "expireTime": rfc3339(self.deleted_at + 30 * 86400)}
        return api

    def _ready_condition(self, now: float) -> dict[str, Any]:
        if self.missing_image is not None:
            return condition("Ready", "FAILED", self.created_at, f"Image '{self.missing_image}' not found.",
                             reason="CONTAINER_MISSING")
        if now < self.ready_at:
            return condition("Ready", "RECONCILING", self.created_at, "Creating job.")
        return condition("Ready", "SUCCEEDED", self.ready_at)

    def _latest(self, now: float) -> dict[str, Any]:
        ex = self.latest
        if ex is None:
            return {}  # Prefect's JobV2.get reads the key even before the first run
        ref = {"name": ex.name, "createTime": rfc3339(ex.created_at), "completionStatus": ex.completion_status()}
        if ex.completed_at is not None:
            ref["completionTime"] = rfc3339(ex.completed_at)
        return ref


@dataclass
class AttemptResult:
    code: str
    """google.rpc.Code name: OK, UNKNOWN (non-zero exit), DEADLINE_EXCEEDED, CANCELLED..."""
    message: str = ""
    exit_code: int | None = None
    term_signal: int | None = None


@dataclass
class Task:
    index: int
    run_s: float
    exit_code: int
    state: str = PENDING
    retried: int = 0
    not_before: float = 0.0
    """Earliest start of the next attempt (retries back off)."""
    scheduled_at: float | None = None
    started_at: float | None = None
    completed_at: float | None = None
    timed_out: bool = False
    result: AttemptResult | None = None
    output: list[str] = field(default_factory=list)
    """Execute mode: every stdout/stderr line of every attempt."""
    process: subprocess.Popen | None = None


@dataclass
class Execution:
    name: str
    short_name: str
    job: Job
    uid: str
    template: dict[str, Any]
    """The ExecutionTemplate with the run's overrides applied (merged env, args, taskCount, timeout)."""
    created_at: float
    tasks: list[Task]
    log_uri: str
    start_failure: str | None = None
    phase: str = PENDING
    outcome: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    cancel_at: float | None = None
    sim_at: float = 0.0
    """Simulated time the lifecycle has processed this execution up to."""
    failed_task: Task | None = None
    deleted_at: float | None = None

    @property
    def task_template(self) -> dict[str, Any]:
        return self.template["template"]

    @property
    def timeout_s(self) -> float:
        return float(self.task_template["timeout"].rstrip("s"))

    @property
    def max_retries(self) -> int:
        return self.task_template.get("maxRetries", 0)

    @property
    def parallelism(self) -> int:
        return self.template.get("parallelism") or len(self.tasks)

    def task_name(self, task: Task) -> str:
        return f"{self.name}/tasks/{self.short_name}-task{task.index}"

    def count(self, state: str) -> int:
        return sum(task.state == state for task in self.tasks)

    def completion_status(self) -> str:
        if self.outcome is not None:
            return f"EXECUTION_{self.outcome}"
        return "EXECUTION_RUNNING" if self.started_at is not None else "EXECUTION_PENDING"

    def to_api(self) -> dict[str, Any]:
        api = {"name": self.name, "uid": self.uid, "generation": "1", "labels": self.template.get("labels", {}),
               "annotations": self.template.get("annotations", {}), "createTime": rfc3339(self.created_at),
               "updateTime": rfc3339(self._updated_at()), "launchStage": self.job.launch_stage,
               "job": self.job.job_id, "parallelism": self.parallelism, "taskCount": len(self.tasks),
               "template": self.task_template, "reconciling": self.phase != DONE,
               "conditions": execution_conditions(self), "observedGeneration": "1",
               "runningCount": self.count(RUNNING), "succeededCount": self.count(SUCCEEDED),
               "failedCount": self.count(FAILED), "cancelledCount": self.count(CANCELLED),
               "retriedCount": sum(task.retried > 0 for task in self.tasks), "logUri": self.log_uri,
               "etag": etag(self.uid, self.phase, self._updated_at())}
        for key, at in (("startTime", self.started_at), ("completionTime", self.completed_at),
                        ("deleteTime", self.deleted_at)):
            if at is not None:
                api[key] = rfc3339(at)
        return api

    def _updated_at(self) -> float:
        times = [self.created_at, self.started_at, self.completed_at, self.cancel_at, self.deleted_at]
        times += [t for task in self.tasks for t in (task.started_at, task.completed_at)]
        return max(t for t in times if t is not None)

    def task_to_api(self, task: Task) -> dict[str, Any]:
        api = {"name": self.task_name(task), "uid": f"{self.uid[:-4]}{task.index:04d}", "generation": "1",
               "labels": self.template.get("labels", {}), "createTime": rfc3339(self.created_at),
               "updateTime": rfc3339(task.completed_at or task.started_at or self.created_at),
               "job": self.job.job_id, "execution": self.short_name,
               "containers": self.task_template["containers"], "maxRetries": self.max_retries,
               "timeout": self.task_template["timeout"], "serviceAccount": self.task_template.get("serviceAccount", ""),
               "reconciling": task.state not in TASK_FINAL, "conditions": [task_condition(self, task)],
               "observedGeneration": "1", "index": task.index, "retried": task.retried, "logUri": self.log_uri,
               "etag": etag(self.uid, task.index, task.state, task.retried)}
        for key, at in (("scheduledTime", task.scheduled_at), ("startTime", task.started_at),
                        ("completionTime", task.completed_at)):
            if at is not None:
                api[key] = rfc3339(at)
        if task.result is not None:
            api["lastAttemptResult"] = attempt_result_to_api(task.result)
        return api


def attempt_result_to_api(result: AttemptResult) -> dict[str, Any]:
    status = {"code": RPC_CODES[result.code], "message": result.message} if result.code != "OK" else {}
    api: dict[str, Any] = {"status": status}
    if result.exit_code is not None:
        api["exitCode"] = result.exit_code
    if result.term_signal is not None:
        api["termSignal"] = result.term_signal
    return api


def failure_message(ex: Execution, task: Task) -> str:
    result = task.result
    task_id = f"{ex.short_name}-task{task.index}"
    if result is None or result.exit_code is None or task.timed_out:
        return f"Task {task_id} failed with message: {result.message if result else EXITED_WITH_ERROR}"
    return f"Task {task_id} failed with exit code: {result.exit_code} and message: {result.message}"


def execution_conditions(ex: Execution) -> list[dict[str, Any]]:
    return [_completed_condition(ex), *_startup_conditions(ex)]


def _completed_condition(ex: Execution) -> dict[str, Any]:
    at = ex.completed_at
    if ex.outcome == SUCCEEDED:
        assert at is not None and ex.started_at is not None
        return condition("Completed", "SUCCEEDED", at, f"Execution completed successfully in "
                                                       f"{go_duration(at - ex.started_at)}.")
    if ex.outcome == CANCELLED:
        return condition("Completed", "FAILED", at or ex.created_at, "The execution was cancelled.",
                         executionReason="CANCELLED")
    if ex.outcome == FAILED:
        if ex.start_failure:
            return condition("Completed", "FAILED", at or ex.created_at, ex.start_failure)
        assert ex.failed_task is not None
        extra = {} if ex.failed_task.timed_out else {"executionReason": "NON_ZERO_EXIT_CODE"}
        return condition("Completed", "FAILED", at or ex.created_at, failure_message(ex, ex.failed_task), **extra)
    if ex.phase == CANCELLING:
        return condition("Completed", "RECONCILING", ex.cancel_at or ex.created_at, "Cancelling the execution.",
                         executionReason="CANCELLING")
    return condition("Completed", "RECONCILING", ex.started_at or ex.created_at, "Waiting for execution to complete.")


def _startup_conditions(ex: Execution) -> list[dict[str, Any]]:
    if ex.start_failure and ex.outcome == FAILED:
        at = ex.completed_at or ex.created_at
        return [condition("ResourcesAvailable", "FAILED", at, ex.start_failure),
                condition("ContainerReady", "FAILED", at, ex.start_failure, reason="CONTAINER_MISSING")]
    if ex.started_at is None:
        return [condition("ResourcesAvailable", "RECONCILING", ex.created_at, "Provisioning imported containers."),
                condition("Started", "RECONCILING", ex.created_at, "Waiting for resources to be provisioned."),
                condition("ContainerReady", "RECONCILING", ex.created_at, "Importing container image.")]
    at = ex.started_at
    return [condition("ResourcesAvailable", "SUCCEEDED", at, "Provisioned imported containers."),
            condition("Started", "SUCCEEDED", at, f"Started deployed execution in {go_duration(at - ex.created_at)}."),
            condition("ContainerReady", "SUCCEEDED", at, "Imported container image.")]


def task_condition(ex: Execution, task: Task) -> dict[str, Any]:
    at = task.completed_at or task.started_at or ex.created_at
    if task.state == SUCCEEDED:
        return condition("Completed", "SUCCEEDED", at, "Task completed successfully.")
    if task.state == FAILED:
        return condition("Completed", "FAILED", at, failure_message(ex, task))
    if task.state == CANCELLED:
        return condition("Completed", "FAILED", at, "The task was cancelled.", executionReason="CANCELLED")
    return condition("Completed", "RECONCILING", at, "Waiting for the task to complete.")


def log_uri(project: str, region: str, job_id: str, execution_id: str) -> str:
    query = (f'resource.type="cloud_run_job"\nresource.labels.job_name="{job_id}"\n'
             f'resource.labels.location="{region}"\nlabels."run.googleapis.com/execution_name"="{execution_id}"')
    return f"https://console.cloud.google.com/logs/viewer?project={project}&advancedFilter={quote(query)}"
