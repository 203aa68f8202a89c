"""Several stateless replicas, and a replica killed mid-burst: every run starts once and is metered once."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, read_runs, wait_until

pytestmark = pytest.mark.e2e
REPO_ROOT = Path(__file__).resolve().parents[2]


async def _burst(client, pool: str, starts: Path, n: int, seconds: float = 0.0) -> list:
    deployment_id = await deploy_example(client, "hello", pool, job_variables={"command": fake_engine_command(starts, seconds)})
    # A few at a time: 50 at once overloaded the test server's SQLite database on a loaded 2-core
    # machine (503 for ~30 s, past the client's retries); the dispatcher still sees a burst.
    gate = asyncio.Semaphore(8)

    async def create():
        async with gate:
            return await client.create_flow_run_from_deployment(deployment_id)

    runs = await asyncio.gather(*(create() for _ in range(n)))
    return [run.id for run in runs]


def _starts(starts: Path) -> collections.Counter:
    return collections.Counter(starts.read_text().split()) if starts.exists() else collections.Counter()


async def _assert_metered_once(dsn: str, ids: list) -> None:
    ledger = await Ledger.open(dsn)
    try:
        rows = [await ledger.last_attempt(str(i)) for i in ids]
        assert all(r is not None and r.metered_at is not None for r in rows), [(r.flow_run_id, r.infrastructure_id, r.claimed_at, r.submitted_at) for r in rows if not r or not r.metered_at][:3]
        assert {r.billed_minutes for r in rows} == {1}
        usage = await ledger.usage()
        assert sum(u.flow_runs for u in usage) == sum(u.attempts for u in usage) == len(ids)
    finally:
        await ledger.close()


async def _wait_metered(dsn: str, ids: list, timeout_s: float = 60) -> None:
    """Until nothing is in flight or unrecorded. A run that ended while its submission was
    unrecorded (the kill landed between the provider and the ledger) is settled by recovery
    once the claim is older than pending_grace_s."""
    ledger = await Ledger.open(dsn)
    try:
        for _ in range(int(timeout_s / 0.25)):
            if not await ledger.unmetered() and not await ledger.unsubmitted():
                return
            await asyncio.sleep(0.25)
    finally:
        await ledger.close()


def _dirs_of(tmp_path: Path, flow_run_id: str) -> list[str]:
    """A run's local run directories (per attempt; abandoned ones too), to tell why it started twice."""
    import json

    return sorted(spec.parent.name for spec in (tmp_path / "local-runs").glob("*/spec.json")
                  if json.loads(spec.read_text()).get("flow_run_id") == flow_run_id)


def _count_claims(monkeypatch, counts: collections.Counter) -> None:
    """Count claim outcomes per replica (by worker name) from the first poll on."""
    from dispatcher.loops.submitter import Submitter

    original = Submitter.claim

    async def claim(self, flow_run, pool):
        attempt = await original(self, flow_run, pool)
        counts[(self.prefect.worker_name, "claimed" if attempt else "not claimed")] += 1
        return attempt

    monkeypatch.setattr(Submitter, "claim", claim)


async def test_two_replicas_start_each_of_30_runs_exactly_once(prefect_api_url, prefect_client, local_pool, tmp_path, monkeypatch):
    starts = tmp_path / "starts.txt"
    ids = await _burst(prefect_client, local_pool, starts, 30)
    # Replicas of the local provider share one host and its state dir (as they must: each
    # watches the other's runs). The PENDING claim is what decides who starts a run; the
    # provider's idempotency lock is only the second line, so claims are counted too.
    config_a = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config_b = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config_a.instance_name, config_b.instance_name = "replica-a", "replica-b"
    claims: collections.Counter = collections.Counter()
    _count_claims(monkeypatch, claims)
    async with running_dispatcher(config_a), running_dispatcher(config_b):
        runs = await wait_until(prefect_client, ids, is_final, timeout_s=180)
        await _wait_metered(config_a.ledger_dsn, ids)
    assert {r.state.name for r in runs.values()} == {"Completed"}, [r.state.message for r in runs.values() if r.state.name != "Completed"][:3]
    counts = _starts(starts)
    twice = [run for run, n in counts.items() if n > 1]
    assert len(counts) == 30 and not twice, (claims, {run: _dirs_of(tmp_path, run) for run in twice})
    # At most one accepted claim per run. Fewer than 30 counted is fine: a claim whose answer was
    # lost (a client timeout on a loaded machine) is re-driven by recovery, and counted by no one here.
    assert claims[("replica-a", "claimed")] + claims[("replica-b", "claimed")] <= 30, claims
    await _assert_metered_once(config_a.ledger_dsn, ids)


def _start_dispatcher_process(config_path: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "dispatcher.cli", "serve", "--config", str(config_path)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
    )


async def test_dispatcher_killed_mid_burst_orphans_nothing_and_meters_once(prefect_api_url, prefect_client, local_pool, tmp_path):
    starts = tmp_path / "starts.txt"
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    config_path = tmp_path / "dispatcher.yaml"
    config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    ids = await _burst(prefect_client, local_pool, starts, 24, seconds=2.0)

    first = _start_dispatcher_process(config_path, tmp_path / "first.log")
    try:
        # Kill it while the burst is half submitted: some runs started, some only claimed.
        for _ in range(600):
            runs = await read_runs(prefect_client, ids)
            if sum(1 for r in runs.values() if r.infrastructure_pid) >= 6:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        runs = await read_runs(prefect_client, ids)
        in_flight = sum(1 for r in runs.values() if r.state and r.state.type.value in ("PENDING", "RUNNING"))
        assert in_flight > 0, "the kill should land mid-burst"
    finally:
        if first.poll() is None:
            first.kill()

    second = _start_dispatcher_process(config_path, tmp_path / "second.log")
    try:
        runs = await wait_until(prefect_client, ids, is_final, timeout_s=180)
        await _wait_metered(config.ledger_dsn, ids)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
    assert {r.state.name for r in runs.values()} == {"Completed"}, (
        collections.Counter(r.state.name for r in runs.values()),
        [r.state.message for r in runs.values() if r.state.name != "Completed"][:3])
    counts = _starts(starts)
    assert len(counts) == 24 and set(counts.values()) == {1}, counts.most_common(3)
    await _assert_metered_once(config.ledger_dsn, ids)
