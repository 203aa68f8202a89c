"""Benchmark: sustained dispatch at the cloud's own launch rate, through a Prefect server on PostgreSQL.

For each cloud: the emulator in realistic mode (its documented API rates and launch-rate
limit, phase times scaled by --time-factor) in its own process; a Prefect server on a
fresh PostgreSQL database; a backlog of N runs all due before the dispatcher starts; one
dispatcher (ledger on PostgreSQL too) whose provider paces launches at the cloud's limit.

Reported per cloud: the sustained start rate against the launch limit (after the first
burst, until the backlog is nearly drained), throttling answers counted by the emulator,
runs that failed, and the most runs claimed but not yet started at any moment (the claim
horizon: runs beyond what can start soon stay Scheduled, free for another replica).

    python bench/launch_rate.py --cloud ecs --runs 1200
    python bench/launch_rate.py --cloud cloud-run --runs 400
    python bench/launch_rate.py --cloud aci --runs 320 --aci-groups 400   # an hour: ACI allows 300 creates per hour

The emulator tasks never run Prefect's engine, so a started run stays PENDING in Prefect:
claimed-not-started = PENDING runs - containers started.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bulk_runs import bulk_create  # noqa: E402
from bench.clouds import BenchCloud, bench_cloud  # noqa: E402
from bench.pg import temporary_database  # noqa: E402
from bench.stats import peak_rss_mib, pid_listening_on, process_cpu_s  # noqa: E402

POOL = "bench-launch"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", choices=["ecs", "cloud-run", "aci"], default="ecs")
    parser.add_argument("--runs", type=int, default=None, help="backlog size (default: ~60 s at the limit plus the burst)")
    parser.add_argument("--time-factor", type=float, default=0.01, help="realistic phase times x this")
    parser.add_argument("--horizon", type=float, default=30.0, help="loop.claim_horizon_s")
    parser.add_argument("--concurrency", type=int, default=32, help="loop.max_concurrent_submissions")
    parser.add_argument("--limit", type=float, default=None,
                        help="ECS: the account's Fargate launch rate in tasks/s (default AWS's 20; burst 5x), set "
                        "alike in the emulator and the provider, for machines where one Prefect server cannot carry 20/s")
    parser.add_argument("--plain", action="store_true",
                        help="emulator in default mode (no limits): what the dispatcher and Prefect alone reach")
    parser.add_argument("--through-api", action="store_true",
                        help="create the backlog through the API (slow) instead of Prefect's server models")
    parser.add_argument("--create-concurrency", type=int, default=8, help="flow runs created at once")
    parser.add_argument("--duration", type=float, default=3600.0, help="stop after this many seconds of dispatch")
    parser.add_argument("--aci-groups", type=int, default=None,
                        help="ACI: the subscription's container groups (and cores) per region, documented default 100 "
                        "and adjustable; the bench's containers keep running, so an hour at the limit needs 300")
    return parser.parse_args()


# The cloud's launch limit (what the emulator enforces in realistic mode) and how the provider is told about it.
LIMITS = {
    "ecs": {"per_s": 20.0, "burst": 100, "settings": {"launch_rate_per_s": 20.0, "launch_burst": 20}},
    "cloud-run": {"per_s": 3.0, "burst": 180, "settings": {"run_quota_per_min": 180}},
    "aci": {"per_s": 300 / 3600, "burst": 100, "settings": {}},
}


async def create_backlog(client, deployment_id, runs: int, concurrency: int) -> list[uuid.UUID]:
    slots = asyncio.Semaphore(concurrency)

    async def one() -> uuid.UUID:
        async with slots:
            return (await client.create_flow_run_from_deployment(deployment_id)).id

    return list(await asyncio.gather(*(one() for _ in range(runs))))


async def count_in_states(client, *types: str) -> int:
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    states = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType(t) for t in types])))
    return await client.count_flow_runs(flow_run_filter=states)


async def bench(args: argparse.Namespace, cloud: BenchCloud) -> None:
    from prefect.client.orchestration import PrefectClient

    from dispatcher.demo.embedded import prefect_server
    from dispatcher.demo.examples.deploy import deploy_example
    from dispatcher.prefect.pools import create_pool

    limit = scaled_limit(cloud.kind, args.limit)
    runs = args.runs or int(limit["burst"] + 60 * limit["per_s"])
    workdir = Path(tempfile.mkdtemp(prefix="launch-bench-"))
    with temporary_database("bench_prefect") as prefect_db, temporary_database("bench_ledger") as ledger_db, \
            prefect_server(workdir / "prefect", database_url=prefect_db) as api_url, \
            cloud.emulator(3600.0, **realism(args, limit)) as emu:
        await create_pool(api_url, POOL, cloud.pool_type, managed_provider=cloud.kind)
        async with PrefectClient(api=api_url) as client:
            deployment = await deploy_example(client, "hello", POOL, job_variables=cloud.variables(emu, 3600.0))
            began = time.perf_counter()
            if args.through_api:
                await create_backlog(client, deployment, runs, args.create_concurrency)
            else:
                bulk_create(prefect_db, deployment, runs, workdir)
            print(f"{cloud.kind}: {runs} runs created in {time.perf_counter() - began:.1f}s (Prefect on PostgreSQL)",
                  flush=True)
            config = dispatcher_config(args, cloud, emu, api_url, ledger_db, limit["settings"])
            server_pid = pid_listening_on(int(api_url.rsplit(":", 1)[1].split("/")[0]))
            cpu_before = (time.process_time(), process_cpu_s(server_pid) if server_pid else float("nan"), emu.cpu_s)
            samples = await drive(config, client, emu, runs, args.duration)
            cpu_after = (time.process_time(), process_cpu_s(server_pid) if server_pid else float("nan"), emu.cpu_s)
            cpu = [after - before for before, after in zip(cpu_before, cpu_after)]
            failed = await count_in_states(client, "FAILED", "CRASHED", "CANCELLED")
        report(args, cloud, limit, runs, samples, emu, failed)
        print(f"CPU per run started: dispatcher {cpu[0] / runs * 1000:.1f} ms, Prefect server {cpu[1] / runs * 1000:.1f} ms, "
              f"emulator {cpu[2] / runs * 1000:.1f} ms (CPU time: holds on a busy machine, wall-clock rates do not)")


def scaled_limit(kind: str, per_s: float | None) -> dict:
    if per_s is None:
        return LIMITS[kind]
    if kind != "ecs":
        raise SystemExit("--limit is for ECS (Cloud Run's quota is 3/s, ACI's 300/h: both fit this machine)")
    return {"per_s": per_s, "burst": int(per_s * 5),
            "settings": {"launch_rate_per_s": per_s, "launch_burst": max(1.0, per_s)}}


def realism(args, limit: dict) -> dict:
    if args.plain:
        return {}
    from tests.emulators.kit import RateLimit, Realism

    emulator = {"realistic": Realism(time_factor=args.time_factor)}
    if args.cloud == "aci" and args.aci_groups is not None:
        from tests.emulators.aci import Faults as AciFaults

        emulator["faults"] = AciFaults(max_groups_per_region=args.aci_groups, max_cores_per_region=float(args.aci_groups))
    if args.cloud == "ecs" and args.limit is not None:
        from tests.emulators.ecs import Faults

        bucket = RateLimit(per_s=limit["per_s"], burst=limit["burst"])
        emulator["faults"] = Faults(launch_limits={"FARGATE": bucket, "FARGATE_SPOT": bucket})
    return emulator


def dispatcher_config(args, cloud: BenchCloud, emu, api_url: str, ledger_dsn: str, pacing: dict):
    from dispatcher.config import (
        DispatcherConfig,
        LoopConfig,
        PoolConfig,
        ServiceConfig,
        WorkspaceConfig,
    )

    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="bench", api_url=api_url, pools=[PoolConfig(name=POOL)])],
        ledger_dsn=ledger_dsn, managed_provider=cloud.kind,
        providers={cloud.kind: cloud.provider_settings(emu, **pacing)},
        loop=LoopConfig(max_concurrent_submissions=args.concurrency, claim_horizon_s=args.horizon,
                        poll_interval_s=1.0, watch_interval_s=5.0),
        service=ServiceConfig(port=0),
    )


async def drive(config, client, emu, runs: int, duration_s: float) -> list[tuple[float, int, int]]:
    """Run the dispatcher until every run has started; sample (seconds, started, PENDING) twice a second."""
    from dispatcher.service import Dispatcher

    dispatcher = Dispatcher(config)
    task = asyncio.create_task(dispatcher.run())
    while not dispatcher.healthy():
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    began, samples = time.perf_counter(), []
    try:
        while True:
            started, pending = emu.started, await count_in_states(client, "PENDING")
            samples.append((time.perf_counter() - began, started, pending))
            if started >= runs or time.perf_counter() - began > duration_s:
                return samples
            await asyncio.sleep(0.5)
    finally:
        dispatcher.request_stop()  # as on SIGTERM: submissions in flight finish, nothing new is claimed
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=60)
        except asyncio.TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def sustained_rate(samples: list[tuple[float, int, int]], burst: int, runs: int) -> tuple[float, float, float]:
    """Starts per second between the end of the first burst and 95% of the backlog (rate, from_s, to_s)."""
    first = next((s for s in samples if s[1] >= min(burst, runs // 4)), samples[0])
    last = next((s for s in samples if s[1] >= runs * 0.95), samples[-1])
    span = max(last[0] - first[0], 1e-9)
    return (last[1] - first[1]) / span, first[0], last[0]


def report(args, cloud: BenchCloud, limit: dict, runs: int, samples, emu, failed: int) -> None:
    rate, t0, t1 = sustained_rate(samples, int(limit["burst"]), runs)
    waiting = max(pending - started for _, started, pending in samples)
    allowed = args.horizon * limit["per_s"] + args.concurrency
    print(f"\n{cloud.kind} launch-rate bench: {runs} runs due at once, limit {limit['per_s']:.3g}/s "
          f"(burst {limit['burst']}), time factor {args.time_factor}")
    if cloud.kind != "aci":  # ACI's limit is a burst of 100 then the hour's 300: reported per hour below
        print(f"sustained starts: {rate:.2f}/s from {t0:.1f}s to {t1:.1f}s = {rate / limit['per_s'] * 100:.1f}% of the limit")
    print(f"{samples[-1][1]} started after {samples[-1][0]:.1f}s")
    if cloud.kind == "aci":  # the binding quota is the hour's: what matters is how much of it one hour used
        in_hour = max((started for at, started, _ in samples if at <= 3600.0), default=0)
        print(f"started within the first hour: {in_hour} of the 300 ACI allows per hour = {in_hour / 3:.1f}%"
              + ("" if samples[-1][0] >= 3600.0 else " (the bench ended before the hour did)"))
    print(f"runs failed: {failed}; throttling answers from the cloud: {emu.throttled}; calls: {emu.calls}")
    print(f"most runs claimed but not started at once: {waiting} (horizon {args.horizon:.0f}s x limit + "
          f"{args.concurrency} submissions in flight = {allowed:.0f})")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB; emulator errors: {emu.errors or 'none'}")


def main() -> None:
    args = parse_args()
    asyncio.run(bench(args, bench_cloud(args.cloud)))


if __name__ == "__main__":
    main()
