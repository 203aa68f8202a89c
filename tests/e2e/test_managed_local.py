"""Prefect Managed on the local provider, end to end: a deployment in the shape of Prefect's own example
(``job_variables={"pip_packages": [...]}``) runs unchanged, its packages installed into a cached environment
of their own before the flow starts; a package that does not exist and an image off the allow-list end the
run with a message naming them. A real Prefect server, the dispatcher, real pip against PyPI."""

from __future__ import annotations

import importlib.util
import json
import uuid
from pathlib import Path

import pytest
from prefect import Flow
from prefect.settings import PREFECT_API_URL, temporary_settings

from dispatcher.config import DispatcherConfig, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig
from dispatcher.prefect.pools import create_pool
from providers.local.packages import environment_key
from providers.local.rundir import OUTPUT_LOG
from tests.conftest import running_dispatcher
from tests.e2e.helpers import is_final, run_dir, wait_until

pytestmark = pytest.mark.e2e
FLOWS_DIR = Path(__file__).resolve().parent / "managed_flows"
#: A tiny real package the dispatcher's own environment does not have.
PACKAGE, MODULE = "cowsay", "cowsay"
MISSING = "prefect-dispatcher-no-such-package-zq7"


@pytest.fixture(scope="module")
def envs_dir(tmp_path_factory) -> Path:
    """One environment cache for the module's runs (a package set is installed once per session of tests)."""
    return tmp_path_factory.mktemp("local-envs")


async def _deploy(client, pool: str, job_variables: dict) -> uuid.UUID:
    flow_id = await client.create_flow_from_name("imports")
    return await client.create_deployment(
        flow_id=flow_id, name=f"managed-{uuid.uuid4().hex[:6]}", work_pool_name=pool, entrypoint="flows.py:imports",
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(FLOWS_DIR)}}],
        job_variables=job_variables)


def _config(api_url: str, pool: str, tmp_path: Path, envs_dir: Path) -> DispatcherConfig:
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name="managed", api_url=api_url, pools=[PoolConfig(name=pool)])],
        ledger_dsn=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        managed_provider="local",
        providers={"local": {"state_dir": str(tmp_path / "local-runs"), "envs_dir": str(envs_dir), "stop_grace_s": 2}},
        loop=LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15),
        service=ServiceConfig(port=0),
    )


async def test_pip_packages_of_the_prefect_cloud_example_are_installed_once_into_their_own_environment(
    prefect_api_url, prefect_client, tmp_path, envs_dir
):
    assert importlib.util.find_spec(MODULE) is None, f"{PACKAGE} must not be in the dispatcher's environment"
    pool = f"managed-{uuid.uuid4().hex[:8]}"
    await create_pool(prefect_api_url, pool, "prefect:managed", managed_provider="local")
    with temporary_settings({PREFECT_API_URL: prefect_api_url}):  # Prefect's own deploy, as in Prefect's example
        source = await Flow.from_source(source=str(FLOWS_DIR), entrypoint="flows.py:imports")
        with_package = await source.deploy(name="test-managed-flow", work_pool_name=pool, print_next_steps=False,
                                           job_variables={"pip_packages": [PACKAGE]})
    reports = [tmp_path / f"report-{i}.json" for i in range(2)]
    # Two runs of the same set at once: the environment is built once (the lock), both use it.
    runs = [await prefect_client.create_flow_run_from_deployment(with_package, parameters={
        "module": MODULE, "report": str(report)}) for report in reports]
    missing = await prefect_client.create_flow_run_from_deployment(
        await _deploy(prefect_client, pool, {"pip_packages": [MISSING]}), parameters={"module": "x", "report": "-"})
    foreign = await prefect_client.create_flow_run_from_deployment(
        await _deploy(prefect_client, pool, {"image": "python:3.12-slim"}), parameters={"module": "x", "report": "-"})
    ids = [run.id for run in runs] + [missing.id, foreign.id]
    async with running_dispatcher(_config(prefect_api_url, pool, tmp_path, envs_dir)):
        final = await wait_until(prefect_client, ids, is_final, timeout_s=180)

    for run in runs:
        assert final[run.id].state.name == "Completed", final[run.id].state.message
    env_dir = envs_dir / environment_key([PACKAGE])
    for report in reports:
        found = json.loads(report.read_text())
        assert Path(found["module"]).is_relative_to(env_dir) and found["prefix"] == str(env_dir)
    outputs = [(run_dir(tmp_path / "local-runs", run.id) / OUTPUT_LOG).read_text() for run in runs]
    assert sum(output.count("creating the environment for pip_packages") for output in outputs) == 1  # built once
    assert sorted(p.name for p in envs_dir.iterdir() if p.is_dir() and p.name.startswith(env_dir.name)) == [env_dir.name]
    assert importlib.util.find_spec(MODULE) is None  # never installed into the dispatcher's environment

    crashed = final[missing.id].state
    assert crashed.name == "Crashed" and f"could not install {MISSING}" in crashed.message, crashed.message
    refused = final[foreign.id].state
    assert (refused.type.value, refused.name) == ("FAILED", "InvalidJobConfiguration")
    assert "image='python:3.12-slim'" in refused.message and "prefecthq/prefect:*" in refused.message
    assert not (tmp_path / "local-runs").exists() or not any(
        (d / "spec.json").exists() and str(foreign.id) in (d / "spec.json").read_text()
        for d in (tmp_path / "local-runs").iterdir())  # nothing started for it
