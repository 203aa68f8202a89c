"""Cloud Run jobs under chaos: the Cloud Run emulator, one execution per attempt, found by the run's environment."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from pathlib import Path

from tests.chaos.cloud import FLOW_RUN_ENV, REALISM, ChaosCloud, Infra, shared_rates
from tests.emulators.cloud_run import CloudRunEmulator, Faults

PROJECT, REGION = "chaos-project", "us-central1"


class CloudRunChaos(ChaosCloud):
    name = "cloud-run"
    pool_type = "cloud-run-v2:push"

    @contextlib.contextmanager
    def emulator(self, workdir: Path) -> Iterator[CloudRunEmulator]:
        with CloudRunEmulator(project=PROJECT, region=REGION, execute=True, workdir=str(workdir), stop_grace_s=2.0,
                              realistic=REALISM) as emu:
            yield emu

    def provider_settings(self, emu: CloudRunEmulator) -> dict:
        # The run-request pace starts at the quota's (180/min) and adapts to its 429s.
        return {"endpoint": emu.endpoint_url, "project": PROJECT, "anonymous": True, "run_rate_per_s": 3.0}

    def job_variables(self, emu: CloudRunEmulator, command: str) -> dict:
        return {"region": REGION, "command": command}

    def no_faults(self) -> Faults:
        return Faults()

    def api_faults(self, rng: random.Random) -> tuple[Faults, int]:
        failing = rng.randint(1, 2)  # executions whose image cannot be pulled
        ops = {"CreateJob", "GetJob", "RunJob", "ListExecutions", "GetExecution", "CancelExecution", "GetOperation"}
        # Once the job exists, the only mutating calls are the burst's :run calls, one carried out per run
        # (6 by default): lost responses and accept-then-fail may both land on them, so at most 2 + 2.
        return Faults(**shared_rates(rng, ops, most=2, rate_scale=0.5, start_failures=failing)), failing

    def infrastructure(self, emu: CloudRunEmulator) -> list[Infra]:
        found = []
        for ex in emu.executions.values():
            env = {v["name"]: v.get("value") for v in ex.task_template["containers"][0].get("env", [])}
            found.append(Infra(flow_run_id=env.get(FLOW_RUN_ENV) or "?", key=ex.name, starts=1,
                               ended=ex.completed_at is not None, failed_to_start=ex.start_failure is not None,
                               # Cloud Run bills a job from its start to its completion (providers/cloud_run/mapping.py).
                               billed_from=ex.started_at, stopped_at=ex.completed_at))
        return found

    def key_of(self, infrastructure_id: str) -> str:
        """The execution's full resource name, as Prefect's Cloud Run worker records it."""
        return infrastructure_id
