"""Benchmark: one replica watching many runs in flight (10,000 on ECS; Cloud Run and ACI at their quotas).

A Prefect server on PostgreSQL, the cloud's emulator in its own process (default mode:
no launch limit, containers that keep running), N flow runs dispatched by one
``dispatcher serve`` process (ledger on PostgreSQL, launch pacing raised so the backlog
drains at the machine's speed). Once every run has started, the watch is measured for
``--window`` seconds: the dispatcher's peak RSS (VmHWM of its process, nothing else in it),
watch tick duration (its ``dispatcher_watch_tick_seconds`` histogram), cloud calls per tick
(counted by the emulator) and the dispatcher's CPU per tick.

    python bench/inflight.py --cloud ecs --runs 10000 --seeded   # runs already in flight (bench/seed_running.py)
    python bench/inflight.py --cloud cloud-run --runs 1000   # 1000 running executions per project and region
    python bench/inflight.py --cloud aci --runs 100          # 100 container groups per region
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bulk_runs import bulk_create  # noqa: E402
from bench.clouds import bench_cloud  # noqa: E402
from bench.launch_rate import count_in_states, create_backlog  # noqa: E402
from bench.pg import temporary_database  # noqa: E402
from bench.seed_running import seed_running  # noqa: E402
from bench.stats import process_cpu_s  # noqa: E402

POOL = "bench-inflight"
RECOVERY_PASS = "dispatcher_recovery_pass_seconds"
FAST_PACING = {"ecs": {"launch_rate_per_s": 1000.0, "launch_burst": 100},
               "cloud-run": {"run_quota_per_min": 60000}, "aci": {}}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", choices=["ecs", "cloud-run", "aci"], default="ecs")
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--watch-interval", type=float, default=10.0, help="loop.watch_interval_s")
    parser.add_argument("--window", type=float, default=120.0, help="seconds of watching measured")
    parser.add_argument("--create-concurrency", type=int, default=16)
    parser.add_argument("--seeded", action="store_true",
                        help="ECS: start the dispatcher on N runs already in flight (tasks, ledger rows, Running runs "
                        "written directly) instead of dispatching them; reports how long adopting them took")
    parser.add_argument("--through-api", action="store_true",
                        help="create the runs through the API (slow) instead of Prefect's server models (bench/bulk_runs.py)")
    return parser.parse_args()


def vm_hwm_mib(pid: int) -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def tick_histogram(metrics_url: str, name: str = "dispatcher_watch_tick_seconds") -> tuple[float, float, float]:
    """(count, sum, bucket counts <= 1 s) of a histogram: watch ticks, or recovery passes."""
    text = httpx.get(metrics_url, timeout=10).text
    count = sum(float(v) for v in re.findall(rf'^{name}_count\{{[^}}]*\}} (\S+)', text, re.M))
    total = sum(float(v) for v in re.findall(rf'^{name}_sum\{{[^}}]*\}} (\S+)', text, re.M))
    under_1s = sum(float(v) for v in re.findall(rf'^{name}_bucket\{{[^}}]*le="1.0"[^}}]*\}} (\S+)', text, re.M))
    return count, total, under_1s


def watched_now(metrics_url: str) -> int:
    """The dispatcher's ``dispatcher_inflight_runs`` (0 until its metrics answer)."""
    try:
        text = httpx.get(metrics_url, timeout=10).text
    except httpx.HTTPError:
        return 0
    return int(sum(float(v) for v in re.findall(r'^dispatcher_inflight_runs\{[^}]*\} (\S+)', text, re.M)))


def write_config(path: Path, cloud, emu, api_url: str, ledger_dsn: str, args, port: int) -> None:
    config = {
        "workspaces": [{"name": "bench", "api_url": api_url, "pools": [{"name": POOL}]}],
        "ledger_dsn": ledger_dsn, "managed_provider": cloud.kind,
        "providers": {cloud.kind: cloud.provider_settings(emu, **FAST_PACING[cloud.kind])},
        "loop": {"watch_interval_s": args.watch_interval, "poll_interval_s": 1.0},
        "service": {"port": port, "host": "127.0.0.1"},
    }
    path.write_text(yaml.safe_dump(config))


