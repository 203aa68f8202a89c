"""Contract harness of the ACI provider: against the ACI emulator, which executes the container command locally."""

from __future__ import annotations

import uuid

from prefect.workers.base import BaseJobConfiguration

from providers.base import RunRef
from tests.providers.contract import ProviderHarness


def emulator_settings(emulator, **overrides):
    """Provider settings that reach ``emulator`` over http with a static token (as production reaches ARM)."""
    from providers.aci import AciSettings

    values = {"arm_endpoint": emulator.endpoint_url, "allow_http": True, "static_bearer_token": "emulator-token",
              **overrides}
    return AciSettings(**values)


def aci_configuration(emulator, command: str, **fields) -> BaseJobConfiguration:
    from providers.aci import AciJobConfiguration

    values = {"resource_group_name": "rg", "subscription_id": emulator.subscription_id, "command": command,
              "entrypoint": None, "arm_template": {}, "env": {"PYTHONUNBUFFERED": "1"}, **fields}
    return AciJobConfiguration(**values)


def started(emulator) -> int:
    """Container group deployments so far: groups created plus every PUT that redeployed one."""
    return sum(group.puts for group in [*emulator.groups.values(), *emulator.deleted_groups])


class Harness(ProviderHarness):
    name = "aci"

    async def start(self) -> None:
        from providers.aci import AciProvider
        from tests.emulators.aci import AciEmulator

        self.emulator = AciEmulator(execute=True, workdir=str(self.tmp_path)).start()
        # Read every group on every call: the contract polls tightly; the read budget has its own tests.
        self.provider = AciProvider(emulator_settings(self.emulator, refresh_after_s=0, reads_per_s=1000,
                                                      read_burst=1000))

    async def stop(self) -> None:
        await super().stop()
        self.emulator.stop()
        assert self.emulator.errors == []

    def configuration(self, command: str) -> BaseJobConfiguration:
        return aci_configuration(self.emulator, command)

    def unknown_ref(self) -> RunRef:
        return RunRef(flow_run_id=uuid.uuid4(), attempt_id=uuid.uuid4(),
                      infrastructure_id=f"{uuid.uuid4()}:prefect-{uuid.uuid4().hex}",
                      configuration=self.configuration("true"))

    def started_count(self) -> int:
        return started(self.emulator)

    def fail_transiently(self, on: bool) -> None:
        from tests.emulators.aci import Faults

        self.emulator.faults = Faults(server_error_rate=1.0 if on else 0.0)
