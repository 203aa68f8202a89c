"""Azure Container Instances under chaos: the ACI emulator, one container group per attempt.

A group PUT again is deployed (started) again, so ``Infra.starts`` counts its PUTs; groups the
dispatcher deleted after their run count too.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from tests.chaos.cloud import FLOW_RUN_ENV, REALISM, ChaosCloud, Infra, shared_rates
from tests.emulators.aci import AciEmulator, Faults
from tests.emulators.aci.groups import ContainerGroup

RESOURCE_GROUP = "rg"
ENDED = {"Succeeded", "Failed", "Stopped"}


class AciChaos(ChaosCloud):
    name = "aci"
    pool_type = "azure-container-instance:push"

    @contextlib.contextmanager
    def emulator(self, workdir: Path) -> Iterator[AciEmulator]:
        with AciEmulator(execute=True, workdir=str(workdir), realistic=REALISM) as emu:
            emu.timings.stop_grace_s = 2.0
            yield emu

    def provider_settings(self, emu: AciEmulator) -> dict:
        return {"arm_endpoint": emu.endpoint_url, "allow_http": True, "static_bearer_token": "chaos-token",
                "refresh_after_s": 0.5}

    def job_variables(self, emu: AciEmulator, command: str) -> dict:
        # No entrypoint: the image's /opt/prefect/entrypoint.sh does not exist on this host.
        return {"resource_group_name": RESOURCE_GROUP, "subscription_id": emu.subscription_id, "entrypoint": None,
                "command": command}

    def no_faults(self) -> Faults:
        return Faults()

    def api_faults(self, rng: random.Random) -> tuple[Faults, int]:
        failing = rng.randint(1, 2)  # deployments whose image pull fails
        ops = {"ContainerGroups_CreateOrUpdate", "ContainerGroups_Get", "ContainerGroups_ListByResourceGroup",
               "ContainerGroups_Delete", "ContainerGroups_Stop", "Containers_ListLogs"}
        # A PUT answered 5xx but carried out is found by a GET, not PUT again: one carried-out PUT per run (6 by
        # default) for lost responses and accept-then-fail together, whatever the deletes do; so at most 3 + 3.
        return Faults(**shared_rates(rng, ops, most=3, rate_scale=0.5, pull_failures=failing)), failing

    def spent(self, faults: Faults) -> bool:
        return (faults.lost_responses, faults.accept_then_fail, faults.pull_failures) == (0, 0, 0)

    def infrastructure(self, emu: AciEmulator) -> list[Infra]:
        return [_infra(group) for group in [*emu.deleted_groups, *emu.groups.values()]]

    def key_of(self, infrastructure_id: str) -> str:
        """prefect-azure's format, ``<flow run id>:<group name>``."""
        return infrastructure_id.partition(":")[2]


def _infra(group: ContainerGroup) -> Infra:
    """ACI bills from the first image pull to the group's stop (providers/aci/mapping.py)."""
    env = group.containers[0].env if group.containers else {}
    events = [e for c in group.containers for e in c.events] + list(group.events)
    pulls = [e.first for e in events if e.name == "Pulling"]
    states = [c.current for c in group.containers]
    starts = [s.start for s in states if s is not None and s.start is not None]
    billed_from = min(pulls) if pulls else min(starts, default=None)
    if states and all(s is not None and s.state == "Terminated" for s in states):
        stopped_at = max((s.finish for s in states if s.finish is not None), default=None)
    elif group.provisioning_state == "Failed":
        stopped_at = max((e.last for e in events), default=None)
    else:
        stopped_at = None
    return Infra(flow_run_id=env.get(FLOW_RUN_ENV, "?"), key=group.name, starts=group.puts,
                 ended=group.state in ENDED or group.provisioning_state == "Failed",
                 failed_to_start=group.pull_fails, billed_from=billed_from, stopped_at=stopped_at)
