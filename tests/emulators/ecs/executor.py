"""Execute mode: run a task's essential container command as a local process.

The kit's ``ProcessRunner`` does the running (own session, container-like
environment, the group killed with its leader); this adapter adds what is
ECS's own: the agent's variables (AWS_REGION, AWS_DEFAULT_REGION,
AWS_EXECUTION_ENV) under the container definition's ``environment`` and the
RunTask overrides, Docker's wording of a start failure, and the task's output.
"""

from __future__ import annotations

from collections.abc import Callable

from ..kit import ProcessRunner, StartFailure, container_environment
from .tasks import Task

CANNOT_START = "CannotStartContainerError: "


def agent_environment(region: str) -> dict[str, str]:
    return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}


class Executor:
    """Starts, signals and reaps task processes (keyed by task ARN); reports exits through ``on_exit``."""

    def __init__(self, workdir: str, on_line: Callable[[Task, str], None],
                 on_exit: Callable[[Task, int, float], None]):
        self._runner = ProcessRunner(workdir)
        self._on_line = on_line
        self._on_exit = on_exit

    def start(self, task: Task) -> None:
        """Start the task's process; ``StartFailure`` carries the task's stoppedReason."""
        if not task.command:
            raise StartFailure(CANNOT_START + "Error response from daemon: No command specified")
        env = container_environment(agent_environment(task.region), task.environment)
        try:
            task.process = self._runner.start(task.arn, task.command, env,
                                              on_line=lambda line: self._line(task, line),
                                              on_exit=lambda code, at: self._on_exit(task, code, at))
        except StartFailure as exc:
            raise StartFailure(CANNOT_START + "ResourceInitializationError: failed to create new container "
                               f"runtime task: unable to start container process: {exc}") from None

    def _line(self, task: Task, line: str) -> None:
        task.output.append(line)
        self._on_line(task, line)

    def terminate(self, task: Task, grace_s: float) -> None:
        """SIGTERM the process group now, SIGKILL it after ``grace_s`` (docker stop)."""
        self._runner.terminate(task.arn, grace_s)

    def shutdown(self) -> None:
        """Kill everything still running and wait for it to be reaped."""
        self._runner.shutdown()
