"""Moves tasks through the ECS lifecycle on wall-clock time.

PROVISIONING --provisioning_s--> PENDING (image pull) --pending_s--> RUNNING
--container exits--> DEPROVISIONING --deprovisioning_s--> STOPPED.
A stop request (StopTask, Spot interruption) on a RUNNING task passes through
STOPPING while the container shuts down, as on real ECS; before RUNNING it
goes straight to DEPROVISIONING. Each transition is stamped with the time it
was due, not the time the ticker noticed, so timestamps are exact and ordered.
All methods run under the backend lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..kit import StartFailure
from .executor import Executor
from .faults import EcsFaultDice
from .logs import LogStore
from .tasks import BEFORE_RUNNING, Task
from .util import random_hex

SIGTERM_EXIT = 143  # what a container killed by docker stop's SIGTERM reports


@dataclass
class Timings:
    provisioning_s: float = 0.05
    pending_s: float = 0.05
    deprovisioning_s: float = 0.05
    stop_timeout_s: float = 2.0


def _missing_log_group(group: str) -> str:
    return (
        "ResourceInitializationError: failed to validate logger args: create stream has been retried 1 times: "
        "failed to create Cloudwatch log stream: ResourceNotFoundException: The specified log group does not "
        f"exist. : exit status 1 (log group {group})"
    )


class Lifecycle:
    def __init__(self, timings: Timings, dice: EcsFaultDice, logs: LogStore,
                 executor: Executor | None, auto_create_log_groups: bool):
        self.timings = timings
        self._dice = dice
        self._logs = logs
        self._executor = executor
        self._auto_create_log_groups = auto_create_log_groups

    # -- driven by the ticker -------------------------------------------------

    def advance(self, task: Task, now: float) -> None:
        """Apply every transition that is due at ``now``."""
        steps: dict[str, Callable[[Task, float], bool]] = {
            "PROVISIONING": self._provisioning,
            "PENDING": self._pending,
            "RUNNING": self._running,
            "DEPROVISIONING": self._deprovisioning,
        }
        while task.last_status in steps and steps[task.last_status](task, now):
            pass

    def _provisioning(self, task: Task, now: float) -> bool:
        due = task.phase_since + self.timings.provisioning_s
        if now < due:
            return False
        task.set_status("PENDING", due)
        task.pull_started_at = task.connectivity_at = due
        if task.eni:
            task.eni.status = "ATTACHED"
        return True

    def _pending(self, task: Task, now: float) -> bool:
        due = task.phase_since + self.timings.pending_s
        if now < due:
            return False
        if task.plan.start_failure:
            self._fail_to_start(task, due, task.plan.start_failure)
            return True
        task.pull_stopped_at = due
        failure = self._open_log_stream(task)
        if failure:
            self._fail_to_start(task, due, failure)
            return True
        try:
            if self._executor is not None:
                self._executor.start(task)
        except StartFailure as exc:
            self._fail_to_start(task, due, str(exc))
            return True
        self._mark_running(task, due)
        return True

    def _mark_running(self, task: Task, at: float) -> None:
        task.set_status("RUNNING", at)
        task.started_at = at
        for container in task.containers:
            container.last_status = "RUNNING"
            container.runtime_id = f"{task.id}-{random_hex(10)}"
            container.image_digest = "sha256:" + random_hex(64)
        if self._dice.spot_interruption(task.capacity_provider):
            task.plan.spot_at = at + self._dice.faults.spot_after_s

    def _running(self, task: Task, now: float) -> bool:
        spot_at = task.plan.spot_at
        exit_at = None if self._executor else task.started_at + task.plan.run_s
        if spot_at is not None and now >= spot_at and (exit_at is None or spot_at < exit_at):
            self.request_stop(task, spot_at, "SpotInterruption", "Your Spot Task was interrupted.")
            return True
        if exit_at is not None and now >= exit_at:
            self.container_exited(task, task.plan.exit_code, exit_at)
            return True
        return False

    def _deprovisioning(self, task: Task, now: float) -> bool:
        due = task.phase_since + self.timings.deprovisioning_s
        if now < due:
            return False
        task.set_status("STOPPED", due)
        task.stopped_at = due
        if task.eni:
            task.eni.status = "DELETED"
        return True

    # -- events ---------------------------------------------------------------

    def _open_log_stream(self, task: Task) -> str | None:
        if task.log_target is None:
            return None
        group, stream, create = task.log_target
        if self._logs.ensure_stream(group, stream, create or self._auto_create_log_groups):
            return None
        return _missing_log_group(group)

    def _fail_to_start(self, task: Task, at: float, reason: str) -> None:
        task.desired_status = "STOPPED"
        task.stop_code, task.stopped_reason = "TaskFailedToStart", reason
        for container in task.containers:
            container.last_status = "STOPPED"
            container.reason = reason if container.name == task.primary else None
        self._deprovision(task, at)

    def _deprovision(self, task: Task, at: float) -> None:
        task.stopping_at = task.stopping_at or at
        task.execution_stopped_at = at
        task.set_status("DEPROVISIONING", at)
        if task.eni:
            task.eni.status = "DETACHED"

    def request_stop(self, task: Task, at: float, code: str, reason: str) -> None:
        """StopTask / Spot interruption: a no-op on a task already stopping."""
        if task.desired_status == "STOPPED":
            return
        task.desired_status = "STOPPED"
        task.stop_code, task.stopped_reason, task.stopping_at = code, reason, at
        if task.last_status in BEFORE_RUNNING:
            for container in task.containers:
                container.last_status = "STOPPED"
            self._deprovision(task, at)
        elif self._executor is None:
            self.container_exited(task, SIGTERM_EXIT, at)
        else:
            task.set_status("STOPPING", at)
            stop_timeout = task.task_definition.container(task.primary).get("stopTimeout")
            grace = self.timings.stop_timeout_s if stop_timeout is None else stop_timeout
            self._executor.terminate(task, grace)

    def container_exited(self, task: Task, exit_code: int, at: float) -> None:
        """The primary (essential) container exited: ECS stops the whole task."""
        if task.last_status not in ("RUNNING", "STOPPING"):
            return
        if task.desired_status == "RUNNING":
            task.desired_status = "STOPPED"
            task.stop_code = "EssentialContainerExited"
            task.stopped_reason = "Essential container in task exited"
        for container in task.containers:
            container.last_status = "STOPPED"
            # sidecars are simulated; ECS stops them with SIGTERM once the essential one is gone
            container.exit_code = exit_code if container.name == task.primary else SIGTERM_EXIT
        self._deprovision(task, at)
