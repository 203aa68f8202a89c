"""Execute mode: a task attempt really runs the container's ``command + args`` as a local process.

The kit's ``ProcessRunner`` does the running; this adapter adds what Cloud
Run injects into every job container (``CLOUD_RUN_JOB``,
``CLOUD_RUN_EXECUTION``, ``CLOUD_RUN_TASK_INDEX``, ``CLOUD_RUN_TASK_ATTEMPT``,
``CLOUD_RUN_TASK_COUNT``) under the container's env (the job's template with
the run's overrides merged in), keeps each line in the task's ``output``, and
words a start failure as Cloud Run does.
The image is not run: a container without ``command`` cannot start here, except on an official
Prefect image, whose entrypoint execs its arguments (the emulator runs the args, installs nothing).
Env vars from Secret Manager (``valueSource``) are not set.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..kit import ProcessRunner, StartFailure, container_environment
from .resources import Execution, Task

OnExit = Callable[[Execution, Task, int, float], None]
OFFICIAL_PREFECT_IMAGE = re.compile(r"^(docker\.io/)?prefecthq/prefect(-client)?:")

def task_key(ex: Execution, task: Task) -> str:
    return f"{ex.name}/{task.index}"


def agent_environment(ex: Execution, task: Task) -> dict[str, str]:
    return {"CLOUD_RUN_JOB": ex.job.job_id, "CLOUD_RUN_EXECUTION": ex.short_name,
            "CLOUD_RUN_TASK_INDEX": str(task.index), "CLOUD_RUN_TASK_ATTEMPT": str(task.retried),
            "CLOUD_RUN_TASK_COUNT": str(len(ex.tasks))}


def container_env(ex: Execution) -> dict[str, str]:
    """The first container's literal env vars (secret references are left out)."""
    return {var["name"]: var.get("value", "") for var in ex.task_template["containers"][0].get("env", [])
            if "valueSource" not in var}


class Executor:
    def __init__(self, workdir: str, on_exit: OnExit):
        self._runner = ProcessRunner(workdir)
        self._on_exit = on_exit

    def start(self, ex: Execution, task: Task) -> None:
        """Start the attempt's process; ``StartFailure`` carries the attempt's result message."""
        container = ex.task_template["containers"][0]
        if container.get("command"):
            command = list(container["command"]) + list(container.get("args", []))
        elif OFFICIAL_PREFECT_IMAGE.match(container.get("image", "")):
            # The official image's entrypoint (/opt/prefect/entrypoint.sh) installs EXTRA_PIP_PACKAGES, then
            # execs its arguments: the emulator runs the arguments (it installs nothing).
            command = list(container.get("args", []))
        else:
            raise StartFailure("Application failed to start: the emulator cannot run the image's entrypoint; "
                               "give the container a command.")
        env = container_environment(agent_environment(ex, task), container_env(ex))
        try:
            task.process = self._runner.start(task_key(ex, task), command, env, on_line=task.output.append,
                                              on_exit=lambda code, at: self._on_exit(ex, task, code, at))
        except StartFailure as exc:
            raise StartFailure(f"Application failed to start: failed to load {exc.program}: {exc.reason}") from None

    def terminate(self, ex: Execution, task: Task, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (Cloud Run gives 10 s)."""
        self._runner.terminate(task_key(ex, task), grace_s)

    def shutdown(self) -> None:
        self._runner.shutdown()
