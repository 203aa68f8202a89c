"""Monthly budgets against a real Prefect server: reject, hold (and start once there is budget),
stopping running runs, two replicas racing for the last minutes, and the events Prefect receives."""

from __future__ import annotations

import asyncio
import collections
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from prefect.client.orchestration import PrefectClient

from dispatcher.clock import utcnow
from dispatcher.config import DispatcherConfig, LoopConfig
from dispatcher.config.usage import BudgetMode, BudgetPolicy, RunningRuns
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import AttemptRef, Ledger
from dispatcher.prefect.pools import create_pool
from dispatcher.usage.events import METERED, THRESHOLD_CROSSED
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, is_running, read_runs, wait_until

pytestmark = pytest.mark.e2e
FAST = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15, budget_interval_s=0.5,
                  event_interval_s=0.5)


def budgeted(api_url: str, pool: str, tmp_path: Path, minutes: int, **policy: object) -> DispatcherConfig:
    config = dispatcher_config(api_url, pool, tmp_path, loop=FAST)
    config.workspaces[0].monthly_compute_minutes = minutes
    config.workspaces[0].budget = BudgetPolicy(**policy)
    return config


async def use_minutes(config: DispatcherConfig, minutes: int, pool: str) -> None:
    """This month already used ``minutes`` (an attempt metered a moment ago)."""
    ledger = await Ledger.open(config.ledger_dsn)
    try:
        attempt = AttemptRef(flow_run_id=f"earlier-{minutes}", attempt_id=f"earlier-{minutes}")
        stop = utcnow()
        await ledger.record_submission(attempt, "i-0", stop, workspace="test", pool=pool, provider="local")
        await ledger.meter(attempt.attempt_id, stop - timedelta(minutes=minutes), stop)
    finally:
        await ledger.close()


async def runs_of(client: PrefectClient, pool: str, n: int, starts: Path, seconds: float = 0.0) -> list:
    deployment_id = await deploy_example(client, "hello", pool, job_variables={"command": fake_engine_command(starts, seconds)})
    return [(await client.create_flow_run_from_deployment(deployment_id)).id for _ in range(n)]


def held(run) -> bool:
    return run.state is not None and run.state.type.value == "SCHEDULED" and run.state.name == "AwaitingComputeBudget"


async def test_reject_mode_fails_new_runs_once_the_month_is_used_up(prefect_api_url, prefect_client, local_pool, tmp_path):
    config = budgeted(prefect_api_url, local_pool, tmp_path, minutes=5)
    await use_minutes(config, 5, local_pool)
    [run_id] = await runs_of(prefect_client, local_pool, 1, tmp_path / "starts.txt")
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run_id], is_final, timeout_s=30)
    state = runs[run_id].state
    assert (state.type.value, state.name) == ("FAILED", "ComputeLimitReached")
    assert "workspace 'test' used 5 of its 5 compute minutes in" in state.message
    assert not (tmp_path / "starts.txt").exists()


async def test_hold_mode_keeps_runs_scheduled_and_starts_them_when_the_budget_is_raised(
        prefect_api_url, prefect_client, local_pool, tmp_path):
    config = budgeted(prefect_api_url, local_pool, tmp_path, minutes=5, mode=BudgetMode.HOLD)
    await use_minutes(config, 5, local_pool)
    starts = tmp_path / "starts.txt"
    ids = await runs_of(prefect_client, local_pool, 2, starts)
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, ids, held, timeout_s=30)
        await asyncio.sleep(2)  # many polls later: still held, never claimed
        runs = await read_runs(prefect_client, ids)
    assert all(held(run) for run in runs.values())
    assert "starts by itself when the month rolls over or the budget is raised" in runs[ids[0]].state.message
    assert not starts.exists()
    names = [s.name for s in await prefect_client.read_flow_run_states(ids[0])]
    assert "Pending" not in names  # held before any claim: no attempt, nothing to meter

    config.workspaces[0].monthly_compute_minutes = 100  # the operator raises it and restarts
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, ids, is_final, timeout_s=60)
    assert {run.state.name for run in runs.values()} == {"Completed"}
    assert collections.Counter(starts.read_text().split()) == {str(i): 1 for i in ids}


async def test_stop_mode_stops_running_runs_when_the_budget_is_used_up(prefect_api_url, prefect_client, local_pool, tmp_path):
    # One minute: the run is admitted (its first minute fits), and while it runs its elapsed minute uses it up.
    config = budgeted(prefect_api_url, local_pool, tmp_path, minutes=1, running_runs=RunningRuns.STOP)
    [run_id] = await runs_of(prefect_client, local_pool, 1, tmp_path / "starts.txt", seconds=120)
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run_id], is_final, timeout_s=60)
        ledger = await Ledger.open(config.ledger_dsn)
        try:
            for _ in range(80):
                row = await ledger.last_attempt(str(run_id))
                if row and row.metered_at:
                    break
                await asyncio.sleep(0.25)
        finally:
            await ledger.close()
    state = runs[run_id].state
    assert (state.type.value, state.name) == ("FAILED", "ComputeLimitReached")
    assert "budget.running_runs is 'stop'" in state.message
    assert row.metered_at is not None and row.billed_minutes == 1  # stopped within its first minute, metered once


