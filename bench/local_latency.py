"""Dispatch latency on the local provider (a benchmark, not a test).

Creates N ad-hoc runs (default 100) spaced by --interval seconds against a
temporary Prefect server (or $PREFECT_API_URL), dispatches them with the real
dispatcher, and prints, from each run's scheduled time:
  - claim latency   (PENDING accepted; Prefect's own state timestamp)
  - submit latency  (infrastructure started; the ledger's submitted_at)
as p50 / p90 / p99 / max. Prefect sets a run's scheduled time when the create
request is built; under load its server may take seconds to commit it, so claim
latency is also reported from the moment the create call returned. The job command is tests/e2e/fake_engine.py so that
100 Prefect engine imports do not load the 2-core machine being measured.

    python bench/local_latency.py --runs 100 --interval 0.1

With --vs-process-worker it instead measures time to RUNNING with the real engine,
side by side with Prefect's own Process worker on the same server: every --interval
seconds (default 4) one run of the ``hello`` example is created in our local:push pool
and one in a ``process`` pool served by ``prefect worker start``; it prints, from each
run's creation, claim (PENDING) and RUNNING latency p50/p95 for both. --cold turns our
warm engine off (every run starts ``prefect flow-run execute``), for the before/after.

    python bench/local_latency.py --vs-process-worker --runs 10 --interval 4
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prefect.client.orchestration import PrefectClient  # noqa: E402

from dispatcher.config import (  # noqa: E402
    DispatcherConfig,
    PoolConfig,
    ServiceConfig,
    WorkspaceConfig,
)
from dispatcher.demo.embedded import prefect_server  # noqa: E402
from dispatcher.demo.examples.deploy import deploy_example  # noqa: E402
from dispatcher.ledger import Ledger  # noqa: E402
from dispatcher.prefect.pools import create_pool  # noqa: E402
from dispatcher.service import Dispatcher  # noqa: E402
from tests.e2e.helpers import fake_engine_command, is_final, wait_until  # noqa: E402


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.3f}s  p90 {q[89]:.3f}s  p99 {q[98]:.3f}s  max {values[-1]:.3f}s  (n={len(values)})"


async def measure(api_url: str, workdir: Path, runs: int, interval: float) -> None:
    await create_pool(api_url, "bench-local", "local:push", overwrite=True)
    ledger_dsn = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    config = DispatcherConfig(
        workspaces=[WorkspaceConfig(name="bench", api_url=api_url, pools=[PoolConfig(name="bench-local")])],
        ledger_dsn=ledger_dsn, providers={"local": {"state_dir": str(workdir / "runs")}}, service=ServiceConfig(port=0),
    )
    async with PrefectClient(api=api_url) as client:
        deployment = await deploy_example(client, "hello", "bench-local",
                                          job_variables={"command": fake_engine_command(workdir / "starts.txt")})
        task = asyncio.create_task(Dispatcher(config).run())
        await asyncio.sleep(3)  # dispatcher started and idle: measure steady state, not start-up
        ids, created_at, create_s = [], {}, []
        for _ in range(runs):
            before = time.monotonic()
            run = await client.create_flow_run_from_deployment(deployment)
            create_s.append(time.monotonic() - before)
            ids.append(run.id)
            created_at[run.id] = datetime.now(timezone.utc)  # when the API had committed the run
            await asyncio.sleep(interval)
        await wait_until(client, ids, is_final, timeout_s=300)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        claim, submit, claim_after_create = [], [], []
        ledger = await Ledger.open(ledger_dsn)
        for run_id in ids:
            run = await client.read_flow_run(run_id)
            history = await client.read_flow_run_states(run_id)
            pending = next(s for s in history if s.type.value == "PENDING")
            claim.append((pending.timestamp - run.expected_start_time).total_seconds())
            claim_after_create.append((pending.timestamp - created_at[run_id]).total_seconds())
            row = await ledger.last_attempt(str(run_id))
            submit.append((row.submitted_at - run.expected_start_time).total_seconds())
        await ledger.close()
    print(f"create call (Prefect API): {percentiles(create_s)}")
    print(f"claim  latency: {percentiles(claim)}")
    print(f"claim  after the create call returned: {percentiles(claim_after_create)}")
    print(f"submit latency: {percentiles(submit)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100, help="runs (per pool with --vs-process-worker)")
    parser.add_argument("--interval", type=float, default=None, help="seconds between run creations (0.1; 4 with --vs-process-worker)")
    parser.add_argument("--vs-process-worker", action="store_true", help="time to RUNNING, ours beside Prefect's Process worker")
    parser.add_argument("--cold", action="store_true", help="with --vs-process-worker: our warm engine off")
    args = parser.parse_args()
    if args.vs_process_worker:
        from bench.local_vs_process_worker import run_side_by_side

        run_side_by_side(args.runs, 4.0 if args.interval is None else args.interval, warm=not args.cold)
        return
    args.interval = 0.1 if args.interval is None else args.interval
    workdir = Path(tempfile.mkdtemp(prefix="bench-local-"))
    api_url = os.environ.get("PREFECT_API_URL")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if not api_url:
            api_url = stack.enter_context(prefect_server(workdir / "prefect"))
        asyncio.run(measure(api_url, workdir, args.runs, args.interval))
    print(f"total {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
