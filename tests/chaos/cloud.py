"""The cloud behind the chaos scenarios, in one place: today the ECS emulator and its fault knobs.

Every scenario gets its cloud from ``ecs_cloud`` and its faults from the profiles below, so a
more realistic emulator mode (the emulators' realistic mode: API quotas, launch rates, phase
times) can be switched on here, in ``ecs_cloud``, for all of them; the suite uses only the fault
knobs every emulator has today.
Infrastructure is counted at the emulator: one ECS task per attempt, found by the flow run id
the dispatcher puts in the task's environment (``PREFECT__FLOW_RUN_ID``).
"""

from __future__ import annotations

import collections
import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from tests.emulators.ecs import EcsEmulator, Faults, Task

SUBNETS = {"subnets": ["subnet-0chaos"], "assignPublicIp": "ENABLED"}


@contextlib.contextmanager
def ecs_cloud(workdir: Path) -> Iterator[EcsEmulator]:
    """The ECS emulator in execute mode: each task runs its container command on this machine."""
    with EcsEmulator(execute=True, workdir=str(workdir), stop_timeout_s=2.0) as emu:
        yield emu


def provider_settings(emu: EcsEmulator) -> dict:
    """The dispatcher's ``providers.ecs`` section for this cloud."""
    credentials = {"aws_access_key_id": "AKIACHAOS", "aws_secret_access_key": "chaos-secret", "region_name": emu.region,
                   "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}
    return {"credentials": credentials, "retry_mode": "standard", "max_attempts": 3}


def job_variables(command: str) -> dict:
    return {"network_configuration": SUBNETS, "command": command}


def api_faults(rng: random.Random, scale: float = 1.0) -> Faults:
    """Throttling, 5xx, lost responses and accept-then-fail on the calls that start and watch tasks."""
    return Faults(
        throttle_rate=round(rng.uniform(0.1, 0.25) * scale, 3),
        server_error_rate=round(rng.uniform(0.05, 0.15) * scale, 3),
        lost_responses=rng.randint(2, 4),
        accept_then_fail=rng.randint(2, 4),
        ops={"RunTask", "DescribeTasks", "StopTask", "RegisterTaskDefinition", "DescribeTaskDefinition"},
        seed=rng.randrange(2**32),
    )


def start_failures(rng: random.Random) -> int:
    """How many tasks are launched but never start (TaskFailedToStart): their runs end Crashed."""
    return rng.randint(1, 2)


def tasks_per_flow_run(emu: EcsEmulator) -> dict[str, list[Task]]:
    tasks: dict[str, list[Task]] = collections.defaultdict(list)
    for task in emu.tasks.values():
        tasks[task.environment.get("PREFECT__FLOW_RUN_ID", "?")].append(task)
    return tasks


def task_arn(infrastructure_id: str) -> str:
    """Prefect's ECS infrastructure id is ``cluster::task_arn``."""
    return infrastructure_id.partition("::")[2] or infrastructure_id
