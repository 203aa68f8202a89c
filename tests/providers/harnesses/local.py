"""Contract harness of the local provider: runs in a temporary state directory."""

from __future__ import annotations

import uuid

from prefect.workers.base import BaseJobConfiguration

from providers.base import RunRef
from tests.providers.contract import ProviderHarness


class Harness(ProviderHarness):
    name = "local"
    no_fault_injection = "the local provider has no remote API whose failures could be injected"

    async def start(self) -> None:
        from providers.local import LocalProvider, LocalSettings

        self.state_dir = self.tmp_path / "local-state"
        self.provider = LocalProvider(LocalSettings(state_dir=self.state_dir, stop_grace_s=1))

    def configuration(self, command: str) -> BaseJobConfiguration:
        from providers.local import LocalJobConfiguration

        return LocalJobConfiguration(command=command, memory=None, cpu=None)

    def unknown_ref(self) -> RunRef:
        import socket

        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(), infrastructure_id=f"{socket.gethostname()}:999999",
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return sum(1 for _ in self.state_dir.iterdir()) if self.state_dir.exists() else 0
