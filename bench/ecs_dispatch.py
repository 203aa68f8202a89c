"""Benchmark: dispatch N flow runs to ECS (the emulator, with realistic API latency).

Provider mode (default) drives ``EcsProvider`` the way the dispatcher does: 32
submissions in flight through ``call_with_retries``, and one ``status_many`` of
every in-flight run per watch interval until all tasks have stopped.

``--dispatcher`` drives the real dispatcher instead: a temporary Prefect server,
an ``ecs:push`` pool, a deployment whose job variables point at the emulator,
N flow runs all due before the dispatcher starts (a backlog drain); claim and
submit latency come from the ledger. Tasks keep "running" there (the emulator
does not run Prefect's engine), so only dispatch and watching are measured.

    python bench/ecs_dispatch.py --runs 1000
    python bench/ecs_dispatch.py --runs 1000 --dispatcher
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

from bench.stats import peak_rss_mib, percentile  # noqa: E402
from dispatcher.loops.retry import call_with_retries  # noqa: E402
from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest  # noqa: E402
from providers.ecs import EcsJobConfiguration, EcsProvider, EcsSettings  # noqa: E402
from tests.emulators.ecs import EcsEmulator, Faults  # noqa: E402

POOL = "bench-ecs"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="flow runs to dispatch (default 1000)")
    parser.add_argument("--concurrency", type=int, default=32, help="submissions in flight (the dispatcher's default)")
    parser.add_argument("--latency", type=float, default=0.05, help="emulated API latency in seconds")
    parser.add_argument("--jitter", type=float, default=0.05, help="extra uniform random latency in seconds")
    parser.add_argument("--run-seconds", type=float, default=2.0, help="how long each emulated task runs")
    parser.add_argument("--watch-interval", type=float, default=2.0, help="seconds between status_many rounds")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="fraction of calls answered ThrottlingException")
    parser.add_argument("--retry-mode", choices=["adaptive", "standard", "legacy"], default="adaptive",
                        help="botocore retry mode of the provider (default adaptive, the provider's default)")
    parser.add_argument("--dispatcher", action="store_true", help="drive the real dispatcher and a Prefect server")
    return parser.parse_args()




def credentials(emu: EcsEmulator) -> dict:
    return {"aws_access_key_id": "AKIABENCH", "aws_secret_access_key": "bench-secret", "region_name": emu.region,
            "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}


def job_variables(emu: EcsEmulator, run_seconds: float) -> dict:
    return {"aws_credentials": credentials(emu), "image": "prefecthq/prefect:3-latest",
            "network_configuration": {"subnets": ["subnet-0bench"]},
            "env": {"EMULATOR_RUN_SECONDS": str(run_seconds)}}


def emulator(args: argparse.Namespace) -> EcsEmulator:
    faults = Faults(latency_s=args.latency, latency_jitter_s=args.jitter, throttle_rate=args.throttle_rate)
    return EcsEmulator(execute=False, default_run_s=args.run_seconds, faults=faults)


def print_calls(emu: EcsEmulator, runs: int) -> None:
    total = sum(emu.calls.values())
    print(f"AWS calls per run: {total / runs:.3f} in total")
    for operation, count in sorted(emu.calls.items(), key=lambda item: -item[1]):
        print(f"  {operation:<24} {count:>6}  ({count / runs:.3f} per run)")


# -- provider mode ----------------------------------------------------------------------------------


class Watch:
    """The dispatcher's watcher, reduced to what the provider sees: status_many of all in-flight runs."""

    def __init__(self, provider: EcsProvider, interval: float) -> None:
        self.provider, self.interval = provider, interval
        self.inflight: dict[uuid.UUID, RunRef] = {}
        self.finished: dict[str, int] = {}
        self.rounds: list[int] = []  # runs observed per round

    async def run(self, total: int) -> None:
        while sum(self.finished.values()) < total:
            await asyncio.sleep(self.interval)
            refs = list(self.inflight.values())
            if not refs:
                continue
            self.rounds.append(len(refs))
            statuses = await call_with_retries("ecs", "status_many", lambda refs=refs: self.provider.status_many(refs),
                                               deadline_s=self.interval * 10)
            for ref, status in zip(refs, statuses, strict=True):
                if status.phase == InfraPhase.EXITED:
                    key = f"{status.stop_cause.value if status.stop_cause else '?'}/{status.exit_code}"
                    self.finished[key] = self.finished.get(key, 0) + 1
                    self.inflight.pop(ref.flow_run_id, None)


