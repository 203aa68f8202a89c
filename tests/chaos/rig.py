"""One chaos scenario's world: the chaos Prefect server, a cloud, a PostgreSQL ledger, replica processes.

Scale (runs, replicas, kills, rounds) comes from ``Scale``: small in the default run, larger
with ``CHAOS_SOAK=1``. Every random choice comes from the scenario's seeded ``rng``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient

from dispatcher.config import DispatcherConfig, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.embedded import free_port
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.prefect.pools import create_pool
from tests.chaos import cloud
from tests.chaos.prefect_server import RestartablePrefect
from tests.chaos.replicas import ReplicaProcess
from tests.emulators.ecs import EcsEmulator

ENGINE = Path(__file__).resolve().parent / "engine.py"
WORKSPACE = "chaos"
#: Fast loops and a short membership TTL, so takeovers and recovery happen within a scenario.
LOOP = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=10, membership_interval_s=0.5,
                  member_ttl_s=3.0, listen_for_events=False, shutdown_grace_s=5, event_interval_s=1.0)


@dataclass(frozen=True)
class Scale:
    runs: int
    replicas: int
    kills: int
    rounds: int
    run_s: float


DEFAULT = Scale(runs=10, replicas=2, kills=2, rounds=1, run_s=1.0)
SOAK = Scale(runs=30, replicas=3, kills=5, rounds=int(os.environ.get("CHAOS_ROUNDS", "5")), run_s=2.0)


def scale() -> Scale:
    return SOAK if os.environ.get("CHAOS_SOAK") == "1" else DEFAULT


class Rig:
    def __init__(self, prefect: RestartablePrefect, client: PrefectClient, emu: EcsEmulator, dsn: str,
                 workdir: Path, rng: random.Random) -> None:
        self.prefect, self.client, self.emu, self.dsn = prefect, client, emu, dsn
        self.workdir, self.rng, self.scale = workdir, rng, scale()
        self.replicas: list[ReplicaProcess] = []
        self.pool = f"chaos-{uuid.uuid4().hex[:8]}"

    def config(self, name: str, *, api_url: str | None = None, dsn: str | None = None) -> DispatcherConfig:
        return DispatcherConfig(
            workspaces=[WorkspaceConfig(name=WORKSPACE, api_url=api_url or self.prefect.api_url, pools=[PoolConfig(name=self.pool)])],
            ledger_dsn=dsn or self.dsn, managed_provider="ecs", instance_name=name,
            providers={"ecs": cloud.provider_settings(self.emu)},
            loop=LOOP, service=ServiceConfig(port=free_port(), log_level="INFO"),
        )

    async def start_replicas(self, *, api_url: str | None = None, dsn: str | None = None) -> list[ReplicaProcess]:
        await create_pool(self.prefect.api_url, self.pool, "ecs:push", managed_provider="ecs")
        for n in range(self.scale.replicas):
            replica = ReplicaProcess(self.config(f"replica-{n}", api_url=api_url, dsn=dsn), self.workdir)
            self.replicas.append(replica.start())
        await asyncio.gather(*(r.live() for r in self.replicas))
        return self.replicas

    async def restart(self, replica: ReplicaProcess) -> None:
        """A new process in place of a killed one (same name and config, as a supervisor would)."""
        replica.start()
        await replica.live()

    async def burst(self, n: int | None = None, final: str = "COMPLETED") -> list[UUID]:
        command = f"{sys.executable} {ENGINE} {self.prefect.api_url} {self.scale.run_s} {final}"
        deployment_id = await deploy_example(self.client, "hello", self.pool, name=f"chaos-{uuid.uuid4().hex[:6]}",
                                             job_variables=cloud.job_variables(command))
        gate = asyncio.Semaphore(8)  # a burst, without overloading the test server's SQLite

        async def create():
            async with gate:
                return (await self.client.create_flow_run_from_deployment(deployment_id)).id

        return list(await asyncio.gather(*(create() for _ in range(n or self.scale.runs))))

    def started(self, ids: list[UUID]) -> int:
        """How many of the runs have infrastructure at the cloud: the progress kill points are chosen on."""
        tasks = cloud.tasks_per_flow_run(self.emu)
        return sum(1 for i in ids if str(i) in tasks)

    async def until_started(self, ids: list[UUID], k: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.started(ids) < k:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.started(ids)} of {len(ids)} runs started after {timeout_s}s, waiting for {k}")
            await asyncio.sleep(0.05)

    def kill_points(self, n_runs: int, kills: int) -> list[int]:
        """Progress points (runs with infrastructure) at which to kill, seeded; 0 is 'before any start'."""
        return sorted(self.rng.randint(0, n_runs - 1) for _ in range(kills))

    def stop_all(self) -> None:
        """SIGTERM to every replica at once, then wait for each (a graceful stop each, in parallel)."""
        for replica in self.replicas:
            replica.signal_stop()
        for replica in self.replicas:
            replica.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {r.name} (killed {r.kills}x) ---\n{r.tail(25)}" for r in self.replicas)


async def settle(rig: Rig, ids: list[UUID], **kwargs) -> dict:
    """The invariants (tests/chaos/invariants.py), with the replicas' last log lines on failure."""
    from tests.chaos.invariants import settle_and_check

    try:
        summary = await settle_and_check(rig.client, ids, rig.dsn, rig.emu, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rig.logs()}") from None
    print(f"settled: {summary}")
    return summary
