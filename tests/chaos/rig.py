"""The chaos cluster and one scenario's view of it.

``Cluster`` (one per cloud, started on first use, stopped when the next cloud's starts or the chaos
package ends): the chaos Prefect server, a
PostgreSQL ledger, the cloud (a ``ChaosCloud``, ``cloud.py``), a pool, and dispatcher replica processes that
reach Prefect and the ledger through fault proxies (transparent until a scenario degrades or
cuts them). Scenarios run one after another on it, as faults come one after another to a
long-running deployment; starting replicas once per cloud, not per scenario, keeps the
default run within its time budget. Each scenario checks the invariants on its own runs.

``Rig`` is a scenario's view: the cluster plus the scenario's seeded ``rng``. Scale (runs,
replicas, kills, rounds) comes from ``Scale``: small by default, larger with ``CHAOS_SOAK=1``.
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
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from prefect.client.orchestration import PrefectClient

from dispatcher.config import DispatcherConfig, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.embedded import free_port
from dispatcher.demo.examples.deploy import deploy_example
from tests.chaos.cloud import ChaosCloud, by_flow_run
from tests.chaos.prefect_server import RestartablePrefect
from tests.chaos.replicas import ReplicaProcess
from tests.faultproxy import FaultProxy, HttpFaults

ENGINE = Path(__file__).resolve().parent / "engine.py"
WORKSPACE = "chaos"
#: Loops faster than the defaults and a short membership TTL, so takeovers and recovery happen
#: within a scenario; not so fast that idle polling eats the 2-core machine's CPU.
LOOP = LoopConfig(poll_interval_s=0.5, watch_interval_s=1.0, pending_grace_s=10, membership_interval_s=1.0,
                  member_ttl_s=4.0, listen_for_events=False, shutdown_grace_s=2, event_interval_s=2.0)


@dataclass(frozen=True)
class Scale:
    runs: int
    replicas: int
    kills: int
    rounds: int
    run_s: float


DEFAULT = Scale(runs=6, replicas=2, kills=2, rounds=1, run_s=1.0)
SOAK = Scale(runs=30, replicas=3, kills=5, rounds=int(os.environ.get("CHAOS_ROUNDS", "5")), run_s=2.0)


def scale() -> Scale:
    return SOAK if os.environ.get("CHAOS_SOAK") == "1" else DEFAULT


class Cluster:
    def __init__(self, prefect: RestartablePrefect, cloud: ChaosCloud, emu: Any, dsn: str, workdir: Path) -> None:
        self.prefect, self.cloud, self.emu, self.dsn, self.workdir = prefect, cloud, emu, dsn, workdir
        self.scale = scale()
        self.pool = f"chaos-{uuid.uuid4().hex[:8]}"
        api, db = urlsplit(prefect.api_url), urlsplit(dsn)
        self.prefect_proxy = FaultProxy(api.hostname, api.port).start()
        self.ledger_proxy = FaultProxy(db.hostname, db.port or 5432).start()
        self.replicas = [ReplicaProcess(self._config(f"replica-{n}"), workdir) for n in range(self.scale.replicas)]

    def _config(self, name: str) -> DispatcherConfig:
        db = urlsplit(self.dsn)
        proxied_dsn = self.dsn.replace(f"@{db.hostname}:{db.port}", f"@127.0.0.1:{self.ledger_proxy.port}")
        return DispatcherConfig(
            workspaces=[WorkspaceConfig(name=WORKSPACE, api_url=f"http://127.0.0.1:{self.prefect_proxy.port}/api",
                                        pools=[PoolConfig(name=self.pool)])],
            ledger_dsn=proxied_dsn, managed_provider=self.cloud.name, instance_name=name,
            providers={self.cloud.name: self.cloud.provider_settings(self.emu)},
            loop=LOOP, service=ServiceConfig(port=free_port(), log_level="INFO"),
        )

    async def healthy(self) -> None:
        """No fault left on: proxies open and transparent, the cloud without faults, every replica live."""
        for proxy in (self.prefect_proxy, self.ledger_proxy):
            proxy.restore()
            proxy.degrade(HttpFaults())
        self.emu.faults = self.cloud.no_faults()  # (realistic mode stays on)
        for replica in self.replicas:
            if not replica.running:
                replica.start()
        await asyncio.gather(*(replica.live() for replica in self.replicas))

    def stop(self) -> None:
        for replica in self.replicas:
            replica.signal_stop()  # all at once, then wait for each
        for replica in self.replicas:
            replica.stop()
        self.prefect_proxy.stop()
        self.ledger_proxy.stop()


class Rig:
    """One scenario on the cluster, with its seeded ``rng``."""

    def __init__(self, cluster: Cluster, client: PrefectClient, rng: random.Random) -> None:
        self.cluster, self.client, self.rng = cluster, client, rng
        self.prefect, self.emu, self.dsn, self.scale = cluster.prefect, cluster.emu, cluster.dsn, cluster.scale
        self.cloud = cluster.cloud
        self.replicas = cluster.replicas

    async def burst(self, n: int | None = None, final: str = "COMPLETED") -> list[UUID]:
        command = f"{sys.executable} {ENGINE} {self.prefect.api_url} {self.scale.run_s} {final}"
        deployment_id = await deploy_example(self.client, "hello", self.cluster.pool, name=f"chaos-{uuid.uuid4().hex[:6]}",
                                             job_variables=self.cloud.job_variables(self.emu, command))
        gate = asyncio.Semaphore(8)  # a burst, without queueing dozens of requests at the test server

        async def create():
            async with gate:
                return (await self.client.create_flow_run_from_deployment(deployment_id)).id

        return list(await asyncio.gather(*(create() for _ in range(n or self.scale.runs))))

    def started(self, ids: list[UUID]) -> int:
        """How many of the runs have infrastructure at the cloud: the progress kill points are chosen on."""
        started = by_flow_run(self.cloud.infrastructure(self.emu))
        return sum(1 for i in ids if str(i) in started)

    async def until_started(self, ids: list[UUID], k: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while self.started(ids) < k:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.started(ids)} of {len(ids)} runs started after {timeout_s}s, waiting for {k}")
            await asyncio.sleep(0.05)

    def points(self, n_runs: int, count: int) -> list[int]:
        """Seeded progress points (runs with infrastructure) at which to strike; 0 is 'before any start'."""
        return sorted(self.rng.randint(0, n_runs - 1) for _ in range(count))

    def logs(self) -> str:
        return "\n".join(f"--- {r.name} (killed {r.kills}x) ---\n{r.tail(25)}" for r in self.replicas)


async def settle(rig: Rig, ids: list[UUID], **kwargs) -> dict:
    """The invariants (tests/chaos/invariants.py), with the replicas' last log lines on failure."""
    from tests.chaos.invariants import settle_and_check

    try:
        summary = await settle_and_check(rig.client, ids, rig.dsn, rig.cloud, rig.emu, **kwargs)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{rig.logs()}") from None
    print(f"settled: {summary}")
    return summary