async def provider_bench(args: argparse.Namespace) -> None:
    with emulator(args) as emu:
        provider = EcsProvider(EcsSettings(retry_mode=args.retry_mode))
        configuration = EcsJobConfiguration(**job_variables(emu, args.run_seconds))
        watch = Watch(provider, args.watch_interval)
        slots = asyncio.Semaphore(args.concurrency)
        latencies: list[float] = []

        async def submit_one() -> None:
            flow_run_id = uuid.uuid4()
            request = SubmitRequest(flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key=f"prefect-{flow_run_id.hex}",
                                    workspace="bench", pool=POOL, configuration=configuration,
                                    limits=RunLimits(max_runtime_s=3600))
            async with slots:
                started = time.perf_counter()
                submission = await call_with_retries("ecs", "submit", lambda: provider.submit(request), deadline_s=900)
                latencies.append(time.perf_counter() - started)
            watch.inflight[flow_run_id] = RunRef(flow_run_id=flow_run_id, attempt_id=flow_run_id, infrastructure_id=submission.infrastructure_id,
                                                 configuration=configuration)

        began = time.perf_counter()
        watcher = asyncio.create_task(watch.run(args.runs))
        await asyncio.gather(*(submit_one() for _ in range(args.runs)))
        submitted = time.perf_counter() - began
        await watcher
        finished = time.perf_counter() - began
        await provider.aclose()
        report_provider(args, emu, latencies, submitted, finished, watch)


def report_provider(args: argparse.Namespace, emu: EcsEmulator, latencies: list[float], submitted: float,
                    finished: float, watch: Watch) -> None:
    print(f"\nECS provider bench: {args.runs} runs, {args.concurrency} submissions in flight, API latency "
          f"{args.latency * 1000:.0f}+{args.jitter * 1000:.0f} ms, tasks run {args.run_seconds}s, "
          f"throttle rate {args.throttle_rate}, retry mode {args.retry_mode}")
    print(f"submission: {args.runs / submitted:.1f} runs/s ({submitted:.2f}s for all); "
          f"end to end {args.runs / finished:.1f} runs/s ({finished:.2f}s until every task stopped)")
    warm = latencies[args.concurrency * 2:]  # the first waves include client creation and the first registration
    print(f"submit latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"max {max(latencies) * 1000:.1f} ms; after the first {args.concurrency * 2} submissions: "
          f"p50 {percentile(warm, 0.5) * 1000:.1f} ms, p99 {percentile(warm, 0.99) * 1000:.1f} ms")
    print_calls(emu, args.runs)
    observed = sum(watch.rounds)
    describes = emu.calls.get("DescribeTasks", 0)
    if describes:
        print(f"status: {len(watch.rounds)} watch rounds, peak {max(watch.rounds)} runs in flight, "
              f"{observed / describes:.1f} runs per DescribeTasks call")
    print(f"outcomes (stop cause/exit code): {watch.finished}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (this process: provider, emulator threads, Python)")
    print(f"emulator errors: {emu.errors or 'none'}")


# -- dispatcher mode --------------------------------------------------------------------------------


async def dispatcher_bench(args: argparse.Namespace) -> None:
    from prefect.client.orchestration import PrefectClient

    from dispatcher.demo.embedded import prefect_server
    from dispatcher.demo.examples.deploy import deploy_example
    from dispatcher.prefect.pools import create_pool

    workdir = Path(tempfile.mkdtemp(prefix="ecs-bench-"))
    with prefect_server(workdir / "prefect") as api_url, emulator(args) as emu:
        await create_pool(api_url, POOL, "ecs:push")
        async with PrefectClient(api=api_url) as client:
            deployment = await deploy_example(client, "hello", POOL, job_variables=job_variables(emu, 3600))
            await run_dispatcher(args, api_url, workdir, client, deployment, emu)
        print(f"emulator errors: {emu.errors or 'none'}")


