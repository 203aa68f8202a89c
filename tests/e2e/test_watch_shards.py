"""Replicas divide the watching: each in-flight attempt is watched by one live replica.

Three dispatchers share one ledger and one pool on the ECS emulator (tasks that run for
ten minutes, so every run stays in flight). They must partition the in-flight attempts
between them; when one is killed (no shutdown: its beat just stops) the other two take
its attempts over; a replica that joins takes a share. Replicas divide whole status batches
(watch groups): with DescribeTasks batches of one, run by run; with batches of five, each
replica asks about whole batches. Each assertion waits for a state to be reached, with a
deadline far above the configured takeover time, never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from uuid import UUID

import pytest

from dispatcher.config import DispatcherConfig, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.prefect.pools import create_pool
from dispatcher.service import Dispatcher
from providers.ecs import EcsProvider
from tests.e2e.helpers import wait_until
from tests.emulators.ecs import EcsEmulator

pytestmark = pytest.mark.e2e
N_RUNS = 30
TTL_S = 3.0
LOOP = LoopConfig(poll_interval_s=0.2, watch_interval_s=1.0, pending_grace_s=10, membership_interval_s=0.5, member_ttl_s=TTL_S,
                  listen_for_events=False)


def _config(api_url: str, pool: str, emu: EcsEmulator, dsn: str, name: str, batch: int = 1,
            loop: LoopConfig = LOOP) -> DispatcherConfig:
    credentials = {"aws_access_key_id": "AKIASHARD", "aws_secret_access_key": "shard-secret", "region_name": emu.region,
                   "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="shards", api_url=api_url, pools=[PoolConfig(name=pool)])],
        ledger_dsn=dsn, managed_provider="ecs", instance_name=name,
        providers={"ecs": {"credentials": credentials, "retry_mode": "standard", "max_attempts": 3,
                           "describe_batch_size": batch}},
        loop=loop, service=ServiceConfig(port=0),
    )


class Replica:
    """A dispatcher in this event loop that can be killed without a word (like kill -9)."""

    def __init__(self, config: DispatcherConfig) -> None:
        self.dispatcher = Dispatcher(config)
        self.task = asyncio.create_task(self.dispatcher.run())

    async def started(self) -> Replica:
        for _ in range(400):
            if self.dispatcher.healthy() or self.task.done():
                break
            await asyncio.sleep(0.05)
        if self.task.done():
            self.task.result()
        return self

    @property
    def shards(self):
        return self.dispatcher.workspaces[0].shards

    def watched(self) -> set[UUID]:
        return {run.attempt.attempt_id for ws in self.dispatcher.workspaces for run in ws.inflight.watched()}

    def slots(self) -> dict[UUID, object]:
        """Each watched attempt's slot: what replicas divide (its watch group)."""
        return {run.attempt.attempt_id: run.slot for ws in self.dispatcher.workspaces for run in ws.inflight.watched()}

    async def kill(self) -> None:
        """No shutdown: its beat stops and its row stays, as after kill -9."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _settled(replicas: list[Replica], attempts: set[UUID], timeout_s: float = 60) -> list[set[UUID]]:
    """Wait until the replicas agree on who is live and each watches exactly the attempts it owns."""
    deadline = time.monotonic() + timeout_s
    while True:
        sets = [replica.watched() for replica in replicas]
        views = {replica.shards.live for replica in replicas}
        slots = {attempt: slot for replica in replicas for attempt, slot in replica.slots().items()}
        owned = [{a for a in attempts if a in slots and replica.shards.owns(slots[a])} for replica in replicas]
        if len(views) == 1 and sets == owned and set().union(*sets) == attempts:
            return sets
        assert time.monotonic() < deadline, (
            f"not settled: watching {[len(s) for s in sets]}, owning {[len(o) for o in owned]}, {len(views)} views")
        await asyncio.sleep(0.1)


async def _pool(api_url: str) -> str:
    pool = f"ecs-{uuid.uuid4().hex[:8]}"
    await create_pool(api_url, pool, "ecs:push", managed_provider="ecs")
    return pool


async def _runs(client, pool: str, n: int) -> list:
    """``n`` runs of a deployment whose tasks use the emulator's default subnet (they run ten minutes)."""
    variables = {"network_configuration": {"subnets": ["subnet-0shard"], "assignPublicIp": "ENABLED"}}
    deployment_id = await deploy_example(client, "hello", pool, job_variables=variables)
    return [await client.create_flow_run_from_deployment(deployment_id) for _ in range(n)]


