"""Upgrading to per-attempt ledgers while a run is in flight: it is watched, finished and metered once."""

from __future__ import annotations

import uuid

import pytest
from prefect.states import Pending

from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from providers.base import RunLimits, SubmitRequest
from providers.local import LocalJobConfiguration, LocalProvider, LocalSettings
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import fake_engine_command, is_final, run_dirs, wait_until
from tests.integration.conftest import migrate_to, run_sql

pytestmark = pytest.mark.e2e


async def test_a_run_started_before_the_upgrade_is_watched_and_metered_once(
    prefect_api_url, prefect_client, local_pool, tmp_path
):
    config = dispatcher_config(prefect_api_url, local_pool, tmp_path)
    starts = tmp_path / "starts.txt"
    command = fake_engine_command(starts, 3)
    deployment = await deploy_example(prefect_client, "hello", local_pool, name=f"upgrade-{uuid.uuid4().hex[:6]}",
                                      job_variables={"command": command})
    run = await prefect_client.create_flow_run_from_deployment(deployment)
    # What the previous version did: claim, start with keys derived from the flow run id, record in
    # the per-run ledger (revision 0001), tell Prefect. Then it is stopped and the new version starts.
    await prefect_client.set_flow_run_state(run.id, Pending())
    provider = LocalProvider(LocalSettings(state_dir=tmp_path / "local-runs"))
    configuration = LocalJobConfiguration(command=command, env={"PREFECT_API_URL": prefect_api_url,
                                                                "PREFECT__FLOW_RUN_ID": str(run.id)})
    submission = await provider.submit(SubmitRequest(
        flow_run_id=run.id, attempt_id=run.id, idempotency_key=f"prefect-{run.id.hex}", workspace="test", pool=local_pool,
        configuration=configuration, limits=RunLimits(max_runtime_s=600)))
    await migrate_to(config.ledger_dsn, "0001")
    now = "'2026-11-30 10:00:00+00:00'"
    await run_sql(config.ledger_dsn, "INSERT INTO runs (flow_run_id, workspace, pool, provider, infrastructure_id, claimed_at, "
                                     f"submitted_at, updated_at) VALUES ('{run.id}', 'test', '{local_pool}', 'local', "
                                     f"'{submission.infrastructure_id}', {now}, {now}, {now})")
    await prefect_client.update_flow_run(run.id, infrastructure_pid=submission.infrastructure_id)
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run.id], is_final, timeout_s=60)
        ledger = await Ledger.open(config.ledger_dsn)
        try:
            for _ in range(120):
                [row] = await ledger.attempts(str(run.id))
                if row.metered_at:
                    break
                import asyncio

                await asyncio.sleep(0.25)
        finally:
            await ledger.close()
    assert runs[run.id].state.name == "Completed"
    assert (row.attempt_id, row.attempt, row.infrastructure_id) == (str(run.id), 1, submission.infrastructure_id)
    assert row.metered_at is not None and row.billed_minutes == 1 and row.final_state == "Completed"
    assert starts.read_text().split() == [str(run.id)]  # started once, by the old version
    assert [d.name for d in run_dirs(tmp_path / "local-runs", run.id)] == [str(run.id)]
