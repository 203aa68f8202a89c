"""Real flows through a real Prefect server and the local provider: every way a run can end."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.states import Cancelling
from pydantic import SecretStr

from dispatcher.config import Limits
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from providers.local import rundir
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import is_final, is_running, run_dir, run_dirs, wait_until

pytestmark = pytest.mark.e2e


async def _one_run(client: PrefectClient, pool: str, function: str, job_variables: dict | None = None, **params):
    deployment_id = await deploy_example(client, function, pool)
    return await client.create_flow_run_from_deployment(deployment_id, parameters=params, job_variables=job_variables or {})


async def _ledger_row(tmp_path: Path, run_id):
    ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        return await ledger.last_attempt(str(run_id))
    finally:
        await ledger.close()


def _child_pid(tmp_path: Path, run_id) -> int:
    started = json.loads((run_dir(tmp_path / "local-runs", run_id) / "started.json").read_text())
    return int(started["pid"])


def _kill_the_whole_run(tmp_path: Path, run_id) -> None:
    started = json.loads((run_dir(tmp_path / "local-runs", run_id) / "started.json").read_text())
    victims = rundir.live_descendants(int(started["supervisor_pid"]))
    assert int(started["pid"]) in victims
    for sig in (signal.SIGSTOP, signal.SIGKILL):  # stopped first: none sees another die
        for pid in victims:
            os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


async def test_flow_completes_and_is_metered(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "hello", name="e2e")
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
        row = None
        for _ in range(40):  # metering happens on the watcher tick after the process exits
            row = await _ledger_row(tmp_path, run.id)
            if row and row.metered_at:
                break
            import asyncio
            await asyncio.sleep(0.25)
    final = runs[run.id]
    assert final.state.name == "Completed", final.state.message
    assert final.infrastructure_pid and ":" in final.infrastructure_pid  # hostname:pid, like Prefect's process worker
    assert row is not None and row.metered_at is not None
    assert row.billed_minutes == 1 and 0 < row.compute_seconds < 60
    assert row.started_at <= row.stopped_at and row.exit_code == 0


async def test_failing_flow_ends_failed(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "fails")
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
    assert runs[run.id].state.name == "Failed"


async def test_killed_process_ends_crashed_with_reason(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "sleeps", seconds=120)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=90)
        # Every process of the run at once, as when a container is killed: `prefect flow-run
        # execute` runs the engine in a session of its own, which could otherwise see its
        # parent die and report a Crashed of its own first.
        _kill_the_whole_run(tmp_path, run.id)
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    state = runs[run.id].state
    assert state.name == "Crashed"
    assert "exit code 137" in state.message


async def test_cancel_stops_the_process(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "sleeps", seconds=120)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=90)
        pid = _child_pid(tmp_path, run.id)
        await prefect_client.set_flow_run_state(run.id, Cancelling(message="test cancels"))
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    assert runs[run.id].state.name == "Cancelled"
    assert not _alive(pid)


async def test_run_over_max_runtime_times_out(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "sleeps", seconds=120)
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path, pool_type_limits=Limits(max_runtime_s=8))
    async with running_dispatcher(config):
        # Not "wait for Running" first: the cap counts from submission, and on a loaded machine the
        # engine may still be importing Prefect when it is reached, so Running may never be seen.
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=130)
        pid = _child_pid(tmp_path, run.id)
        for _ in range(40):
            if not _alive(pid):
                break
            import asyncio
            await asyncio.sleep(0.25)
    state = runs[run.id].state
    assert (state.type.value, state.name) == ("FAILED", "TimedOut")
    assert "maximum runtime of 8s" in state.message
    assert not _alive(pid)


async def test_runtime_cap_ends_timed_out_however_late_the_watcher_comes(prefect_api_url, prefect_client, local_pool, tmp_path):
    """The watcher ticks every 25 s here, long after the supervisor's backstop (cap + 2 s grace)
    killed the flow (a cold engine dying may set its own Crashed): the run still ends TimedOut.

    25 s, not less: the first run waits for the warm engine's zygote to import Prefect (seconds on a
    loaded machine), and a tick within the 2 s grace after the cap would stop the run itself."""
    from dispatcher.config import LoopConfig

    run = await _one_run(prefect_client, local_pool, "sleeps", seconds=120)
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path, pool_type_limits=Limits(max_runtime_s=3),
                               loop=LoopConfig(poll_interval_s=0.2, watch_interval_s=25, pending_grace_s=15))
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run.id], lambda r: is_final(r) and r.state.name == "TimedOut", timeout_s=90)
        exited = json.loads((run_dir(tmp_path / "local-runs", run.id) / "exited.json").read_text())
    assert exited["cause"] == "TIMED_OUT"  # the backstop, not the watcher, stopped it
    state = runs[run.id].state
    assert (state.type.value, state.name) == ("FAILED", "TimedOut")
    assert "maximum runtime of 3s" in state.message
    names = [s.name for s in await prefect_client.read_flow_run_states(run.id)]
    assert names[-1] == "TimedOut"


async def test_over_limit_request_is_refused_without_starting(prefect_api_url, prefect_client, local_pool, tmp_path):
    run = await _one_run(prefect_client, local_pool, "hello", job_variables={"memory": 65536})
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path, limits=Limits(max_memory_mib=16384))
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    state = runs[run.id].state
    assert (state.type.value, state.name) == ("FAILED", "LimitExceeded")
    assert "memory=65536 MiB exceeds the limit of 16384 MiB" in state.message
    assert not run_dirs(tmp_path / "local-runs", run.id)
    assert runs[run.id].infrastructure_pid is None


async def test_malformed_job_variables_name_the_field(prefect_api_url, prefect_client, local_pool, tmp_path):
    # Prefect validates job variables against the pool's schema when a run is created, so bad
    # values reach a worker when the schema is looser than the infrastructure: here an operator
    # edited the pool template to take memory as free text.
    pool = await prefect_client.read_work_pool(local_pool)
    template = pool.base_job_template
    template["variables"]["properties"]["memory"] = {"type": "string", "title": "Memory"}
    await prefect_client.request("PATCH", "/work_pools/{name}", path_params={"name": local_pool},
                                 json={"base_job_template": template})
    run = await _one_run(prefect_client, local_pool, "hello", job_variables={"memory": "lots"})
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=30)
    state = runs[run.id].state
    assert state.name == "InvalidJobConfiguration"
    assert "memory" in state.message and "lots" in state.message
    assert not run_dirs(tmp_path / "local-runs", run.id)


async def test_the_workspace_api_key_never_reaches_logs_or_states(prefect_api_url, prefect_client, local_pool, tmp_path, caplog):
    import logging

    key = "pnu_" + "Zx9" * 12
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config.workspaces[0].api_key = SecretStr(key)  # the OSS server ignores it; the flow run still gets it in its env
    run = await _one_run(prefect_client, local_pool, "fails")
    bad = await _one_run(prefect_client, local_pool, "hello", job_variables={"memory": 1 << 20})
    with caplog.at_level(logging.DEBUG):
        async with running_dispatcher(config):
            runs = await wait_until(prefect_client, [run.id, bad.id], is_final, timeout_s=90)
    spec = json.loads((run_dir(tmp_path / "local-runs", run.id) / "spec.json").read_text())
    assert "PREFECT_API_KEY" in spec["env_names"]  # the run gets it (over a pipe)...
    assert key not in json.dumps(spec) and key not in caplog.text  # ...nothing else shows it
    for flow_run in runs.values():
        for state in await prefect_client.read_flow_run_states(flow_run.id):
            assert key not in (state.message or "")