async def test_two_replicas_racing_never_start_more_than_the_budget(prefect_api_url, prefect_client, local_pool, tmp_path):
    """Budget 3 minutes, 8 runs due at once, two replicas: each admitted run counts at least one
    minute while in flight, so exactly 3 start; the rest wait (hold mode)."""
    starts = tmp_path / "starts.txt"
    ids = await runs_of(prefect_client, local_pool, 8, starts, seconds=60)
    first = budgeted(prefect_api_url, local_pool, tmp_path, minutes=3, mode=BudgetMode.HOLD)
    second = first.model_copy(update={"instance_name": "replica-b"})
    async with running_dispatcher(first), running_dispatcher(second):
        runs = await wait_until(prefect_client, ids, lambda run: is_running(run) or held(run), timeout_s=60)
        await asyncio.sleep(2)  # both replicas polled many more times
        runs = await read_runs(prefect_client, ids)
        running = [i for i, run in runs.items() if is_running(run)]
        assert len(running) == 3 and sum(held(run) for run in runs.values()) == 5
        assert len(set(starts.read_text().split())) == 3
        for run_id in running:  # leave nothing running behind the test
            from prefect.states import Cancelling

            await prefect_client.set_flow_run_state(run_id, Cancelling())
        await wait_until(prefect_client, running, is_final, timeout_s=30)


async def test_metering_and_thresholds_reach_prefect_as_events_once(prefect_api_url, prefect_client, local_pool, tmp_path):
    config = budgeted(prefect_api_url, local_pool, tmp_path, minutes=2)
    [run_id] = await runs_of(prefect_client, local_pool, 1, tmp_path / "starts.txt")
    await use_minutes(config, 1, local_pool)  # with the run's minute: 2 of 2, so 80 % and 100 %
    async with running_dispatcher(config):
        await wait_until(prefect_client, [run_id], is_final, timeout_s=60)
        events = await _wait_for_events(prefect_client, lambda found: len(found[THRESHOLD_CROSSED]) == 2
                                        and any(e["resource"]["prefect.resource.id"] == f"prefect.flow-run.{run_id}"
                                                for e in found[METERED]))
    async with running_dispatcher(config):  # a restart (or another replica) does not alert again
        await asyncio.sleep(2)
    events = await _wait_for_events(prefect_client, lambda found: True)
    thresholds = sorted(e["payload"]["threshold_pct"] for e in events[THRESHOLD_CROSSED])
    assert thresholds == [80, 100]
    [metered] = [e for e in events[METERED] if e["resource"]["prefect.resource.id"] == f"prefect.flow-run.{run_id}"]
    assert metered["payload"]["billed_minutes"] == 1 and metered["payload"]["pool"] == local_pool
    assert {r["prefect.resource.role"] for r in metered["related"]} >= {"work-pool", "deployment", "flow"}


async def _wait_for_events(client: PrefectClient, done, timeout_s: float = 30) -> dict[str, list[dict]]:
    """Our events as Prefect stored them (its event persister writes in batches every few seconds)."""
    found: dict[str, list[dict]] = collections.defaultdict(list)
    for _ in range(int(timeout_s / 0.5)):
        response = await client._client.post("/events/filter", json={
            "filter": {"event": {"prefix": ["prefect-push-dispatcher."]}, "order": "ASC"}, "limit": 50})
        response.raise_for_status()
        found = collections.defaultdict(list)
        for event in response.json()["events"]:
            found[event["event"]].append(event)
        if done(found):
            return found
        await asyncio.sleep(0.5)
    raise TimeoutError(f"events not found in Prefect: { {k: len(v) for k, v in found.items()} }")


async def test_a_managed_pool_counts_against_the_workspace_month_rounded_up_to_the_minute(
        prefect_api_url, prefect_client, tmp_path):
    """Prefect Managed's monthly compute limit per workspace: a managed run of a second is billed one
    minute (startup to teardown, rounded up) and, with a one-minute budget, the next run is refused."""
    pool = f"managed-{uuid.uuid4().hex[:8]}"
    await create_pool(prefect_api_url, pool, "prefect:managed")
    config = budgeted(prefect_api_url, pool, tmp_path, minutes=1)
    starts = tmp_path / "starts.txt"
    [first] = await runs_of(prefect_client, pool, 1, starts, seconds=0.5)
    async with running_dispatcher(config):
        await wait_until(prefect_client, [first], is_final, timeout_s=60)
        row = None
        for _ in range(120):  # metered by the watch tick that sees the run end
            ledger = await Ledger.open(config.ledger_dsn)
            row = await ledger.last_attempt(str(first))
            await ledger.close()
            if row is not None and row.metered_at is not None:
                break
            await asyncio.sleep(0.25)
        [second] = await runs_of(prefect_client, pool, 1, starts)
        runs = await wait_until(prefect_client, [first, second], is_final, timeout_s=30)
    assert runs[first].state.name == "Completed", runs[first].state.message
    assert row is not None and row.billed_minutes == 1 and row.provider == "local"
    refused = runs[second].state
    assert (refused.type.value, refused.name) == ("FAILED", "ComputeLimitReached")
    assert "workspace 'test' used 1 of its 1 compute minutes in" in refused.message
    assert starts.read_text().count("\n") <= 1  # the second run never started
