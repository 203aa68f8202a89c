"""``dispatcher demo``: the whole product on the embedded local provider, no cloud account.

Starts a temporary Prefect server unless PREFECT_API_URL is set, creates a
``local:push`` pool, deploys the example flows, triggers runs (completing,
failing, cancelled, over a limit), dispatches them and prints each run's final
state, its metered compute and the usage summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelling

from dispatcher.config import DispatcherConfig, Limits, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.loops.decisions import TERMINAL
from dispatcher.demo.embedded import prefect_server
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from dispatcher.prefect.pools import create_pool
from dispatcher.service import Dispatcher
from dispatcher.ledger.report import format_usage_table

POOL = "demo-local"
# (run label, example flow, job variables of the run, expected final state)
PLAN = [
    ("hello-1", "hello", {}, "Completed"),
    ("hello-2", "hello", {}, "Completed"),
    ("hello-3", "hello", {}, "Completed"),
    ("fails", "fails", {}, "Failed"),
    ("cancelled", "sleeps", {}, "Cancelled"),
    ("too-big", "hello", {"memory": 65536}, "LimitExceeded"),
]


def say(text: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def run_demo(runs: int = 6) -> int:
    workdir = Path(os.environ.get("DEMO_DIR", tempfile.mkdtemp(prefix="dispatcher-demo-")))
    api_url = os.environ.get("PREFECT_API_URL")
    with contextlib.ExitStack() as stack:
        if not api_url:
            say(f"starting a temporary Prefect server (home {workdir / 'prefect'})...")
            api_url = stack.enter_context(prefect_server(workdir / "prefect"))
        say(f"Prefect API: {api_url}")
        return await _demo(api_url, workdir, PLAN[: max(runs, 1)])


async def _demo(api_url: str, workdir: Path, plan: list) -> int:
    say(await create_pool(api_url, POOL, "local:push", overwrite=True))
    ledger_dsn = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    config = DispatcherConfig(
        workspaces=[WorkspaceConfig(name="demo", api_url=api_url, pools=[PoolConfig(name=POOL)],
                                    limits=Limits(max_memory_mib=8192, max_runtime_s=600))],
        ledger_dsn=ledger_dsn,
        providers={"local": {"state_dir": str(workdir / "local-runs")}},
        loop=LoopConfig(watch_interval_s=1.0),
        service=ServiceConfig(port=0),
    )
    async with PrefectClient(api=api_url) as client:
        run_ids = await _trigger(client, plan)
        dispatcher = asyncio.create_task(Dispatcher(config).run())
        try:
            finals = await _follow(client, run_ids)
        finally:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
    return await _report(plan, run_ids, finals, ledger_dsn)


async def _trigger(client: PrefectClient, plan: list) -> dict[str, UUID]:
    deployments: dict[str, UUID] = {}
    run_ids: dict[str, UUID] = {}
    for label, function, job_variables, _ in plan:
        if function not in deployments:
            deployments[function] = await deploy_example(client, function, POOL)
            say(f"deployed example flow {function!r}")
        run = await client.create_flow_run_from_deployment(deployments[function], job_variables=job_variables)
        run_ids[label] = run.id
        say(f"triggered run {label} ({run.name})")
    return run_ids


async def _follow(client: PrefectClient, run_ids: dict[str, UUID], timeout_s: float = 300) -> dict[str, object]:
    """Print state changes until every run is final; cancel the sleeper once it runs."""
    seen: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = {label: (await client.read_flow_run(rid)).state for label, rid in run_ids.items()}
        for label, state in states.items():
            if state and seen.get(label) != state.name:
                seen[label] = state.name
                say(f"{label:<10} -> {state.name}")
            if label == "cancelled" and state and state.type == StateType.RUNNING:
                await client.set_flow_run_state(run_ids[label], Cancelling(message="cancelled by the demo"))
        if all(s and s.type in TERMINAL for s in states.values()):
            await asyncio.sleep(2.5)  # let the watcher meter the last teardowns
            return states
        await asyncio.sleep(0.5)
    raise TimeoutError(f"runs not final after {timeout_s}s: {seen}")


async def _report(plan: list, run_ids: dict[str, UUID], finals: dict, ledger_dsn: str) -> int:
    ledger = await Ledger.open(ledger_dsn)
    try:
        print("\nRUN         FINAL STATE       COMPUTE S  BILLED MIN  MESSAGE")
        ok = True
        for label, _, _, expected in plan:
            state = finals[label]
            row = await ledger.last_attempt(str(run_ids[label]))
            minutes = "-" if row is None or row.billed_minutes is None else str(row.billed_minutes)
            seconds = "-" if row is None or row.compute_seconds is None else f"{row.compute_seconds:.1f}"
            message = (state.message or "").splitlines()[0][:60] if state.message else ""
            print(f"{label:<11} {state.name:<17} {seconds:>9}  {minutes:>10}  {message}")
            ok &= state.name == expected
        print("\nUsage summary:")
        print(format_usage_table(await ledger.usage()))
    finally:
        await ledger.close()
    say("all runs ended as expected" if ok else "some runs did not end as expected")
    return 0 if ok else 1
