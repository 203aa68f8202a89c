"""Benchmark: replicas divide the watching (status calls per tick with 1 and with 3 replicas; takeover).

A temporary Prefect server, an ``ecs:push`` pool on the ECS emulator (tasks that keep
running), N flow runs dispatched by one replica. Then, on the same in-flight set:

1. one replica watches everything: DescribeTasks calls and task ARNs asked per watch tick;
2. two more replicas join: the same figures, summed over the three, once they have settled
   (each watches exactly the watch groups it owns: whole DescribeTasks batches);
3. one of the three is killed (no shutdown, as with kill -9): seconds until the two left
   watch every run again (``loop.member_ttl_s`` plus one recovery pass is the design bound).

Ratios between phases hold on a noisy machine; absolute times do not.

    python bench/watch_shards.py --runs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ecs_dispatch import create_runs, job_variables  # noqa: E402
from bench.stats import peak_rss_mib  # noqa: E402
from tests.emulators.ecs import EcsEmulator, Faults  # noqa: E402

POOL = "bench-shards"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="flow runs in flight (default 1000)")
    parser.add_argument("--watch-interval", type=float, default=2.0, help="loop.watch_interval_s")
    parser.add_argument("--ttl", type=float, default=15.0, help="loop.member_ttl_s")
    parser.add_argument("--window", type=float, default=20.0, help="seconds each phase is measured for")
    parser.add_argument("--latency", type=float, default=0.02, help="emulated API latency in seconds")
    return parser.parse_args()


class Replica:
    def __init__(self, config) -> None:
        from dispatcher.service import Dispatcher

        self.dispatcher = Dispatcher(config)
        self.task = asyncio.create_task(self.dispatcher.run())

    async def started(self) -> "Replica":
        while not self.dispatcher.healthy():
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.05)
        return self

    @property
    def workspace(self):
        return self.dispatcher.workspaces[0]

    def watched(self) -> set:
        return {run.attempt.attempt_id for run in self.workspace.inflight.watched()}

    def slots(self) -> dict:
        return {run.attempt.attempt_id: run.slot for run in self.workspace.inflight.watched()}

    def settled(self, slots: dict) -> bool:
        """Watching exactly the attempts whose slot (watch group) it owns."""
        return self.watched() == {a for a, slot in slots.items() if self.workspace.shards.owns(slot)}

    async def kill(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def config(args, api_url: str, ledger_dsn: str, name: str):
    from dispatcher.config import (
        DispatcherConfig,
        LoopConfig,
        PoolConfig,
        ServiceConfig,
        WorkspaceConfig,
    )

    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="bench", api_url=api_url, pools=[PoolConfig(name=POOL)])],
        ledger_dsn=ledger_dsn, instance_name=name, service=ServiceConfig(port=0),
        loop=LoopConfig(watch_interval_s=args.watch_interval, member_ttl_s=args.ttl,
                        membership_interval_s=min(3.0, args.ttl / 3), listen_for_events=False),
    )


async def until(condition, timeout_s: float = 900) -> float:
    began = time.perf_counter()
    while not condition():
        if time.perf_counter() - began > timeout_s:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.1)
    return time.perf_counter() - began


async def measure(args, label: str, counted: dict) -> float:
    """Per replica: DescribeTasks calls and ARNs per watch tick of its own; summed over the replicas
    (a tick lasts longer than the interval on a loaded machine, so ticks are counted, not assumed)."""
    counted.clear()
    await asyncio.sleep(args.window)
    calls = sum(c["describe"] / c["ticks"] for c in counted.values())
    asked = sum(c["asked"] / c["ticks"] for c in counted.values())
    ticks = "/".join(str(c["ticks"]) for c in counted.values())
    print(f"{label:<18} DescribeTasks calls per tick {calls:6.2f}   task ARNs asked per tick {asked:8.1f}   "
          f"(ticks measured per replica: {ticks})", flush=True)
    return calls


async def bench(args) -> None:
    from prefect.client.orchestration import PrefectClient

    from dispatcher.demo.embedded import prefect_server
    from dispatcher.demo.examples.deploy import deploy_example
    from dispatcher.prefect.pools import create_pool
    from providers.ecs import EcsProvider

    counted: dict[int, dict[str, int]] = {}  # per provider instance, i.e. per replica
    original = EcsProvider.status_many

    async def counting(self, runs):
        mine = counted.setdefault(id(self), {"ticks": 0, "asked": 0, "describe": 0})
        mine["ticks"] += 1
        mine["asked"] += len(runs)
        mine["describe"] += -(-len(runs) // 100)  # one cluster here: DescribeTasks takes 100 ARNs
        return await original(self, runs)

    EcsProvider.status_many = counting  # type: ignore[method-assign]
    workdir = Path(tempfile.mkdtemp(prefix="shards-bench-"))
    ledger_dsn = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    faults = Faults(latency_s=args.latency, latency_jitter_s=args.latency)
    with prefect_server(workdir / "prefect") as api_url, EcsEmulator(default_run_s=86400, faults=faults) as emu:
        await create_pool(api_url, POOL, "ecs:push")
        async with PrefectClient(api=api_url) as client:
            deployment = await deploy_example(client, "hello", POOL, job_variables=job_variables(emu, 86400))
            began = time.perf_counter()
            await create_runs(client, deployment, args.runs)
            print(f"created {args.runs} flow runs in {time.perf_counter() - began:.0f}s", flush=True)
        first = await Replica(config(args, api_url, ledger_dsn, "replica-0")).started()
        drained = await until(lambda: len(first.watched()) == args.runs)
        print(f"one replica: {args.runs} runs submitted and watched after {drained:.0f}s", flush=True)
        attempts = first.watched()
        slots = first.slots()
        print(f"watch groups: {len(set(slots.values()))} for {len(slots)} runs", flush=True)
        one = await measure(args, "1 replica", counted)
        replicas = [first] + [await Replica(config(args, api_url, ledger_dsn, f"replica-{n}")).started() for n in (1, 2)]
        settled = await until(lambda: all(r.settled(slots) for r in replicas)
                              and sum(len(r.watched()) for r in replicas) == args.runs)
        print(f"two replicas joined; settled after {settled:.0f}s: watching {[len(r.watched()) for r in replicas]}")
        three = await measure(args, "3 replicas (sum)", counted)
        await replicas[0].kill()
        survivors = replicas[1:]
        takeover = await until(lambda: set().union(*(r.watched() for r in survivors)) == attempts)
        print(f"replica killed: its runs watched again after {takeover:.1f}s (member_ttl_s {args.ttl:g}, "
              f"recovery every {config(args, api_url, ledger_dsn, 'x').loop.pending_grace_s / 2:g}s)")
        print(f"status calls per tick, 3 replicas / 1 replica: {three / one:.2f} "
              f"(one replica's floor: ceil(N/100) = {-(-args.runs // 100)}; replicas own whole groups of 100)")
        print(f"RunTask calls {emu.calls['RunTask']}, tasks started {len(emu.tasks)} (no run started twice)")
        print(f"peak RSS: {peak_rss_mib():.0f} MiB (three replicas in this process, and the emulator)")
        for replica in survivors:
            await replica.kill()


if __name__ == "__main__":
    asyncio.run(bench(parse_args()))
