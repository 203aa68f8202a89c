"""Outages of Prefect and of the ledger: honest readiness, two log lines, and the watch goes on.

A TCP proxy stands between the dispatcher and the dependency and is cut and restored.
The flows are the fake engine (it proposes Running, sleeps, proposes Completed), which
starts in a fraction of a second, so the outages are not raced by process start-up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from prefect.states import Cancelling

from dispatcher import metrics
from dispatcher.config import Limits, LoopConfig, ServiceConfig
from dispatcher.demo.embedded import free_port
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, is_running, read_runs, run_dir, wait_until
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.e2e
FAST = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15, prefect_client_retries=0,
                  health_stale_after_s=5)


async def _fake_runs(client, pool: str, tmp_path, n: int, seconds: float) -> list:
    command = fake_engine_command(tmp_path / f"starts-{uuid.uuid4().hex[:6]}.txt", seconds)
    deployment_id = await deploy_example(client, "hello", pool, name=f"fake-{seconds}-{uuid.uuid4().hex[:6]}",
                                         job_variables={"command": command})
    return [(await client.create_flow_run_from_deployment(deployment_id)).id for _ in range(n)]


async def _readiness(port: int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        return await http.get("/readyz")


async def _until(predicate, timeout_s: float = 60, what: str = "condition") -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what} not met after {timeout_s}s")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split()[2] != "Z"


def _command_pid(tmp_path, run_id) -> int:
    import json

    return int(json.loads((run_dir(tmp_path / "local-runs", run_id) / "started.json").read_text())["pid"])


def _noisy(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("dispatcher")]


async def test_prefect_outage_two_log_lines_honest_readiness_and_caps_still_enforced(
    prefect_api_url, prefect_client, local_pool, tmp_path, caplog
):
    target = urlsplit(prefect_api_url)
    with FaultProxy(target.hostname, target.port) as proxy:
        api_url = f"http://127.0.0.1:{proxy.port}/api"
        config = dispatcher_config(api_url, local_pool, tmp_path, pool_type_limits=Limits(max_runtime_s=15), loop=FAST)
        config.service = ServiceConfig(port=free_port())
        # The local supervisor's own backstop (cap + grace) comes 30 s after the watcher's at most
        # 10 s backoff, so it is the dispatcher that stops the run during the outage.
        config.providers["local"]["stop_grace_s"] = 30
        [capped] = await _fake_runs(prefect_client, local_pool, tmp_path, 1, seconds=300)
        failures_before = metrics.DEPENDENCY_FAILURES.labels("test", "prefect")._value.get()
        async with running_dispatcher(config):
            await wait_until(prefect_client, [capped], is_running, timeout_s=30)
            run = (await read_runs(prefect_client, [capped]))[capped]
            assert (await _readiness(config.service.port)).status_code == 200
            pid = _command_pid(tmp_path, capped)
            caplog.clear()
            with caplog.at_level(logging.INFO):
                proxy.cut()
                cut_at = asyncio.get_running_loop().time()
                elapsed_at_cut = (run.start_time and (await _now_minus(run.start_time))) or 0
                assert elapsed_at_cut < 15, "the run must still be under its cap when Prefect goes away"
                await _until(lambda: _not_ready_because(config.service.port, "prefect"), 30, "503 naming prefect")
                # The cap passes during the outage: the run's process is stopped anyway.
                await _until(lambda: _async(not _pid_alive(pid)), 60, "capped run stopped while Prefect is down")
                outage_s = asyncio.get_running_loop().time() - cut_at
                noisy = _noisy(caplog)
                proxy.restore()
                runs = await wait_until(prefect_client, [capped], is_final, timeout_s=60)
                await _until(lambda: _ready(config.service.port), 30, "ready again")
            after = [r.getMessage() for r in _noisy(caplog)]
            back = [m for m in after if "is back after" in m]
            down = [m for m in after if "prefect is unavailable" in m]
    state = runs[capped].state
    assert (state.type.value, state.name) == ("FAILED", "TimedOut"), state.message
    assert outage_s > 3  # the outage was long enough to be more than one tick
    messages = [r.getMessage() for r in noisy]
    assert any("prefect is unavailable" in m for m in messages), messages
    assert any("over its runtime cap and Prefect is unreachable" in m for m in messages), messages
    assert len(noisy) <= 3, messages  # down, the cap's stop, (the events websocket may say it reconnects at INFO)
    assert not any(r.exc_info for r in noisy)
    # One line when Prefect goes and one when it is back, per outage, not per failed call. A loaded
    # test server may answer one more 503 once it is back (seen in CI): a second outage, two more lines.
    assert len(back) == len(down) and back, after
    assert "prefect is back after" in back[0] and not back[0].endswith("(1 failed calls)"), after
    assert metrics.DEPENDENCY_FAILURES.labels("test", "prefect")._value.get() > failures_before


async def test_ledger_outage_keeps_cancellations_and_caps_working(
    prefect_api_url, prefect_client, local_pool, tmp_path, postgres_database, caplog
):
    database = urlsplit(postgres_database)
    with FaultProxy(database.hostname, database.port or 5432) as proxy:
        dsn = postgres_database.replace(f"@{database.hostname}:{database.port}", f"@127.0.0.1:{proxy.port}")
        config = dispatcher_config(prefect_api_url, local_pool, tmp_path, ledger_dsn=dsn,
                                   pool_type_limits=Limits(max_runtime_s=20), loop=FAST)
        config.service = ServiceConfig(port=free_port())
        cancelled, capped = await _fake_runs(prefect_client, local_pool, tmp_path, 2, seconds=300)
        [finishes] = await _fake_runs(prefect_client, local_pool, tmp_path, 1, seconds=3)
        ids = [cancelled, capped, finishes]
        async with running_dispatcher(config):
            await wait_until(prefect_client, ids, is_running, timeout_s=30)
            caplog.clear()
            with caplog.at_level(logging.INFO):
                proxy.cut()
                await prefect_client.set_flow_run_state(cancelled, Cancelling(message="the test cancels it"))
                await _until(lambda: _not_ready_because(config.service.port, "ledger"), 30, "503 naming ledger")
                # Cancellation and the cap need Prefect and the provider only: they go on.
                runs = await wait_until(prefect_client, ids, is_final, timeout_s=60)
                noisy = _noisy(caplog)
                proxy.restore()
                await _until(lambda: _all_metered(dsn, ids), 60, "every run metered after the ledger is back")
                await _until(lambda: _ready(config.service.port), 30, "ready again")
    assert runs[cancelled].state.name == "Cancelled"
    assert runs[capped].state.name == "TimedOut"
    assert runs[finishes].state.name == "Completed"
    messages = [r.getMessage() for r in noisy]
    assert any("ledger is unavailable" in m for m in messages), messages
    assert len([m for m in messages if "unavailable" in m]) == 1, messages
    assert not any(r.exc_info for r in noisy), messages


async def _not_ready_because(port: int, check: str) -> bool:
    response = await _readiness(port)
    if response.status_code != 503:
        return False
    failing = response.json()["workspaces"]["test"]["failing"]
    return any(item["check"] == check and item["since"] for item in failing)


async def _ready(port: int) -> bool:
    return (await _readiness(port)).status_code == 200


async def _all_metered(dsn: str, ids: list) -> bool:
    ledger = await Ledger.open(dsn)
    try:
        rows = [await ledger.last_attempt(str(i)) for i in ids]
    finally:
        await ledger.close()
    return all(row is not None and row.metered_at is not None for row in rows)


async def _async(value: bool) -> bool:
    return value


async def _now_minus(moment) -> float:
    from dispatcher.clock import seconds_since

    return seconds_since(moment)
