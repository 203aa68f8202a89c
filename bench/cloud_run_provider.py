"""Benchmark: N flow runs through the Cloud Run provider against the Cloud Run emulator (realistic latency).

Drives ``CloudRunProvider`` the way the dispatcher does: 32 submissions in flight through
``call_with_retries`` (the dispatcher's retry path), and one ``status_many`` of every
in-flight run per watch interval until every execution has ended. Two phases: without
faults, then with 10% of calls throttled (429 RESOURCE_EXHAUSTED). Prints runs/s, API calls
per run by operation beside what Prefect's own CloudRunWorkerV2 makes per run (counted
by tests/e2e/test_prefect_cloud_run_worker_on_emulator.py), list calls per watch tick at
the peak number in flight, submit latency p50/p99, event-loop lag, CPU and peak RSS.

The emulator has no run quota by default, so the provider's pace is raised with
``--run-rate`` (its default of 1 :run/s per region is Cloud Run's unpublished default
quota; it adapts to 429s).

    python bench/cloud_run_provider.py --runs 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.remote import RemoteEmulator  # noqa: E402
from bench.stats import peak_rss_mib, percentile  # noqa: E402
from dispatcher.loops.retry import call_with_retries  # noqa: E402
from providers.base import InfraPhase, RunLimits, RunRef, SubmitRequest  # noqa: E402
from providers.cloud_run import CloudRunProvider, CloudRunSettings  # noqa: E402
from tests.emulators.cloud_run import CloudRunEmulator, Faults  # noqa: E402
from tests.providers.harnesses.cloud_run import PROJECT, REGION, configuration  # noqa: E402

#: Prefect CloudRunWorkerV2 per run (keep_job False), as the emulator counted it in
#: tests/e2e/test_prefect_cloud_run_worker_on_emulator.py; GetExecution is 1 + one per 5 s of run time.
PREFECT_WORKER_FIXED = {"OAuthToken": 1, "CreateJob": 1, "GetJob": 2, "RunJob": 1, "ListExecutions": 1,
                        "DeleteExecution": 1, "DeleteJob": 1}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="flow runs per phase (default 1000)")
    parser.add_argument("--concurrency", type=int, default=32, help="submissions in flight (the dispatcher's default)")
    parser.add_argument("--latency", type=float, default=0.05, help="emulated API latency in seconds")
    parser.add_argument("--jitter", type=float, default=0.05, help="extra uniform random latency in seconds")
    parser.add_argument("--run-seconds", type=float, default=30.0,
                        help="how long each emulated execution runs (long enough for all runs to be in flight)")
    parser.add_argument("--watch-interval", type=float, default=2.0, help="seconds between status_many rounds")
    parser.add_argument("--throttle-rate", type=float, default=0.1, help="fraction of calls throttled in phase 2")
    parser.add_argument("--throttled-runs", type=int, default=None, help="runs of phase 2 (default: --runs)")
    parser.add_argument("--quota-per-minute", type=int, default=0,
                        help="phase 3: the emulator's 'Job run requests per minute' quota (0: no phase 3)")
    parser.add_argument("--run-rate", type=float, default=100.0, help="initial and max :run pace per region (per s)")
    return parser.parse_args()




class Watch:
    """The dispatcher's watcher, reduced to what the provider sees: status_many of all in-flight runs."""

    def __init__(self, provider: CloudRunProvider, emu: RemoteEmulator, interval: float) -> None:
        self.provider, self.emu, self.interval = provider, emu, interval
        self.inflight: dict[uuid.UUID, RunRef] = {}
        self.finished: dict[str, int] = {}
        self.rounds: list[tuple[int, int]] = []  # (runs observed, ListExecutions calls) per round

    async def run(self, total: int) -> None:
        while sum(self.finished.values()) < total:
            await asyncio.sleep(self.interval)
            refs = list(self.inflight.values())
            if not refs:
                continue
            before = self.emu.calls.get("ListExecutions", 0)
            statuses = await call_with_retries("cloud-run", "status_many",
                                               lambda refs=refs: self.provider.status_many(refs),
                                               deadline_s=self.interval * 10)
            self.rounds.append((len(refs), self.emu.calls.get("ListExecutions", 0) - before))
            for ref, status in zip(refs, statuses, strict=True):
                if status.phase == InfraPhase.EXITED:
                    key = f"{status.stop_cause.value if status.stop_cause else '?'}/{status.exit_code}"
                    self.finished[key] = self.finished.get(key, 0) + 1
                    self.inflight.pop(ref.flow_run_id, None)