async def run_dispatcher(args, api_url, workdir, client, deployment, emu: EcsEmulator) -> None:
    """A backlog drain: all runs are due before the dispatcher starts (the local SQLite Prefect server
    creates only a few runs per second, too slow to measure claims of runs created while dispatching)."""
    from dispatcher.clock import utcnow
    from dispatcher.config import (
        DispatcherConfig,
        LoopConfig,
        PoolConfig,
        ServiceConfig,
        WorkspaceConfig,
    )
    from dispatcher.service import Dispatcher

    began = time.perf_counter()
    ids = await create_runs(client, deployment, args.runs)
    print(f"created {len(ids)} flow runs in {time.perf_counter() - began:.1f}s; starting the dispatcher", flush=True)
    ledger_dsn = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    config = DispatcherConfig(
        workspaces=[WorkspaceConfig(name="bench", api_url=api_url, pools=[PoolConfig(name=POOL)])],
        ledger_dsn=ledger_dsn, providers={"ecs": {"retry_mode": args.retry_mode}},
        loop=LoopConfig(max_concurrent_submissions=args.concurrency, watch_interval_s=args.watch_interval),
        service=ServiceConfig(port=0),
    )
    dispatcher = Dispatcher(config)
    task = asyncio.create_task(dispatcher.run())
    while not dispatcher.healthy():
        await asyncio.sleep(0.05)
    ready_at, began = utcnow(), time.perf_counter()
    while len(emu.tasks) < args.runs and time.perf_counter() - began < 900:
        await asyncio.sleep(0.1)
    drained = time.perf_counter() - began
    await asyncio.sleep(args.watch_interval * 3)  # a few watch rounds with everything in flight
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await report_dispatcher(args, ledger_dsn, ids, emu, ready_at, drained)


async def create_runs(client, deployment, runs: int) -> list[uuid.UUID]:
    """Create runs a few at a time (SQLite answers 503 when it is busy; retry those)."""
    from prefect.exceptions import PrefectHTTPStatusError

    slots = asyncio.Semaphore(2)

    async def one() -> uuid.UUID:
        async with slots:
            for attempt in range(20):
                try:
                    return (await client.create_flow_run_from_deployment(deployment)).id
                except PrefectHTTPStatusError as exc:
                    if exc.response.status_code != 503 or attempt == 19:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    return list(await asyncio.gather(*(one() for _ in range(runs))))


async def report_dispatcher(args, ledger_dsn: str, ids, emu: EcsEmulator, ready_at, drained: float) -> None:
    from dispatcher.ledger import Ledger

    ledger = await Ledger.open(ledger_dsn)
    claims, submits = [], []
    for flow_run_id in ids:
        row = await ledger.last_attempt(str(flow_run_id))
        if row is None:
            continue
        claims.append((row.claimed_at - ready_at).total_seconds())
        if row.submitted_at:
            submits.append((row.submitted_at - ready_at).total_seconds())
    await ledger.close()
    print(f"\nDispatcher bench: {args.runs} runs due at once; {len(emu.tasks)} tasks started {drained:.1f}s after the "
          f"dispatcher was ready ({len(emu.tasks) / drained:.1f} runs/s)")
    print(f"claim latency (dispatcher ready -> PENDING accepted): p50 {percentile(claims, 0.5):.2f}s, "
          f"p99 {percentile(claims, 0.99):.2f}s")
    print(f"submit latency (dispatcher ready -> task started): p50 {percentile(submits, 0.5):.2f}s, "
          f"p99 {percentile(submits, 0.99):.2f}s")
    print_calls(emu, args.runs)
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (dispatcher, emulator threads; the Prefect server is another process)")


async def read_runs(client, ids: list[uuid.UUID]) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found = []
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        found += await client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk))
    return found


def main() -> None:
    args = parse_args()
    asyncio.run(dispatcher_bench(args) if args.dispatcher else provider_bench(args))


if __name__ == "__main__":
    main()
