"""Contract harness of the Cloud Run provider: against the Cloud Run emulator, which executes the task command locally."""

from __future__ import annotations

import uuid
from typing import Any

from prefect.workers.base import BaseJobConfiguration

from providers.base import RunRef
from tests.providers.contract import ProviderHarness

PROJECT, REGION = "contract-project", "us-central1"


def job_body(command: Any = None, image: str = "us-docker.pkg.dev/contract-project/flows/flow:1", **task: Any) -> dict:
    """A job body as the pool's template leaves it once Prefect filled in the variables."""
    container = {"env": [], "image": image, "command": command, "args": [],
                 "resources": {"limits": {"cpu": "1000m", "memory": "512Mi"}}}
    return {"client": "prefect", "launchStage": "BETA",
            "template": {"template": {"serviceAccount": None, "maxRetries": 0, "timeout": 600,
                                      "vpcAccess": {"connector": None}, "containers": [container], **task}}}


def configuration(command: str, credentials: dict | None = None, **fields: Any) -> BaseJobConfiguration:
    from providers.cloud_run import CloudRunJobConfiguration

    fields.setdefault("region", REGION)
    return CloudRunJobConfiguration(credentials=credentials or {"project": PROJECT},
                                    job_body=fields.pop("job_body", None) or job_body(), command=command,
                                    env={"PYTHONUNBUFFERED": "1", **fields.pop("env", {})}, **fields)


class Harness(ProviderHarness):
    name = "cloud-run"

    async def start(self) -> None:
        from providers.cloud_run import CloudRunProvider, CloudRunSettings
        from tests.emulators.cloud_run import CloudRunEmulator

        self.emulator = CloudRunEmulator(project=PROJECT, region=REGION, execute=True, workdir=str(self.tmp_path),
                                         stop_grace_s=1.0).start()
        self.provider = CloudRunProvider(CloudRunSettings(endpoint=self.emulator.endpoint_url, anonymous=True))

    async def stop(self) -> None:
        await super().stop()
        self.emulator.stop()
        assert self.emulator.errors == []

    def configuration(self, command: str) -> BaseJobConfiguration:
        return configuration(command)

    def unknown_ref(self) -> RunRef:
        name = f"projects/{PROJECT}/locations/{REGION}/jobs/prefect-000000000000/executions/prefect-x{uuid.uuid4().hex[:4]}"
        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), infrastructure_id=name,
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return len(self.emulator.executions)

    def fail_transiently(self, on: bool) -> None:
        from tests.emulators.cloud_run import Faults

        self.emulator.faults = Faults(server_error_rate=1.0 if on else 0.0)