class LoopLag:
    """How late a 10 ms timer fires: what a blocking call would do to every other coroutine."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            self.lags.append(max(0.0, time.perf_counter() - start - 0.01))


async def phase(args: argparse.Namespace, throttle_rate: float, runs: int, quota: int = 0) -> None:
    args = argparse.Namespace(**{**vars(args), "runs": runs})
    faults = Faults(latency_s=args.latency, latency_jitter_s=args.jitter, throttle_rate=throttle_rate, seed=1,
                    run_requests_per_minute=quota or None)
    with RemoteEmulator(CloudRunEmulator, project=PROJECT, region=REGION, default_run_s=args.run_seconds, faults=faults,
                        tick_s=0.05) as emu:
        # Phase 3 starts from the provider's default pace (1/s, bursts of 10) and lets it find the quota.
        pace = {} if quota else {"run_rate_per_s": args.run_rate, "run_rate_max_per_s": args.run_rate,
                                 "run_burst": args.concurrency}
        settings = CloudRunSettings(endpoint=emu.endpoint_url, anonymous=True, **pace)
        provider = CloudRunProvider(settings)
        config = configuration("prefect flow-run execute", env={"PREFECT_API_URL": "http://prefect.example/api"})
        watch = Watch(provider, emu, args.watch_interval)
        lag = LoopLag()
        slots = asyncio.Semaphore(args.concurrency)
        latencies: list[float] = []

        async def submit_one() -> None:
            flow_run_id, attempt_id = uuid.uuid4(), uuid.uuid4()
            request = SubmitRequest(flow_run_id=flow_run_id, attempt_id=attempt_id,
                                    idempotency_key=f"prefect-{attempt_id.hex}", workspace="bench", pool="bench",
                                    configuration=config, limits=RunLimits(max_runtime_s=3600))
            async with slots:
                started = time.perf_counter()
                submission = await call_with_retries("cloud-run", "submit", lambda: provider.submit(request),
                                                     deadline_s=900)
                latencies.append(time.perf_counter() - started)
            watch.inflight[flow_run_id] = RunRef(flow_run_id=flow_run_id, attempt_id=attempt_id,
                                                 infrastructure_id=submission.infrastructure_id, configuration=config)

        lagger = asyncio.create_task(lag.run())
        cpu0, emu_cpu0, began = time.process_time(), emu.cpu_s, time.perf_counter()
        watcher = asyncio.create_task(watch.run(args.runs))
        await asyncio.gather(*(submit_one() for _ in range(args.runs)))
        submitted, submit_cpu = time.perf_counter() - began, time.process_time() - cpu0
        await watcher
        finished, cpu = time.perf_counter() - began, time.process_time() - cpu0
        emu_cpu = emu.cpu_s - emu_cpu0
        lagger.cancel()
        await provider.aclose()
        report(args, emu, throttle_rate, latencies, submitted, finished, (cpu, emu_cpu, submit_cpu), watch, lag, quota)


def report(args, emu: RemoteEmulator, throttle_rate: float, latencies: list[float], submitted: float,
           finished: float, cpus: tuple[float, float, float], watch: Watch, lag: LoopLag, quota: int = 0) -> None:
    runs = args.runs
    limit = f", run quota {quota}/min (default pacing)" if quota else ""
    print(f"\n== Cloud Run provider: {runs} runs, {args.concurrency} submissions in flight, API latency "
          f"{args.latency * 1000:.0f}+{args.jitter * 1000:.0f} ms, executions run {args.run_seconds:g}s, "
          f"throttle rate {throttle_rate:.0%}{limit}")
    print(f"submission: {runs / submitted:.1f} runs/s ({submitted:.2f}s for all); "
          f"end to end {runs / finished:.1f} runs/s ({finished:.2f}s until every execution ended)")
    print(f"submit latency: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, p99 {percentile(latencies, 0.99) * 1000:.1f}"
          f" ms, max {max(latencies) * 1000:.1f} ms")
    calls = emu.calls
    total = sum(calls.values())
    prefect = {**PREFECT_WORKER_FIXED, "GetExecution": 1 + args.run_seconds / 5}
    print(f"API calls per run: ours {total / runs:.3f}, Prefect's CloudRunWorkerV2 {sum(prefect.values()):.1f} "
          f"(for a {args.run_seconds:g}s run)")
    print(f"  {'operation':<18} {'ours (count)':>14} {'ours/run':>9} {'Prefect/run':>12}")
    for op in sorted(set(calls) | set(prefect), key=lambda o: -calls.get(o, 0)):
        print(f"  {op:<18} {calls.get(op, 0):>14} {calls.get(op, 0) / runs:>9.3f} {prefect.get(op, 0):>12.1f}")
    peak = max(watch.rounds, default=(0, 0))
    print(f"watch: {len(watch.rounds)} ticks; at the peak of {peak[0]} runs in flight one tick cost {peak[1]} "
          f"ListExecutions call(s); {sum(c for _, c in watch.rounds)} list calls in all")
    print(f"event-loop lag (10 ms timer): p50 {percentile(lag.lags, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(lag.lags, 0.99) * 1000:.1f} ms")
    cpu, emu_cpu, submit_cpu = cpus
    print(f"CPU while submitting: {submit_cpu / runs * 1000:.2f} ms per run in the provider's process "
          f"(validation, request building, the HTTP call, the dispatcher's retry wrapper, watch ticks meanwhile)")
    print(f"CPU of the provider's process: {cpu:.1f} s, {cpu / max(total, 1) * 1000:.2f} ms per API call (the "
          f"watch's parsing and the 10 ms lag timer included); the emulator's process: {emu_cpu:.1f} s "
          f"over {finished:.0f} s")
    print(f"outcomes (stop cause/exit code): {watch.finished}")
    print(f"peak RSS: {peak_rss_mib():.0f} MiB (the provider's process: provider, {runs} runs in flight, Python)")
    print(f"emulator errors: {emu.errors or 'none'}")


async def main() -> None:
    args = parse_args()
    await phase(args, 0.0, args.runs)
    if args.throttle_rate > 0:
        await phase(args, args.throttle_rate, args.throttled_runs or args.runs)
    if args.quota_per_minute:
        await phase(args, 0.0, args.throttled_runs or args.runs, args.quota_per_minute)


if __name__ == "__main__":
    asyncio.run(main())
