"""Real flows through a real Prefect server, the dispatcher and the Cloud Run provider, on the Cloud Run emulator.

The emulator runs each task's command on this machine (execute mode), so ``prefect
flow-run execute`` really runs the flow against the test server. The provider
authenticates with a service-account key (self-signed JWTs) against an emulator that
requires a bearer token.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prefect.states import Cancelling

from dispatcher.config import DispatcherConfig, Limits, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from dispatcher.prefect.pools import create_pool
from tests.conftest import running_dispatcher
from tests.e2e.helpers import is_final, is_running, wait_until
from tests.e2e.test_prefect_cloud_run_worker_on_emulator import service_account_info
from tests.emulators.cloud_run import Auth, CloudRunEmulator

pytestmark = pytest.mark.e2e
PROJECT, REGION = "e2e-project", "us-central1"


@pytest.fixture
def emulator(tmp_path):
    with CloudRunEmulator(project=PROJECT, region=REGION, execute=True, workdir=str(tmp_path), stop_grace_s=2.0,
                          auth=Auth(required=True)) as emu:
        yield emu
        assert emu.errors == []  # no handler crash, no response outside its shape


async def _pool(api_url: str, pool_type: str = "cloud-run-v2:push") -> str:
    name = f"cr-{uuid.uuid4().hex[:8]}"
    await create_pool(api_url, name, pool_type, managed_provider="cloud-run")
    return name


def _config(api_url: str, pool: str, emu: CloudRunEmulator, tmp_path, limits: Limits | None = None,
            pending_grace_s: float = 15) -> DispatcherConfig:
    key = service_account_info(emu.token_uri)
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="e2e", api_url=api_url, pools=[PoolConfig(name=pool, limits=limits)])],
        ledger_dsn=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        managed_provider="cloud-run",
        # Operator credentials: what prefect:managed pools and pools without a credentials block use.
        providers={"cloud-run": {"endpoint": emu.endpoint_url, "project": PROJECT,
                                 "credentials": {"service_account_info": key}}},
        loop=LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=pending_grace_s),
        service=ServiceConfig(port=0),
    )


async def _run(client, pool, function, job_variables=None, **params):
    variables = {"region": REGION, "env": {"PYTHONUNBUFFERED": "1"}, **(job_variables or {})}
    deployment_id = await deploy_example(client, function, pool, name=f"{function}-{uuid.uuid4().hex[:6]}",
                                         job_variables=variables)
    return await client.create_flow_run_from_deployment(deployment_id, parameters=params)


async def _ledger_rows(tmp_path, ids, metered: bool = True):
    for _ in range(80):
        ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
        rows = [await ledger.last_attempt(str(i)) for i in ids]
        await ledger.close()
        if not metered or all(row and row.metered_at for row in rows):
            return rows
        await asyncio.sleep(0.25)
    raise AssertionError(f"not metered: {rows}")


async def test_flows_complete_share_one_job_and_are_metered_from_cloud_run_timestamps(
        prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    runs = [await _run(prefect_client, pool, "hello", name=f"cr-{i}") for i in range(2)]
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [r.id for r in runs], is_final, timeout_s=180)
        rows = await _ledger_rows(tmp_path, [r.id for r in runs])
    assert {r.state.name for r in final.values()} == {"Completed"}
    for run in final.values():
        execution = emulator.executions[run.infrastructure_pid]  # the execution's full resource name
        env = {v["name"]: v.get("value") for v in execution.task_template["containers"][0]["env"]}
        assert env["PREFECT__FLOW_RUN_ID"] == str(run.id)
    assert emulator.calls["CreateJob"] == 1 and emulator.calls["RunJob"] == 2  # one job, one :run per run
    assert emulator.calls["GetExecution"] == 0  # watched through jobs/-/executions only
    for row in rows:
        assert row.billed_minutes == 1 and row.exit_code == 0


async def test_failing_flow_ends_failed(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "fails")
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
    assert final[run.id].state.name == "Failed"


async def test_a_container_that_exits_non_zero_crashes_with_exit_code_reason_and_log_link(
        prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "hello", job_variables={"command": "python -c 'raise SystemExit(3)'"})
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    state = final[run.id].state
    assert state.name == "Crashed"
    assert "exit code 3" in state.message and "exit code: 3" in state.message  # ours, and Cloud Run's own words
    assert "console.cloud.google.com/logs" in state.message


async def test_cancel_cancels_the_execution(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "sleeps", seconds=120)
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=120)
        await prefect_client.set_flow_run_state(run.id, Cancelling(message="test cancels"))
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    assert final[run.id].state.name == "Cancelled"
    execution = emulator.executions[final[run.id].infrastructure_pid]
    assert execution.outcome == "CANCELLED" and emulator.calls["CancelExecution"] >= 1


async def test_runtime_cap_times_the_run_out(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "sleeps", seconds=120)
    config = _config(prefect_api_url, pool, emulator, tmp_path, limits=Limits(max_runtime_s=8))
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=90)
    state = final[run.id].state
    assert (state.type.value, state.name) == ("FAILED", "TimedOut"), state.message
    execution = emulator.executions[final[run.id].infrastructure_pid]
    assert execution.task_template["timeout"] == "8s"  # Cloud Run enforces the cap too


async def test_managed_pool_runs_the_prefect_cloud_example_through_the_image_entrypoint(
        prefect_api_url, prefect_client, emulator, tmp_path):
    """Prefect Managed on Cloud Run: the job keeps the image's entrypoint (no container command; the flow's
    command is the args), gets 4 vCPU / 16 GiB whatever the run asks, and EXTRA_PIP_PACKAGES."""
    pool = await _pool(prefect_api_url, "prefect:managed")
    seed = await _run(prefect_client, pool, "hello", job_variables={"pip_packages": ["pandas", "prefect-aws"],
                                                                    "cpu": "8", "memory": "32Gi"})
    foreign = await _run(prefect_client, pool, "hello", job_variables={"image": "python:3.12"})
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [seed.id, foreign.id], is_final, timeout_s=90)
    assert final[seed.id].state.name == "Completed", final[seed.id].state.message
    container = emulator.executions[final[seed.id].infrastructure_pid].task_template["containers"][0]
    assert not container.get("command") and container["args"] == ["prefect", "flow-run", "execute"]
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "16Gi"}
    assert {var["name"]: var.get("value") for var in container["env"]}["EXTRA_PIP_PACKAGES"] == "pandas prefect-aws"
    refused = final[foreign.id].state
    assert refused.name == "InvalidJobConfiguration" and "image='python:3.12'" in refused.message
    assert emulator.calls["RunJob"] == 1


async def test_a_submission_cut_off_after_run_is_adopted_by_the_next_dispatcher_not_started_twice(
        prefect_api_url, prefect_client, emulator, tmp_path, monkeypatch):
    """The first dispatcher dies between Cloud Run accepting ``:run`` and recording it; the next one
    re-drives the claim, finds the execution by its attempt marker and starts nothing."""
    from dispatcher.loops.submitter import Submitter

    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "hello", name="re-driven")
    never = asyncio.Event()

    async def dies_before_recording(self, *args, **kwargs):
        await never.wait()  # the process "dies" here: nothing is recorded

    config = _config(prefect_api_url, pool, emulator, tmp_path, pending_grace_s=1)
    with monkeypatch.context() as patch:
        patch.setattr(Submitter, "record", dies_before_recording)
        async with running_dispatcher(config):
            for _ in range(400):
                if emulator.calls["RunJob"]:
                    break
                await asyncio.sleep(0.05)
    assert emulator.calls["RunJob"] == 1
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
        [row] = await _ledger_rows(tmp_path, [run.id])
    assert final[run.id].state.name == "Completed", final[run.id].state.message
    assert emulator.calls["RunJob"] == 1 and len(emulator.executions) == 1  # zero double starts
    (execution_name,) = emulator.executions
    assert row.infrastructure_id == execution_name


async def test_pool_credentials_from_a_gcp_credentials_block(prefect_api_url, prefect_client, emulator, tmp_path):
    """Deployments written for Prefect Cloud's Cloud Run push pool reference a gcp-credentials block."""
    prefect_gcp = pytest.importorskip("prefect_gcp", reason="prefect-gcp provides the gcp-credentials block type")
    block = prefect_gcp.GcpCredentials(service_account_info=service_account_info(emulator.token_uri), project=PROJECT)
    block_id = await block.save(f"e2e-{uuid.uuid4().hex[:8]}", client=prefect_client)
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, "hello",
                     job_variables={"credentials": {"$ref": {"block_document_id": str(block_id)}}})
    config = _config(prefect_api_url, pool, emulator, tmp_path)
    config.providers["cloud-run"].pop("credentials")  # only the block can authenticate
    config.providers["cloud-run"].pop("project")
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
    assert final[run.id].state.name == "Completed", final[run.id].state.message


