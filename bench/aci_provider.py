"""Benchmark: the ACI provider on the ACI emulator with realistic latency and ACI's default quotas.

Three parts (all through ``ProviderCalls``, the dispatcher's one call path: deadlines, retries):

1. **lifecycle**: N runs offered at once. A run is "claimed" only while the provider's
   ``submit_backlog_s()`` is under the claim horizon (30 s, as the dispatcher does);
   claimed runs are submitted 32 at a time, watched every 2 s, released (deleted) once
   ended. Reports runs/s until the create quota (100 per 5 min, 300 per hour) binds, how
   many runs stayed unclaimed, calls per run by operation.
2. **sweep**: 1,000 groups in flight (created without quotas for the set-up), watched
   with the default read budget: how long until every group has been read once (GET, for
   its instanceView), reads per tick and CPU per tick.
3. **throttling**: 10% of all calls answered 429; every run must still be submitted.

    python bench/aci_provider.py                # all three
    python bench/aci_provider.py --part sweep --in-flight 1000 --reads-per-s 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stats import peak_rss_mib  # noqa: E402
from dispatcher.config import LoopConfig  # noqa: E402
from dispatcher.loops.calls import ProviderCalls  # noqa: E402
from providers.aci import AciJobConfiguration, AciProvider, AciSettings  # noqa: E402
from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest  # noqa: E402
from providers.errors import TransientProviderError  # noqa: E402
from tests.emulators.aci import ACI_CREATE_QUOTA, AciEmulator, Faults  # noqa: E402
from tests.emulators.aci.faults import ACI_DELETE_QUOTA, ARM_SUBSCRIPTION_LIMITS  # noqa: E402

CLAIM_HORIZON_S = 30.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "lifecycle", "sweep", "throttling"], default="all")
    parser.add_argument("--runs", type=int, default=150, help="runs offered in the lifecycle part")
    parser.add_argument("--in-flight", type=int, default=1000, help="groups in flight in the sweep part")
    parser.add_argument("--latency", type=float, default=0.05, help="emulated ARM latency in seconds")
    parser.add_argument("--jitter", type=float, default=0.05, help="extra uniform random latency in seconds")
    parser.add_argument("--run-seconds", type=float, default=5.0, help="how long each emulated container runs")
    parser.add_argument("--watch-interval", type=float, default=2.0, help="seconds between status_many rounds")
    parser.add_argument("--reads-per-s", type=float, default=AciSettings().reads_per_s, help="read budget")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="how long the lifecycle part offers runs")
    return parser.parse_args()



def settings(emu: AciEmulator, **overrides) -> AciSettings:
    return AciSettings(arm_endpoint=emu.endpoint_url, allow_http=True, static_bearer_token="bench", **overrides)


def request(emu: AciEmulator, run_s: float) -> SubmitRequest:
    attempt = uuid.uuid4()
    configuration = AciJobConfiguration(resource_group_name="rg", subscription_id=emu.subscription_id,
                                        arm_template={}, entrypoint=None, command="python -m flow",
                                        env={"EMULATOR_RUN_SECONDS": str(run_s)})
    return SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=attempt, idempotency_key=f"prefect-{attempt.hex}",
                         workspace="bench", pool="aci-bench", configuration=configuration,
                         limits=RunLimits(max_runtime_s=3600))


def quotas(**extra) -> Faults:
    return Faults(create_quota=dict(ACI_CREATE_QUOTA), delete_quota=dict(ACI_DELETE_QUOTA),
                  arm_limits=dict(ARM_SUBSCRIPTION_LIMITS), **extra)


def print_calls(title: str, calls: Counter, runs: int) -> None:
    total = sum(calls.values())
    print(f"  {title}: {total} ARM calls, {total / max(runs, 1):.2f} per run")
    for op, count in sorted(calls.items(), key=lambda item: -item[1]):
        print(f"    {op:<40} {count:>6}  {count / max(runs, 1):.2f}/run")


async def watch_until_done(calls: ProviderCalls, refs: list[RunRef], interval: float) -> None:
    pending = list(refs)
    while pending:
        statuses = await calls.status_many(pending)
        done = [r for r, s in zip(pending, statuses) if s.phase in (InfraPhase.EXITED, InfraPhase.NOT_FOUND)]
        for ref in done:
            await calls.release(ref)
        pending = [r for r in pending if r not in done]
        if pending:
            await asyncio.sleep(interval)


async def lifecycle(args: argparse.Namespace) -> None:
    print(f"== lifecycle: {args.runs} runs offered, default quotas, latency {args.latency}+{args.jitter} s")
    with AciEmulator(default_run_s=args.run_seconds) as emu:
        emu.faults = quotas(latency_s=args.latency, latency_jitter_s=args.jitter)
        provider = AciProvider(settings(emu, refresh_after_s=args.watch_interval))
        calls = ProviderCalls(provider, LoopConfig())
        offered = [request(emu, args.run_seconds) for _ in range(args.runs)]
        submitted: list[tuple[float, RunRef]] = []
        started = time.monotonic()

        async def submit(req: SubmitRequest) -> None:
            sub = await calls.submit(req)
            submitted.append((time.monotonic() - started, RunRef(
                flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=sub.infrastructure_id,
                configuration=req.configuration)))

        tasks, unclaimed = [], list(offered)
        while unclaimed and time.monotonic() - started < args.max_seconds:
            if provider.submit_backlog_s() > CLAIM_HORIZON_S:  # the dispatcher stops claiming here
                await asyncio.sleep(0.2)
                continue
            tasks.append(asyncio.create_task(submit(unclaimed.pop(0))))
            await asyncio.sleep(0.01)  # claims come one by one
        offered_for = time.monotonic() - started
        await asyncio.gather(*tasks)
        times = sorted(t for t, _ in submitted)
        burst = [t for t in times if t <= times[min(len(times), 100) - 1]] if times else []
        print(f"  submitted {len(submitted)} in {times[-1]:.1f} s; the first {len(burst)} at "
              f"{len(burst) / max(burst[-1], 1e-9):.1f} runs/s (until the 100-per-5-min create quota binds)")
        print(f"  left Scheduled (never claimed) after {offered_for:.0f} s: {len(unclaimed)}; "
              f"submit backlog then {provider.submit_backlog_s():.0f} s (claim horizon {CLAIM_HORIZON_S:.0f} s)")
        refused = emu.calls["ContainerGroups_CreateOrUpdate"] - len(submitted)
        print(f"  creates refused by ACI's quota (429): {refused}")
        await watch_until_done(calls, [r for _, r in submitted], args.watch_interval)
        for _ in range(50):
            if len(emu.deleted_groups) >= len(submitted):
                break
            await provider.housekeeping()
            await asyncio.sleep(0.2)
        print(f"  deleted {len(emu.deleted_groups)} of {len(submitted)} groups")
        print_calls(f"calls per run (run {args.run_seconds:.0f} s, watch every {args.watch_interval:.0f} s)",
                    Counter(emu.calls), len(submitted))
        t = args.run_seconds
        print(f"  Prefect's AzureContainerWorker (prefect-azure source, T = {t:.0f} s): 1 Deployments_CreateOrUpdate +"
              f" deployment LRO polls (>= 1 DeploymentOperationStatus_Get + 1 Deployments_Get) + 1 ContainerGroups_Get"
              f" + T/5 = {t / 5:.0f} watch GETs + 1 ContainerGroups_Delete (+ its polls) = about {4 + t / 5:.0f}"
              " calls per run, and an ARM deployment record per run")
        await provider.aclose()
        assert not emu.errors, emu.errors


async def sweep(args: argparse.Namespace) -> None:
    n = args.in_flight
    print(f"== sweep: {n} groups in flight, reads_per_s {args.reads_per_s}, watch every {args.watch_interval} s")
    # The emulator shares this process (and its GIL); its ticker walks every group, so it ticks slowly here.
    with AciEmulator(default_run_s=3600, list_page_size=100, tick_s=1.0) as emu:
        setup = AciProvider(settings(emu, create_quota_per_5min=100000, create_quota_per_hour=100000,
                                     reads_per_s=10000, read_burst=10000))
        reqs = [request(emu, 3600) for _ in range(n)]
        gate = asyncio.Semaphore(32)

        async def create(req: SubmitRequest) -> RunRef:
            async with gate:
                sub = await setup.submit(req)
            return RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id,
                          infrastructure_id=sub.infrastructure_id, configuration=req.configuration)

        refs = await asyncio.gather(*(create(r) for r in reqs))
        await setup.aclose()
        emu.faults = quotas(latency_s=args.latency, latency_jitter_s=args.jitter)
        emu.reset_calls()
        provider = AciProvider(settings(emu, reads_per_s=args.reads_per_s))
        calls = ProviderCalls(provider, LoopConfig())
        started, ticks, cpu, wall, missed = time.monotonic(), 0, [], [], 0
        while len(provider.book.seen) < n:
            tick_cpu, tick_wall = time.process_time(), time.monotonic()
            try:
                await calls.status_many(refs)
            except TransientProviderError:
                missed += 1  # the dispatcher would log it and try again next tick
            cpu.append(time.process_time() - tick_cpu)
            wall.append(time.monotonic() - tick_wall)
            ticks += 1
            await asyncio.sleep(args.watch_interval)
        took = time.monotonic() - started
        print(f"  every group read once after {took:.0f} s ({ticks} ticks); "
              f"{emu.calls['ContainerGroups_Get'] / ticks:.1f} GETs and "
              f"{emu.calls['ContainerGroups_ListByResourceGroup'] / ticks:.2f} List pages per tick on average")
        print(f"  per tick: wall mean {sum(wall) / len(wall) * 1000:.0f} ms, max {max(wall) * 1000:.0f} ms; CPU "
              f"(provider and emulator) mean {sum(cpu) / len(cpu) * 1000:.0f} ms, max {max(cpu) * 1000:.0f} ms; "
              f"ticks past their deadline: {missed}")
        print_calls("calls of the sweep", Counter(emu.calls), n)
        await provider.aclose()
        assert not emu.errors, emu.errors


async def throttling(args: argparse.Namespace) -> None:
    runs = 60
    print(f"== throttling: {runs} runs, 10% of all calls answered 429 (Retry-After 1 s)")
    with AciEmulator(default_run_s=2) as emu:
        emu.faults = Faults(throttle_rate=0.1, latency_s=args.latency, latency_jitter_s=args.jitter, seed=3)
        provider = AciProvider(settings(emu, refresh_after_s=1))
        calls = ProviderCalls(provider, LoopConfig())
        started = time.monotonic()
        reqs = [request(emu, 2) for _ in range(runs)]
        gate = asyncio.Semaphore(32)

        async def submit(req: SubmitRequest):
            async with gate:
                return await calls.submit(req)

        results = await asyncio.gather(*(submit(r) for r in reqs), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        refs = [RunRef(flow_run_id=q.flow_run_id, attempt_id=q.attempt_id, infrastructure_id=s.infrastructure_id,
                       configuration=q.configuration) for q, s in zip(reqs, results) if not isinstance(s, BaseException)]
        submitted_in = time.monotonic() - started
        await watch_until_done(calls, refs, 1.0)
        groups = [*emu.groups.values(), *emu.deleted_groups]
        print(f"  submitted {len(refs)}/{runs} in {submitted_in:.1f} s, failed {len(failed)}, "
              f"groups {len(groups)}, PUTs over an existing group {sum(g.puts - 1 for g in groups)}")
        print(f"  all watched to the end in {time.monotonic() - started:.1f} s; "
              f"PUTs sent {emu.calls['ContainerGroups_CreateOrUpdate']} (429s retried by the dispatcher's path)")
        await provider.aclose()
        assert not emu.errors, emu.errors


async def main(args: argparse.Namespace) -> None:
    if args.part in ("all", "lifecycle"):
        await lifecycle(args)
    if args.part in ("all", "throttling"):
        await throttling(args)
    if args.part in ("all", "sweep"):
        await sweep(args)
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
