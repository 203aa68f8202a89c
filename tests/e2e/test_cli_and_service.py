"""The command line (pool create, usage, serve) and the service endpoints, against a real Prefect server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from dispatcher.config import ServiceConfig, load_config
from dispatcher.demo.embedded import free_port
from dispatcher.ledger import AttemptRef, Ledger
from tests.conftest import dispatcher_config, running_dispatcher

REPO_ROOT = Path(__file__).resolve().parents[2]
PUSH_TYPES = ["ecs:push", "cloud-run-v2:push", "azure-container-instance:push", "prefect:managed", "local:push"]
# Variables of Prefect's own templates that deployments commonly set (shared/reference/prefect-cloud-workers.md).
PREFECT_NAMES = {
    "ecs:push": {"aws_credentials", "cluster", "image", "cpu", "memory", "launch_type", "vpc_id", "network_configuration",
                 "task_role_arn", "execution_role_arn", "family", "env", "command", "configure_cloudwatch_logs"},
    "cloud-run-v2:push": {"credentials", "region", "image", "cpu", "memory", "timeout", "vpc_connector_name", "env"},
    "azure-container-instance:push": {"aci_credentials", "resource_group_name", "subscription_id", "image", "cpu", "memory", "env"},
    "prefect:managed": {"command", "env", "image", "pip_packages"},
    "local:push": {"command", "env", "working_dir", "stream_output"},
}


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
    )


@pytest.mark.parametrize("pool_type", PUSH_TYPES)
async def test_pool_create_writes_prefects_variable_names(prefect_api_url, prefect_client, pool_type):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = cli("pool", "create", name, "--type", pool_type, env={"PREFECT_API_URL": prefect_api_url})
    assert result.returncode == 0, result.stderr
    assert f"Created work pool {name!r} ({pool_type})" in result.stdout
    pool = await prefect_client.read_work_pool(name)
    assert pool.type == pool_type
    assert PREFECT_NAMES[pool_type] <= set(pool.base_job_template["variables"]["properties"])


async def test_pool_create_refuses_unknown_types_and_existing_pools_unless_overwrite(prefect_api_url, local_pool):
    env = {"PREFECT_API_URL": prefect_api_url}
    refused = cli("pool", "create", "x", "--type", "process", env=env)
    assert refused.returncode != 0 and "not a push type" in refused.stderr
    exists = cli("pool", "create", local_pool, "--type", "local:push", env=env)
    assert exists.returncode != 0 and "already exists" in exists.stderr
    overwritten = cli("pool", "create", local_pool, "--type", "local:push", "--overwrite", env=env)
    assert overwritten.returncode == 0 and "Updated work pool" in overwritten.stdout


async def test_usage_prints_a_table_per_workspace_and_month(tmp_path):
    dsn = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    ledger = await Ledger.open(dsn)
    start = datetime(2026, 10, 31, 23, 50, tzinfo=timezone.utc)
    attempts = [("run-0", "acme", 5), ("run-1", "acme", 61), ("run-2", "beta", 1), ("run-2", "beta", 1)]  # run-2 retried
    for i, (run, workspace, minutes) in enumerate(attempts):
        attempt = AttemptRef(flow_run_id=run, attempt_id=f"attempt-{i}")
        await ledger.record_submission(attempt, f"i-{i}", start, workspace=workspace, pool="p", provider="local")
        await ledger.meter(attempt.attempt_id, start, start + timedelta(minutes=minutes, seconds=-30))
    await ledger.close()
    result = cli("usage", "--ledger", dsn)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["WORKSPACE", "MONTH", "FLOW", "RUNS", "ATTEMPTS", "BILLED", "MIN", "COMPUTE", "H"]
    rows = [line.split()[:5] for line in lines[2:]]
    # Started 31 Oct 23:50: the 61-minute run ended in November and counts there; each attempt counts.
    assert rows == [["acme", "2026-10", "1", "1", "5"], ["acme", "2026-11", "1", "1", "61"], ["beta", "2026-10", "1", "2", "2"]]


async def test_healthz_and_metrics(prefect_api_url, local_pool, tmp_path):
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    port = free_port()
    config.service = ServiceConfig(port=port)
    async with running_dispatcher(config):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(50):
                try:
                    health = await http.get("/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            metrics = await http.get("/metrics")
            live = await http.get("/livez")
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ready", "workspaces": {"test": {"ready": True, "failing": []}}}
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    assert "# TYPE dispatcher_claim_latency_seconds histogram" in metrics.text
    assert "dispatcher_inflight_runs" in metrics.text


def test_example_configuration_is_valid(monkeypatch):
    monkeypatch.setenv("LEDGER_PASSWORD", "x")
    monkeypatch.setenv("USAGE_TOKEN_ANALYTICS", "an-example-token-0123456789")
    config = load_config(REPO_ROOT / "dispatcher.example.yaml")
    assert [p.name for p in config.workspaces[0].pools] == ["ecs-prod", "managed"]
    assert [t.name for t in config.api.tokens] == ["analytics-owners", "platform"] and config.api.metrics_token is None
    from dispatcher.service import ProviderSet

    providers = ProviderSet(config.providers, config.loop)
    for kind in config.providers:
        providers.get(kind)  # each provider's settings model accepts its section


def test_serve_refuses_a_configuration_with_a_missing_secret(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump({"workspaces": [{"name": "w", "api_url": "${NOPE_NOT_SET}/api", "pools": []}]}))
    result = cli("serve", "--config", str(path))
    assert result.returncode == 3 and "NOPE_NOT_SET" in result.stderr and "Traceback" not in result.stderr


async def test_sigterm_stops_cleanly_with_json_logs_and_leaves_runs_running(prefect_api_url, prefect_client, local_pool, tmp_path):
    """docker stop / Kubernetes: no traceback, every stderr line JSON, exit 0 within the grace, and the
    runs keep executing on their infrastructure (the next replica or restart watches them)."""
    import json
    import signal
    import time

    from dispatcher.demo.examples.deploy import deploy_example
    from tests.e2e.helpers import fake_engine_command, is_running, run_dir, wait_until

    deployment_id = await deploy_example(prefect_client, "hello", local_pool, name=f"sigterm-{uuid.uuid4().hex[:6]}",
                                         job_variables={"command": fake_engine_command(tmp_path / "starts.txt", 60)})
    ids = [(await prefect_client.create_flow_run_from_deployment(deployment_id)).id for _ in range(3)]
    config = {
        "workspaces": [{"name": "w", "api_url": prefect_api_url, "pools": [{"name": local_pool}]}],
        "ledger_dsn": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "providers": {"local": {"state_dir": str(tmp_path / "runs")}},
        "loop": {"poll_interval_s": 0.2, "watch_interval_s": 0.5, "shutdown_grace_s": 5},
        "service": {"port": free_port()},
    }
    path = tmp_path / "dispatcher.yaml"
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.cli", "serve", "--config", str(path), "--log-json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        await wait_until(prefect_client, ids, is_running, timeout_s=60)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in stderr.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = [r["message"] for r in records]
    assert process.returncode == 0, stderr[-2000:]
    assert took < 5 + 5, took
    assert "Traceback" not in stderr and not any("exception" in r for r in records)
    assert any(m.startswith("stopping") for m in messages) and messages[-1] == "stopped", messages[-5:]
    started = [json.loads((run_dir(tmp_path / "runs", i) / "started.json").read_text())["pid"] for i in ids]
    try:
        assert all(_alive(pid) for pid in started)  # the runs were not taken down with the dispatcher
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
