"""Real flows through a real Prefect server, the dispatcher and the ACI provider, on the ACI emulator.

The emulator runs each container group's command on this machine (execute mode), so
``prefect flow-run execute`` really runs the flow against the test server. The provider
reaches the emulator over plain http with a static bearer token (settings made for that).
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
from tests.emulators.aci import AciEmulator, Faults

pytestmark = pytest.mark.e2e


@pytest.fixture
def emulator(tmp_path):
    with AciEmulator(execute=True, workdir=str(tmp_path)) as emu:
        emu.timings.stop_grace_s = 2.0
        yield emu
        assert emu.errors == []


def settings(emu: AciEmulator) -> dict:
    return {"arm_endpoint": emu.endpoint_url, "allow_http": True, "static_bearer_token": "e2e-token",
            "refresh_after_s": 0.5}


async def _pool(api_url: str, pool_type: str = "azure-container-instance:push") -> str:
    name = f"aci-{uuid.uuid4().hex[:8]}"
    await create_pool(api_url, name, pool_type, managed_provider="aci")
    return name


def _config(api_url: str, pool: str, emu: AciEmulator, tmp_path, limits: Limits | None = None,
            loop: LoopConfig | None = None) -> DispatcherConfig:
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="e2e", api_url=api_url, pools=[PoolConfig(name=pool, limits=limits)])],
        ledger_dsn=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        managed_provider="aci",
        providers={"aci": settings(emu)},
        loop=loop or LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15),
        service=ServiceConfig(port=0),
    )


def _variables(emu: AciEmulator, **extra) -> dict:
    # No entrypoint: the image's /opt/prefect/entrypoint.sh does not exist on this host.
    return {"resource_group_name": "rg", "subscription_id": emu.subscription_id, "entrypoint": None,
            "env": {"PYTHONUNBUFFERED": "1"}, **extra}


async def _run(client, pool, emu, function, job_variables=None, **params):
    deployment_id = await deploy_example(client, function, pool, name=f"{function}-{uuid.uuid4().hex[:6]}",
                                         job_variables=_variables(emu, **(job_variables or {})))
    return await client.create_flow_run_from_deployment(deployment_id, parameters=params)


async def _metered_rows(tmp_path, ids) -> list:
    for _ in range(80):
        ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
        rows = [await ledger.last_attempt(str(i)) for i in ids]
        await ledger.close()
        if all(row and row.metered_at for row in rows):
            return rows
        await asyncio.sleep(0.25)
    raise AssertionError(f"not metered: {rows}")


async def _until(predicate, timeout_s: float = 20) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met")


async def test_flows_complete_are_metered_from_aci_timestamps_and_groups_are_deleted(
        prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    deployment_id = await deploy_example(prefect_client, "hello", pool, name="hello-aci",
                                         job_variables=_variables(emulator))
    runs = [await prefect_client.create_flow_run_from_deployment(deployment_id, parameters={"name": f"aci-{i}"})
            for i in range(3)]
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [r.id for r in runs], is_final, timeout_s=120)
        rows = await _metered_rows(tmp_path, [r.id for r in runs])
        await _until(lambda: len(emulator.deleted_groups) == 3)
    assert {r.state.name for r in final.values()} == {"Completed"}, [r.state.message for r in final.values()]
    for run in final.values():
        flow_run_id, _, name = run.infrastructure_pid.partition(":")
        assert flow_run_id == str(run.id) and name.startswith("prefect-")  # prefect-azure's own format
    for row in rows:
        assert row.billed_minutes == 1 and row.exit_code == 0
    calls = dict(emulator.calls)
    assert calls["ContainerGroups_CreateOrUpdate"] == 3 and calls["ContainerGroups_Delete"] == 3
    assert "Deployments_CreateOrUpdate" not in calls and "AsyncOperation_Get" not in calls
    assert all(group.puts == 1 for group in emulator.deleted_groups)


async def test_failing_flow_ends_failed(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, emulator, "fails")
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
    assert final[run.id].state.name == "Failed"


async def test_container_that_dies_ends_crashed_with_exit_code_and_log_tail(prefect_api_url, prefect_client, emulator,
                                                                           tmp_path):
    pool = await _pool(prefect_api_url)
    command = "python -u -c \"print('loading data'); print('disk full: /data'); raise SystemExit(3)\""
    run = await _run(prefect_client, pool, emulator, "hello", job_variables={"command": command})
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    state = final[run.id].state
    assert state.name == "Crashed"
    assert "exit code 3" in state.message and "disk full: /data" in state.message


async def test_image_that_cannot_be_pulled_ends_crashed_with_acis_event(prefect_api_url, prefect_client, emulator,
                                                                       tmp_path):
    emulator.faults = Faults(pull_failures=1)
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, emulator, "hello", job_variables={"image": "registry.example/nope:1"})
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
    state = final[run.id].state
    assert state.name == "Crashed" and "Failed to pull image" in state.message


async def test_cancel_stops_then_deletes_the_group(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, emulator, "sleeps", seconds=120)
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path)):
        await wait_until(prefect_client, [run.id], is_running, timeout_s=120)
        await prefect_client.set_flow_run_state(run.id, Cancelling(message="test cancels"))
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
        await _until(lambda: len(emulator.deleted_groups) == 1)
    assert final[run.id].state.name == "Cancelled"
    assert emulator.calls["ContainerGroups_Stop"] >= 1 and emulator.deleted_groups[0].state == "Stopped"


async def test_runtime_cap_ends_timed_out(prefect_api_url, prefect_client, emulator, tmp_path):
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, emulator, "sleeps", seconds=120)
    config = _config(prefect_api_url, pool, emulator, tmp_path, limits=Limits(max_runtime_s=8))
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
        await _until(lambda: len(emulator.deleted_groups) == 1)
    state = final[run.id].state
    assert (state.type.value, state.name) == ("FAILED", "TimedOut")
    assert emulator.calls["ContainerGroups_Stop"] >= 1


async def test_limits_and_invalid_sizes_are_refused_without_calling_azure(prefect_api_url, prefect_client, emulator,
                                                                         tmp_path):
    pool = await _pool(prefect_api_url)
    too_big = await _run(prefect_client, pool, emulator, "hello", job_variables={"cpu": 4, "memory": 8})
    bad_memory = await _run(prefect_client, pool, emulator, "hello", job_variables={"memory": 1.55})
    config = _config(prefect_api_url, pool, emulator, tmp_path, limits=Limits(max_vcpu=2))
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [too_big.id, bad_memory.id], is_final, timeout_s=60)
    over = final[too_big.id].state
    assert over.name == "LimitExceeded" and "cpu=4 vCPU exceeds the limit of 2 vCPU" in over.message
    bad = final[bad_memory.id].state
    assert bad.name == "InvalidJobConfiguration" and "memory=1.55" in bad.message and "steps of 0.1" in bad.message
    assert emulator.calls["ContainerGroups_CreateOrUpdate"] == 0


async def test_redrive_after_a_killed_dispatcher_adopts_the_group_it_created(prefect_api_url, prefect_client,
                                                                            emulator, tmp_path):
    """The PUT reached ACI, the answer was lost (503) and the dispatcher died before it recorded the
    submission: the next dispatcher re-drives the claim, finds the group by name and adopts it."""
    pool = await _pool(prefect_api_url)
    run = await _run(prefect_client, pool, emulator, "sleeps", seconds=2)
    # The PUT is carried out, then ARM answers 503 to everything: the first dispatcher cannot learn what happened.
    emulator.faults = Faults(outage_after_create=1)
    loop = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=3, submit_deadline_s=600)
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path, loop=loop)):
        await _until(lambda: emulator.faults.outage, timeout_s=60)
        await asyncio.sleep(1.0)  # its retries fail meanwhile
    # That dispatcher is gone (killed); its claim has no recorded submission. The outage ends.
    emulator.faults = Faults()
    async with running_dispatcher(_config(prefect_api_url, pool, emulator, tmp_path, loop=loop)):
        final = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
        await _until(lambda: len(emulator.deleted_groups) == 1, timeout_s=30)
    assert final[run.id].state.name == "Completed", final[run.id].state.message
    (group,) = emulator.deleted_groups
    assert group.puts == 1 and emulator.calls["ContainerGroups_CreateOrUpdate"] == 1  # one start, never re-PUT


async def test_managed_pool_runs_the_prefect_cloud_example_through_the_official_entrypoint(
        prefect_api_url, prefect_client, emulator, tmp_path):
    """Prefect Managed on ACI: 4 cores / 16 GB whatever the run asks, EXTRA_PIP_PACKAGES, the command run by
    the image's /opt/prefect/entrypoint.sh; the subscription and resource group are the operator's."""
    pool = await _pool(prefect_api_url, "prefect:managed")
    deployment_id = await deploy_example(prefect_client, "hello", pool, name=f"managed-{uuid.uuid4().hex[:6]}",
                                         job_variables={"pip_packages": ["pandas", "prefect-aws"], "cpu": 1})
    seed = await prefect_client.create_flow_run_from_deployment(deployment_id)
    config = _config(prefect_api_url, pool, emulator, tmp_path)
    config.providers["aci"].update(subscription_id=emulator.subscription_id, resource_group_name="rg")
    async with running_dispatcher(config):
        final = await wait_until(prefect_client, [seed.id], is_final, timeout_s=90)
        for _ in range(80):  # released (deleted) once recorded
            if emulator.deleted_groups:
                break
            await asyncio.sleep(0.25)
    assert final[seed.id].state.name == "Completed", final[seed.id].state.message
    [group] = emulator.deleted_groups
    assert (group.cpu, group.memory_gb) == (4.0, 16.0)
    [container] = group.containers
    assert container.image.startswith("prefecthq/prefect:") and container.command[:2] == [
        "/opt/prefect/entrypoint.sh", "prefect"]
    assert container.env["EXTRA_PIP_PACKAGES"] == "pandas prefect-aws"
