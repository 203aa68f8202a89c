"""Time to RUNNING on the local provider beside Prefect's Process worker (run by bench/local_latency.py).

One Prefect server; our dispatcher serves a local:push pool and ``prefect worker start
--type process`` a process pool; every ``interval`` seconds one run of the same example
flow (``hello``, real engine, default command) is created in each pool. Reported from
each run's creation time (the server's ``created``): claim (PENDING) and RUNNING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient

from bench.stats import percentile
from dispatcher.config import DispatcherConfig, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.embedded import prefect_server
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.prefect.pools import create_pool
from dispatcher.service import Dispatcher
from tests.e2e.helpers import is_final, wait_until

OURS, THEIRS = "bench-local", "bench-process"


def run_side_by_side(runs: int, interval: float, warm: bool) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="bench-vs-process-"))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        api_url = os.environ.get("PREFECT_API_URL") or stack.enter_context(prefect_server(workdir / "prefect"))
        asyncio.run(_measure(api_url, workdir, runs, interval, warm))
    print(f"total {time.monotonic() - started:.1f}s  (work directory {workdir})")


async def _measure(api_url: str, workdir: Path, runs: int, interval: float, warm: bool) -> None:
    await create_pool(api_url, OURS, "local:push", overwrite=True)
    config = DispatcherConfig(
        workspaces=[WorkspaceConfig(name="bench", api_url=api_url, pools=[PoolConfig(name=OURS)])],
        ledger_dsn=f"sqlite+aiosqlite:///{workdir / 'ledger.db'}",
        providers={"local": {"state_dir": str(workdir / "runs"), "warm_engine": warm}},
        loop=LoopConfig(), service=ServiceConfig(port=0),
    )
    async with PrefectClient(api=api_url) as client:
        await _create_process_pool(client)
        deployments = {pool: await deploy_example(client, "hello", pool, name=f"hello-{pool}") for pool in (OURS, THEIRS)}
        worker = _start_process_worker(api_url, workdir)
        dispatcher = asyncio.create_task(Dispatcher(config).run())
        try:
            await asyncio.sleep(5)  # both started and idle: measure steady state, not start-up
            ids: dict[str, list[UUID]] = {OURS: [], THEIRS: []}
            for _ in range(runs):
                for pool in (OURS, THEIRS):
                    ids[pool].append((await client.create_flow_run_from_deployment(deployments[pool])).id)
                await asyncio.sleep(interval)
            await wait_until(client, [*ids[OURS], *ids[THEIRS]], is_final, timeout_s=600)
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
            worker.terminate()
            worker.wait(timeout=30)
        print(f"{runs} + {runs} runs of the 'hello' example, one pair every {interval:g} s, {os.cpu_count()} CPUs; "
              f"our warm engine {'on' if warm else 'off'}")
        for pool, label in ((OURS, "ours (local:push)"), (THEIRS, "Prefect process worker")):
            claim, running, states = await _latencies(client, ids[pool])
            print(f"{label:24} create->PENDING {_p(claim)}   create->RUNNING {_p(running)}   final {states}")
        print(f"our runs started by the warm engine: {_warm_starts(workdir / 'runs')} of {runs}")


def _warm_starts(state_dir: Path) -> int:
    started = [json.loads(path.read_text()) for path in state_dir.glob("*/started.json")]
    return sum(1 for record in started if record.get("warm"))


async def _create_process_pool(client: PrefectClient) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with contextlib.suppress(ObjectAlreadyExists):
        await client.create_work_pool(WorkPoolCreate(name=THEIRS, type="process", base_job_template=template))


def _start_process_worker(api_url: str, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PREFECT_API_URL": api_url}
    log = open(workdir / "process-worker.log", "ab")  # noqa: SIM115 - the worker keeps it until it ends
    return subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", THEIRS, "--type", "process"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True,
    )


async def _latencies(client: PrefectClient, ids: list[UUID]) -> tuple[list[float], list[float], dict[str, int]]:
    claim, running, states = [], [], {}
    for run_id in ids:
        run = await client.read_flow_run(run_id)
        states[run.state.name] = states.get(run.state.name, 0) + 1
        history = await client.read_flow_run_states(run_id)
        for kind, out in (("PENDING", claim), ("RUNNING", running)):
            state = next((s for s in history if s.type.value == kind), None)
            if state is not None:
                out.append((state.timestamp - run.created).total_seconds())
    return claim, running, states


def _p(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5):6.2f}s p95 {percentile(values, 0.95):6.2f}s (n={len(values)})"