async def test_dispatcher_killed_mid_burst_starts_each_run_once(prefect_api_url, prefect_client, tmp_path):
    """SIGKILL a dispatcher process while it submits a burst; the next one re-drives what it left claimed.
    Wherever the kill lands (before :run, between :run and the ledger, after), each run starts once."""
    import signal
    import subprocess

    import yaml

    from tests.e2e.helpers import fake_engine_command, read_runs
    from tests.e2e.test_replicas import _starts, _start_dispatcher_process, _wait_metered

    starts = tmp_path / "starts.txt"
    with CloudRunEmulator(project=PROJECT, region=REGION, execute=True, workdir=str(tmp_path)) as emu:
        pool = await _pool(prefect_api_url)
        config = _config(prefect_api_url, pool, emu, tmp_path, pending_grace_s=3)
        config.providers["cloud-run"] = {"endpoint": emu.endpoint_url, "project": PROJECT, "anonymous": True,
                                         "run_rate_per_s": 20}
        config_path = tmp_path / "dispatcher.yaml"
        config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        deployment_id = await deploy_example(prefect_client, "hello", pool, job_variables={
            "region": REGION, "command": fake_engine_command(starts, 2.0)})
        ids = [(await prefect_client.create_flow_run_from_deployment(deployment_id)).id for _ in range(20)]

        first = _start_dispatcher_process(config_path, tmp_path / "first.log")
        try:
            for _ in range(1200):
                if len(emu.executions) >= 5:
                    break
                await asyncio.sleep(0.05)
            first.send_signal(signal.SIGKILL)
            first.wait()
        finally:
            if first.poll() is None:
                first.kill()
        second = _start_dispatcher_process(config_path, tmp_path / "second.log")
        try:
            runs = await wait_until(prefect_client, ids, is_final, timeout_s=240)
            await _wait_metered(config.ledger_dsn, ids)
        finally:
            second.send_signal(signal.SIGTERM)
            try:
                second.wait(timeout=15)
            except subprocess.TimeoutExpired:
                second.kill()
        runs = await read_runs(prefect_client, ids)
        assert {r.state.name for r in runs.values()} == {"Completed"}, [r.state.message for r in runs.values()][:3]
        counts = _starts(starts)
        assert len(counts) == 20 and set(counts.values()) == {1}, counts.most_common(3)
        assert emu.calls["RunJob"] == 20 and len(emu.executions) == 20  # zero double starts
        assert emu.errors == []
