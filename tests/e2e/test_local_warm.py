"""The local provider's warm engine with real flows: what a forked run sees, and that it ends like a cold one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import textwrap
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.states import Cancelling

from dispatcher.config import Limits
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import is_final, run_dir, wait_until

pytestmark = pytest.mark.e2e

# What a run reports about itself: its env, Prefect settings, process and limits.
REPORTING_FLOW = textwrap.dedent('''
    import json, os, subprocess, time
    from prefect import flow
    from prefect.settings import get_current_settings

    @flow
    def report(out: str, spawn: bool = False, sleep_s: float = 0.0, allocate_mib: int = 0) -> None:
        info = {
            "env": {name: os.environ.get(name) for name in ("WARM_SECRET", "ONLY_FIRST", "DISPATCHER_ONLY")},
            "api_url": get_current_settings().api.url,
            "pid": os.getpid(), "sid": os.getsid(0), "ppid": os.getppid(), "cwd": os.getcwd(),
            "address_space": [line for line in open("/proc/self/limits") if line.startswith("Max address space")],
        }
        if allocate_mib:
            try:
                block = bytearray(allocate_mib * 1024 * 1024)
                info["allocated"] = len(block) > 0
            except MemoryError:
                info["allocated"] = False
        if spawn:  # a descendant in a session of its own: must still end with the run
            info["escaped"] = subprocess.Popen(["sleep", "300"], start_new_session=True).pid
        with open(out + ".tmp", "w") as f:
            json.dump(info, f)
        os.replace(out + ".tmp", out)
        time.sleep(sleep_s)
''')


async def _deploy(client: PrefectClient, pool: str, flows_dir: Path) -> UUID:
    flows_dir.mkdir(exist_ok=True)
    (flows_dir / "warm_flows.py").write_text(REPORTING_FLOW)
    flow_id = await client.create_flow_from_name("report")
    return await client.create_deployment(
        flow_id=flow_id, name="warm-report", work_pool_name=pool, entrypoint="warm_flows.py:report",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(flows_dir)}}],
    )


async def _wait_for_file(path: Path, timeout_s: float = 90) -> dict:
    for _ in range(int(timeout_s / 0.1)):
        if path.exists():
            return json.loads(path.read_text())
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{path} never appeared")


def _started(tmp_path: Path, run_id) -> dict:
    return json.loads((run_dir(tmp_path / "local-runs", run_id) / "started.json").read_text())


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")


async def _wait_gone(*pids: int) -> None:
    for _ in range(100):
        if all(_gone(pid) for pid in pids):
            return
        await asyncio.sleep(0.1)
    assert all(_gone(pid) for pid in pids), [pid for pid in pids if not _gone(pid)]


def _zygote_pids(state_dir: Path) -> list[int]:
    """Zygotes in the order they started, from the lines each writes to zygote.log when ready."""
    lines = (state_dir / "zygote.log").read_text().splitlines()
    return [int(line.split()[1].rstrip(":")) for line in lines if line.startswith("zygote ")]


async def test_runs_start_warm_with_their_own_environment_and_limits(prefect_api_url, prefect_client, local_pool, tmp_path, monkeypatch):
    """Two runs from one zygote see only their own env; then the zygote is killed and a third still starts warm."""
    monkeypatch.setenv("DISPATCHER_ONLY", "the dispatcher's own variable")  # must not reach a run
    deployment = await _deploy(prefect_client, local_pool, tmp_path / "flows")
    state_dir = tmp_path / "local-runs"
    outs = [tmp_path / f"{n}.json" for n in range(3)]
    first = await prefect_client.create_flow_run_from_deployment(
        deployment, parameters={"out": str(outs[0]), "allocate_mib": 1536},
        job_variables={"env": {"WARM_SECRET": "s3cr3t-value", "ONLY_FIRST": "1"}, "memory": 1024},
    )
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path)):
        await wait_until(prefect_client, [first.id], is_final, timeout_s=90)
        second = await prefect_client.create_flow_run_from_deployment(
            deployment, parameters={"out": str(outs[1]), "allocate_mib": 16}, job_variables={"memory": 1024},
        )
        await wait_until(prefect_client, [second.id], is_final, timeout_s=90)
        [killed] = _zygote_pids(state_dir)
        os.kill(killed, signal.SIGKILL)
        third = await prefect_client.create_flow_run_from_deployment(deployment, parameters={"out": str(outs[2])})
        runs = await wait_until(prefect_client, [first.id, second.id, third.id], is_final, timeout_s=90)
    for run in (first, second, third):
        assert runs[run.id].state.name == "Completed", runs[run.id].state.message
    one, two, three = (json.loads(out.read_text()) for out in outs)
    assert one["env"] == {"WARM_SECRET": "s3cr3t-value", "ONLY_FIRST": "1", "DISPATCHER_ONLY": None}
    assert two["env"] == three["env"] == {"WARM_SECRET": None, "ONLY_FIRST": None, "DISPATCHER_ONLY": None}  # nothing of run 1 left
    assert one["api_url"] == two["api_url"] == prefect_api_url  # the run's settings, not the zygote's (it has none)
    for run, info in ((first, one), (second, two), (third, three)):
        started = _started(tmp_path, run.id)
        assert started["warm"] is True  # forked from the warm engine, not `prefect flow-run execute`
        assert info["pid"] == started["pid"] == info["sid"]  # the command itself, in a session of its own
        assert info["ppid"] == started["supervisor_pid"]  # the supervisor is its parent
        assert info["cwd"] == str(tmp_path / "flows")  # where the deployment's pull step put it
    for info in (one, two):
        assert info["address_space"] and str(1024 * 1024 * 1024) in info["address_space"][0]
    assert one["allocated"] is False and two["allocated"] is True  # RLIMIT_AS applies to the fork
    assert "s3cr3t-value" not in (run_dir(state_dir, first.id) / "output.log").read_text()
    zygotes = _zygote_pids(state_dir)
    assert len(zygotes) == 2 and zygotes[0] == killed  # replaced once, on the next run
    await _wait_gone(*zygotes)  # the dispatcher's shutdown ended the replacement


async def test_cancel_and_runtime_cap_end_the_forked_run_and_its_descendants(prefect_api_url, prefect_client, local_pool, tmp_path):
    deployment = await _deploy(prefect_client, local_pool, tmp_path / "flows")
    cancelled_out, capped_out = tmp_path / "cancelled.json", tmp_path / "capped.json"
    params = {"spawn": True, "sleep_s": 300}
    cancelled = await prefect_client.create_flow_run_from_deployment(deployment, parameters={"out": str(cancelled_out), **params})
    capped = await prefect_client.create_flow_run_from_deployment(deployment, parameters={"out": str(capped_out), **params})
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path, pool_type_limits=Limits(max_runtime_s=20))
    async with running_dispatcher(config):
        cancelled_info = await _wait_for_file(cancelled_out)
        await prefect_client.set_flow_run_state(cancelled.id, Cancelling(message="test cancels"))
        capped_info = await _wait_for_file(capped_out)
        runs = await wait_until(prefect_client, [cancelled.id, capped.id], is_final, timeout_s=90)
        await _wait_gone(cancelled_info["pid"], cancelled_info["escaped"], capped_info["pid"], capped_info["escaped"])
    assert runs[cancelled.id].state.name == "Cancelled"
    assert (runs[capped.id].state.type.value, runs[capped.id].state.name) == ("FAILED", "TimedOut")
    assert _started(tmp_path, cancelled.id)["warm"] and _started(tmp_path, capped.id)["warm"]