async def bench(args: argparse.Namespace) -> None:
    from prefect.client.orchestration import PrefectClient

    from dispatcher.demo.embedded import free_port, prefect_server
    from dispatcher.demo.examples.deploy import deploy_example
    from dispatcher.prefect.pools import create_pool

    cloud = bench_cloud(args.cloud)
    workdir = Path(tempfile.mkdtemp(prefix="inflight-bench-"))
    with temporary_database("bench_prefect") as prefect_db, temporary_database("bench_ledger") as ledger_db, \
            prefect_server(workdir / "prefect", database_url=prefect_db) as api_url, cloud.emulator(86400.0) as emu:
        await create_pool(api_url, POOL, cloud.pool_type, managed_provider=cloud.kind)
        async with PrefectClient(api=api_url) as client:
            deployment = await deploy_example(client, "hello", POOL, job_variables=cloud.variables(emu, 86400.0))
            began = time.perf_counter()
            if args.seeded:
                await seed_running(cloud, emu, prefect_db, ledger_db, deployment, POOL, args.runs, workdir, 86400.0)
            elif args.through_api:
                await create_backlog(client, deployment, args.runs, args.create_concurrency)
            else:
                bulk_create(prefect_db, deployment, args.runs, workdir)
            print(f"{args.runs} runs created in {time.perf_counter() - began:.0f}s", flush=True)
            port = free_port()
            write_config(workdir / "dispatcher.yaml", cloud, emu, api_url, ledger_db, args, port)
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            log = open(workdir / "dispatcher.log", "wb")  # noqa: SIM115 - closed below
            proc = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "serve", "--config",
                                     str(workdir / "dispatcher.yaml")], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                await measure(args, emu, client, proc, f"http://127.0.0.1:{port}/metrics")
            finally:
                proc.terminate()
                proc.wait(30)
                log.close()
        print(f"emulator errors: {emu.errors or 'none'}; dispatcher log: {workdir / 'dispatcher.log'}")


async def measure(args, emu, client, proc: subprocess.Popen, metrics_url: str) -> None:
    began, reported = time.perf_counter(), 0.0
    what = "watched" if args.seeded else "started"
    while (done := (watched_now(metrics_url) if args.seeded else emu.started)) < args.runs:
        if proc.poll() is not None:
            raise SystemExit(f"dispatcher exited with {proc.returncode}")
        if time.perf_counter() - reported > 60:
            reported = time.perf_counter()
            print(f"  {done} {what} after {reported - began:.0f}s; dispatcher RSS so far {vm_hwm_mib(proc.pid):.0f} MiB",
                  flush=True)
        await asyncio.sleep(2)
    print(f"all {args.runs} {what} {time.perf_counter() - began:.0f}s after the dispatcher was launched", flush=True)
    await asyncio.sleep(args.watch_interval * 2)  # every run adopted by the watch
    passes0 = tick_histogram(metrics_url, RECOVERY_PASS)
    ticks0, calls0, cpu0, t0 = tick_histogram(metrics_url), emu.calls, process_cpu_s(proc.pid), time.perf_counter()
    await asyncio.sleep(args.window)
    ticks1, calls1, cpu1, t1 = tick_histogram(metrics_url), emu.calls, process_cpu_s(proc.pid), time.perf_counter()
    passes1 = tick_histogram(metrics_url, RECOVERY_PASS)
    ticks = ticks1[0] - ticks0[0]
    calls = {op: calls1.get(op, 0) - calls0.get(op, 0) for op in calls1 if calls1.get(op, 0) != calls0.get(op, 0)}
    failed = await count_in_states(client, "FAILED", "CRASHED", "CANCELLED")
    print(f"\n{args.cloud}: {args.runs} runs in flight watched by one replica, watch interval {args.watch_interval}s, "
          f"{t1 - t0:.0f}s measured")
    print(f"dispatcher peak RSS (VmHWM): {vm_hwm_mib(proc.pid):.0f} MiB")
    if ticks:
        print(f"watch ticks: {ticks:.0f}, mean duration {(ticks1[1] - ticks0[1]) / ticks:.2f}s, "
              f"{(ticks1[2] - ticks0[2]) / ticks * 100:.0f}% under 1 s")
        print(f"cloud calls per tick: {sum(calls.values()) / ticks:.1f} ({ {op: round(n / ticks, 1) for op, n in calls.items()} })")
        print(f"dispatcher CPU per tick: {(cpu1 - cpu0) / ticks:.2f}s ({(cpu1 - cpu0) / (t1 - t0) * 100:.0f}% of a core)")
    if passes1[0] > passes0[0]:
        print(f"recovery passes: {passes1[0] - passes0[0]:.0f}, mean duration "
              f"{(passes1[1] - passes0[1]) / (passes1[0] - passes0[0]):.2f}s")
    print(f"runs failed/crashed/cancelled: {failed}")


def main() -> None:
    asyncio.run(bench(parse_args()))


if __name__ == "__main__":
    main()
