"""The emulated project's state and the Admin API v2 operations on it.

Handlers take JSON-shaped dicts (already parsed and schema-checked by the
protocol, enum names) and return API views as dicts. One re-entrant lock
guards everything; every request and every ticker pass takes it, so HTTP
threads, the ticker and the executor's reaper threads see one world.
"""

from __future__ import annotations

import random
import string
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..kit import RunDefaults
from . import jobspec
from .errors import (GoogleError, already_exists, failed_precondition, field_errors, no_capacity, not_found,
                     quota_exceeded)
from .executor import Executor
from .faults import CloudRunFaultDice
from .lifecycle import Lifecycle, Timings
from .networks import Networks
from .operations import Operation
from .paging import page
from .resources import DONE, Execution, Job, Task, log_uri
from .validation import job_id_violations, job_violations, overrides_violations


def now() -> float:
    return time.time()


@dataclass
class Limits:
    max_jobs: int = 1000
    """Jobs per project and region (quotas page)."""
    retained_executions: int = 1000
    """Completed executions kept per job; older ones are deleted (quotas page)."""


class Backend:
    def __init__(self, *, project_number: str, dice: CloudRunFaultDice, timings: Timings, defaults: RunDefaults,
                 limits: Limits, execute: bool, workdir: str, networks: Networks):
        self.lock = threading.RLock()
        self.networks = networks
        self.project_number, self.dice, self.defaults, self.limits = project_number, dice, defaults, limits
        self.jobs: dict[str, Job] = {}
        self.executions: dict[str, Execution] = {}
        self.operations: dict[str, Operation] = {}
        self.executor = Executor(workdir, self._on_exit) if execute else None
        self.lifecycle = Lifecycle(timings, self.executor)
        self.creator = f"emulator@{project_number}.iam.gserviceaccount.com"
        self._rng = random.Random()

    # -- time ------------------------------------------------------------------------------------

    def tick(self) -> None:
        with self.lock:
            t = now()
            for ex in list(self.executions.values()):
                if ex.phase != DONE:
                    self.lifecycle.advance(ex, t)

    def _on_exit(self, ex: Execution, task: Task, exit_code: int, at: float) -> None:
        with self.lock:
            self.lifecycle.advance(ex, at)
            self.lifecycle.attempt_ended(ex, task, exit_code, at)
            self.lifecycle.advance(ex, max(at, now()))

    def job_view(self, job: Job) -> dict[str, Any]:
        return job.to_api(now(), self.creator)

    def _operation(self, kind: str, resource: Job | Execution, location: str) -> dict[str, Any]:
        op = Operation(f"{location}/operations/{uuid.uuid4()}", kind, resource)
        self.operations[op.name] = op
        return op.to_api(now(), self.job_view)

    # -- jobs ----------------------------------------------------------------------------------

    def find_job(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            raise _missing("JOB", name)
        return job

    def create_job(self, parent: str, job_id: str, body: dict[str, Any], validate_only: bool) -> dict[str, Any]:
        spec = jobspec.with_defaults(body, self.project_number)
        violations = job_id_violations(job_id) + job_violations(spec)
        if self.dice.faults.validate_network:
            vpc_access = ((spec.get("template") or {}).get("template") or {}).get("vpcAccess") or {}
            violations += self.networks.violations("job.template.template.vpcAccess", vpc_access)
        if violations:
            raise field_errors(violations)
        name = f"{parent}/jobs/{job_id}"
        if name in self.jobs:
            raise already_exists(job_id)
        if sum(j.startswith(parent + "/") for j in self.jobs) >= self.limits.max_jobs:
            raise quota_exceeded("Jobs", "Jobs per project per region", self.project_number)
        created = now()
        job = Job(name, job_id, str(uuid.uuid4()), spec, created, created + self.lifecycle.timings.job_ready_s,
                  missing_image=jobspec.missing_image(spec, self.dice.faults.missing_images))
        if validate_only:
            return self._dry_operation("CreateJob", job, parent)
        self.jobs[name] = job
        return self._operation("CreateJob", job, parent)

    def _dry_operation(self, kind: str, resource: Job | Execution, parent: str) -> dict[str, Any]:
        """validateOnly: the operation the request would start, with nothing stored."""
        return Operation(f"{parent}/operations/{uuid.uuid4()}", kind, resource).to_api(now(), self.job_view)

    def get_job(self, name: str) -> dict[str, Any]:
        return self.job_view(self.find_job(name))

    def list_jobs(self, parent: str, page_size: int, token: str) -> dict[str, Any]:
        mine = [job for name, job in self.jobs.items() if name.startswith(parent + "/")]
        chunk, next_token = page(mine, lambda job: job.name, parent, page_size, token)
        return {"jobs": [self.job_view(job) for job in chunk], "nextPageToken": next_token}

    def delete_job(self, name: str, parent: str, etag: str | None = None) -> dict[str, Any]:
        job = self.find_job(name)
        if etag and etag != self.job_view(job)["etag"]:  # the job ran (or changed) since the caller read it
            raise GoogleError(409, "ABORTED", f"Etag '{etag}' does not match the job's current etag.")
        for ex in [ex for ex in self.executions.values() if ex.job is job]:
            self._delete_execution(ex)
        job.deleted_at = now()
        del self.jobs[name]
        return self._operation("DeleteJob", job, parent)

    # -- run -----------------------------------------------------------------------------------

    def run_job(self, name: str, parent: str, request: dict[str, Any]) -> dict[str, Any]:
        job = self.find_job(name)
        overrides = request.get("overrides") or {}
        violations = overrides_violations(overrides, job.template, job.launch_stage)
        if violations:
            raise field_errors(violations)
        self._check_runnable(job, request.get("etag"))
        if not self.dice.run_quota_admits():
            raise quota_exceeded("Job run requests", "Job run requests per minute per region", self.project_number)
        if self.dice.capacity_failure():
            raise no_capacity(self.networks.region)
        ex = self._new_execution(job, jobspec.apply_overrides(job.template, overrides))
        if request.get("validateOnly"):
            return self._dry_operation("RunJob", ex, parent)
        self.executions[ex.name] = ex
        job.execution_count += 1
        job.latest = ex
        self._prune_executions(job)
        return self._operation("RunJob", ex, parent)

    def _check_runnable(self, job: Job, etag: str | None) -> None:
        if etag and etag != self.job_view(job)["etag"]:
            raise GoogleError(409, "ABORTED", f"Etag '{etag}' does not match the job's current etag.")
        if job.missing_image is not None:
            raise failed_precondition(f"Job '{job.job_id}' is not ready: Image '{job.missing_image}' not found.")
        if not job.ready(now()):
            raise failed_precondition(f"Job '{job.job_id}' is not ready yet.")

    def _new_execution(self, job: Job, template: dict[str, Any]) -> Execution:
        suffix = "".join(self._rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        short = f"{job.job_id}-{suffix}"
        env = {v["name"]: v.get("value", "") for v in template["template"]["containers"][0].get("env", [])}
        run_s, exit_code = self._plan(env)
        tasks = [Task(i, run_s, exit_code) for i in range(template.get("taskCount") or 1)]
        project, region = job.name.split("/")[1], job.name.split("/")[3]
        image = template["template"]["containers"][0]["image"]
        return Execution(f"{job.name}/executions/{short}", short, job, str(uuid.uuid4()), template, now(), tasks,
                         log_uri(project, region, job.job_id, short), start_failure=self.dice.start_failure(image))

    def _plan(self, env: dict[str, str]) -> tuple[float, int]:
        try:
            return self.defaults.plan(env)
        except ValueError as exc:
            raise field_errors([("overrides", str(exc))]) from None

    def _prune_executions(self, job: Job) -> None:
        done = sorted((ex for ex in self.executions.values() if ex.job is job and ex.phase == DONE),
                      key=lambda ex: ex.created_at)
        for ex in done[: max(0, len(done) - self.limits.retained_executions)]:
            del self.executions[ex.name]

    # -- executions and tasks -------------------------------------------------------------------

    def find_execution(self, name: str) -> Execution:
        ex = self.executions.get(name)
        if ex is None:
            raise _missing("EXECUTION", name)
        return ex

    def get_execution(self, name: str) -> dict[str, Any]:
        return self.find_execution(name).to_api()

    def list_executions(self, parent: str, page_size: int, token: str) -> dict[str, Any]:
        """Under ``jobs/{job}`` or ``jobs/-`` (every job of the location); newest first."""
        if not parent.endswith("/jobs/-"):
            self.find_job(parent)
        prefix = parent.removesuffix("-") if parent.endswith("/jobs/-") else parent + "/"
        mine = [ex for name, ex in self.executions.items() if name.startswith(prefix)]
        chunk, next_token = page(mine, lambda ex: (-ex.created_at, ex.name), parent, page_size, token)
        return {"executions": [ex.to_api() for ex in chunk], "nextPageToken": next_token}

    def cancel_execution(self, name: str, parent: str, validate_only: bool) -> dict[str, Any]:
        ex = self.find_execution(name)
        if ex.phase == DONE:
            raise failed_precondition(f"Execution '{ex.short_name}' has already completed and cannot be "
                                      "cancelled.")
        if not validate_only:
            self.lifecycle.cancel(ex, now())
        return self._operation("CancelExecution", ex, parent)

    def delete_execution(self, name: str, parent: str) -> dict[str, Any]:
        ex = self.find_execution(name)
        self._delete_execution(ex)
        return self._operation("DeleteExecution", ex, parent)

    def _delete_execution(self, ex: Execution) -> None:
        at = now()
        self.lifecycle.cancel(ex, at)
        self.lifecycle.stop_now(ex)
        ex.deleted_at = at
        del self.executions[ex.name]

    def get_task(self, name: str) -> dict[str, Any]:
        ex = self.find_execution(name.partition("/tasks/")[0])
        for task in ex.tasks:
            if ex.task_name(task) == name:
                return ex.task_to_api(task)
        raise _missing("TASK", name)

    def list_tasks(self, parent: str, page_size: int, token: str) -> dict[str, Any]:
        ex = self.find_execution(parent)
        chunk, next_token = page(ex.tasks, lambda task: task.index, parent, page_size, token)
        return {"tasks": [ex.task_to_api(task) for task in chunk], "nextPageToken": next_token}

    # -- operations ----------------------------------------------------------------------------

    def get_operation(self, name: str) -> dict[str, Any]:
        op = self.operations.get(name)
        if op is None:
            raise _missing("OPERATION", name)
        return op.to_api(now(), self.job_view)

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown()


def _missing(kind: str, name: str) -> GoogleError:
    parts = name.split("/")
    return not_found(kind, parts[-1], parts[3] if len(parts) > 3 else "", parts[1] if len(parts) > 1 else "")
