"""ECS (Fargate) under chaos: the ECS emulator, one task per attempt, found by the run's environment."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from tests.chaos.cloud import FLOW_RUN_ENV, REALISM, ChaosCloud, Infra, shared_rates
from tests.emulators.ecs import EcsEmulator, Faults

SUBNET = "subnet-0chaos"


class EcsChaos(ChaosCloud):
    name = "ecs"
    pool_type = "ecs:push"

    @contextlib.contextmanager
    def emulator(self, workdir: Path) -> Iterator[EcsEmulator]:
        with EcsEmulator(execute=True, workdir=str(workdir), stop_timeout_s=2.0, realistic=REALISM) as emu:
            vpc = emu.ec2.add_vpc("10.9.0.0/16")  # realistic mode rejects subnets EC2 does not have
            emu.ec2.add_subnet(vpc.id, "10.9.1.0/24", subnet_id=SUBNET, map_public_ip_on_launch=True)
            yield emu

    def provider_settings(self, emu: EcsEmulator) -> dict:
        credentials = {"aws_access_key_id": "AKIACHAOS", "aws_secret_access_key": "chaos-secret",
                       "region_name": emu.region, "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}
        return {"credentials": credentials, "retry_mode": "standard", "max_attempts": 3}

    def job_variables(self, emu: EcsEmulator, command: str) -> dict:
        return {"network_configuration": {"subnets": [SUBNET], "assignPublicIp": "ENABLED"}, "command": command}

    def no_faults(self) -> Faults:
        return Faults()

    def api_faults(self, rng: random.Random) -> tuple[Faults, int]:
        failing = rng.randint(1, 2)  # tasks launched that never start (TaskFailedToStart)
        ops = {"RunTask", "DescribeTasks", "StopTask", "RegisterTaskDefinition", "DescribeTaskDefinition"}
        return Faults(**shared_rates(rng, ops, start_failures=failing)), failing

    def infrastructure(self, emu: EcsEmulator) -> list[Infra]:
        return [Infra(flow_run_id=task.environment.get(FLOW_RUN_ENV, "?"), key=task.arn, starts=1,
                      ended=task.last_status == "STOPPED", failed_to_start=task.stop_code == "TaskFailedToStart",
                      # Fargate bills from the image pull (see providers/ecs/mapping.py).
                      billed_from=task.pull_started_at or task.started_at, stopped_at=task.stopped_at)
                for task in list(emu.tasks.values())]

    def key_of(self, infrastructure_id: str) -> str:
        """Prefect's ECS infrastructure id is ``cluster::task_arn``."""
        return infrastructure_id.partition("::")[2] or infrastructure_id
