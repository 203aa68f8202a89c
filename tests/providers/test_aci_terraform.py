"""terraform/azure-aci grants exactly the actions the ACI provider calls: derived from the emulator's call counter.

The provider goes through everything it ever does on one resource group (submit with the
location looked up, a re-drive's adopt, status by List and GET, logs, stop, release with its
delete, housekeeping); the emulator records the RBAC action of every call it
recognised. That set must equal the custom role's actions in ``main.tf``, nothing broader.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from providers.aci import AciProvider
from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest
from tests.emulators.aci import AciEmulator
from tests.providers.harnesses.aci import aci_configuration, emulator_settings

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")
MAIN_TF = Path(__file__).resolve().parents[2] / "terraform" / "azure-aci" / "main.tf"


def role_actions() -> set[str]:
    with MAIN_TF.open() as handle:
        parsed = hcl2.load(handle)
    for block in parsed["resource"]:
        for kind, resources in block.items():
            if kind.strip('"') != "azurerm_role_definition":
                continue
            for name, body in resources.items():
                if name.strip('"') == "dispatcher":
                    (permissions,) = body["permissions"]
                    return {action.strip("\"") for action in permissions["actions"]}  # hcl2 >= 7 keeps quotes
    raise AssertionError("no azurerm_role_definition.dispatcher in main.tf")


async def exercise(emu: AciEmulator) -> None:
    aci = AciProvider(emulator_settings(emu, refresh_after_s=0))
    try:
        runs = []
        for run_s in (0.05, 30):
            attempt = uuid.uuid4()
            request = SubmitRequest(
                flow_run_id=uuid.uuid4(), attempt_id=attempt, idempotency_key=f"prefect-{attempt.hex}",
                workspace="ws", pool="p", limits=RunLimits(max_runtime_s=60),
                configuration=aci_configuration(emu, "run", env={"EMULATOR_RUN_SECONDS": str(run_s)}))
            submission = await aci.submit(request)
            assert (await aci.submit(request)).infrastructure_id == submission.infrastructure_id  # adopted
            runs.append(RunRef(flow_run_id=request.flow_run_id, attempt_id=attempt,
                               infrastructure_id=submission.infrastructure_id, configuration=request.configuration))
        done, running = runs
        for _ in range(200):
            statuses = await aci.status_many(runs)
            if statuses[0].phase == InfraPhase.EXITED and statuses[1].phase == InfraPhase.RUNNING:
                break
            await asyncio.sleep(0.02)
        await aci.last_log_lines(done)
        await aci.stop(running, "cancelled")
        await aci.release(done)
        await aci.release(running)
        await aci.housekeeping()
    finally:
        await aci.aclose()


async def test_the_role_grants_exactly_what_the_provider_calls(tmp_path: Path) -> None:
    with AciEmulator(execute=False) as emu:
        await exercise(emu)
        used = {action for action, count in emu.permissions.items() if count}
        assert not emu.errors
    assert len(emu.deleted_groups) == 2
    assert used == role_actions()
