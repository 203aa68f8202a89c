"""Contract harness of the ECS provider: against the ECS emulator, which executes the container command locally."""

from __future__ import annotations

import uuid

from prefect.workers.base import BaseJobConfiguration

from providers.base import RunRef
from tests.providers.contract import ProviderHarness


class Harness(ProviderHarness):
    name = "ecs"

    async def start(self) -> None:
        from providers.ecs import EcsProvider, EcsSettings
        from tests.emulators.ecs import EcsEmulator

        self.emulator = EcsEmulator(execute=True, workdir=str(self.tmp_path)).start()
        self.provider = EcsProvider(EcsSettings(max_attempts=2, retry_mode="standard"))

    async def stop(self) -> None:
        await super().stop()
        self.emulator.stop()

    def credentials(self) -> dict:
        return {"aws_access_key_id": "AKIACONTRACT", "aws_secret_access_key": "contract-secret-key",
                "region_name": self.emulator.region,
                "aws_client_parameters": {"endpoint_url": self.emulator.endpoint_url}}

    def configuration(self, command: str) -> BaseJobConfiguration:
        from providers.ecs import EcsJobConfiguration

        return EcsJobConfiguration(
            aws_credentials=self.credentials(), image="python:3.12-slim", command=command,
            network_configuration={"subnets": ["subnet-0contract"]}, env={"PYTHONUNBUFFERED": "1"},
        )

    def unknown_ref(self) -> RunRef:
        prefix = f"arn:aws:ecs:{self.emulator.region}:{self.emulator.account_id}"
        task = f"{prefix}:task/default/{uuid.uuid4().hex}"
        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), infrastructure_id=f"{prefix}:cluster/default::{task}",
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return len(self.emulator.tasks)

    def fail_transiently(self, on: bool) -> None:
        from tests.emulators.ecs import Faults

        self.emulator.faults = Faults(server_error_rate=1.0 if on else 0.0)