async def _wait_for(condition, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_replicas_divide_the_watching_take_over_from_a_dead_one_and_share_with_a_new_one(
    prefect_api_url, prefect_client, tmp_path, monkeypatch,
):
    calls: Counter[int] = Counter()  # status_many calls per provider instance (one per replica)
    last_asked: dict[int, set[UUID]] = {}  # the attempts each replica asked about in its latest call
    original = EcsProvider.status_many

    async def counting_status_many(self, runs):
        calls[id(self)] += 1
        last_asked[id(self)] = {run.attempt_id for run in runs}
        return await original(self, runs)

    monkeypatch.setattr(EcsProvider, "status_many", counting_status_many)
    pool = await _pool(prefect_api_url)
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    with EcsEmulator(default_run_s=600) as emu:
        runs = await _runs(prefect_client, pool, N_RUNS)
        replicas = [await Replica(_config(prefect_api_url, pool, emu, dsn, f"replica-{n}")).started() for n in range(3)]
        try:
            await wait_until(prefect_client, [r.id for r in runs], lambda r: bool(r.infrastructure_pid), timeout_s=120)
            await _wait_for(lambda: len(set().union(*(r.watched() for r in replicas))) == N_RUNS)
            attempts = set().union(*(r.watched() for r in replicas))
            sets = await _settled(replicas, attempts)
            assert all(sets), [len(s) for s in sets]  # each replica watches a share

            calls.clear()  # two more ticks of each replica: each attempt is asked about by one replica only
            last_asked.clear()
            await _wait_for(lambda: len(calls) == 3 and min(calls.values()) >= 2)
            asked = list(last_asked.values())
            assert sum(map(len, asked)) == len(set().union(*asked)) == N_RUNS, [len(a) for a in asked]

            await replicas[0].kill()
            killed_at = time.monotonic()
            survivors = replicas[1:]
            await _settled(survivors, attempts)
            takeover_s = time.monotonic() - killed_at
            # TTL, then one recovery pass (every pending_grace_s / 2) and one watch tick, plus slack for
            # a loaded machine: a bound, not a measurement (bench/watch_shards.py measures it).
            assert takeover_s < TTL_S + LOOP.pending_grace_s / 2 + 30, takeover_s

            joiner = await Replica(_config(prefect_api_url, pool, emu, dsn, "replica-3")).started()
            survivors.append(joiner)
            sets = await _settled(survivors, attempts)
            assert sets[-1], "the replica that joined watches a share"
            assert len(emu.tasks) == N_RUNS  # nothing started twice along the way
        finally:
            for replica in replicas[1:] + ([joiner] if "joiner" in locals() else []):
                await replica.kill()


async def test_replicas_ask_about_whole_batches(prefect_api_url, prefect_client, tmp_path, monkeypatch):
    """DescribeTasks batches of 5 and 15 runs: three full watch groups. Whichever replicas own them, each
    asks about whole batches, so the three together make the 3 calls per tick one replica would make
    (runs spread one by one would leave up to one partly filled batch per replica).

    Recovery passes are 5 minutes apart here, so the owners must adopt what the others submitted
    between passes (``Recovery.adopt_fresh``): the replicas settle long before the first pass."""
    last_asked: dict[int, int] = {}  # how many runs each replica asked about in its latest status call
    calls: Counter[int] = Counter()
    original = EcsProvider.status_many

    async def counting_status_many(self, runs):
        calls[id(self)] += 1
        last_asked[id(self)] = len(runs)
        return await original(self, runs)

    monkeypatch.setattr(EcsProvider, "status_many", counting_status_many)
    n_runs = 15
    pool = await _pool(prefect_api_url)
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    with EcsEmulator(default_run_s=600) as emu:
        runs = await _runs(prefect_client, pool, n_runs)
        loop = LOOP.model_copy(update={"pending_grace_s": 600})
        replicas = [await Replica(_config(prefect_api_url, pool, emu, dsn, f"replica-{n}", batch=5, loop=loop)).started()
                    for n in range(3)]
        try:
            await wait_until(prefect_client, [r.id for r in runs], lambda r: bool(r.infrastructure_pid), timeout_s=120)
            await _wait_for(lambda: len(set().union(*(r.watched() for r in replicas))) == n_runs)
            attempts = set().union(*(r.watched() for r in replicas))
            sets = await _settled(replicas, attempts, timeout_s=120)  # the first pass after the start is at 300 s
            groups = Counter(slot for replica in replicas for slot in replica.slots().values())
            assert sorted(groups.values()) == [5] * 3, groups  # three full groups, nothing left over

            calls.clear()
            last_asked.clear()
            await _wait_for(lambda: sum(1 for s in sets if s) == len(calls) and min(calls.values()) >= 2)
            assert sorted(last_asked.values()) == sorted(len(s) for s in sets if s)
            assert all(n % 5 == 0 for n in last_asked.values()), last_asked
            assert sum(n // 5 for n in last_asked.values()) == 3
            assert len(emu.tasks) == n_runs
        finally:
            for replica in replicas:
                await replica.kill()
