"""Whatever a run's inputs are, it ends in a final state whose message names the problem.

On first dispatch and on every re-drive; and one run whose inputs cannot be built never
blocks recovery of the others. Prefect validates job variables against the pool's schema
when a run is created, so bad values reach a dispatcher when the schema is looser than the
infrastructure: these pools have an operator-edited template without type constraints.
"""

from __future__ import annotations

import uuid

import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import PrefectClient
from prefect.states import Cancelled, Pending

from dispatcher import metrics
from dispatcher.clock import utcnow
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import AttemptRef, Ledger
from dispatcher.prefect.pools import create_pool
from tests.conftest import dispatcher_config, running_dispatcher
from tests.e2e.helpers import is_final, run_dirs, wait_until

pytestmark = pytest.mark.e2e


async def _loose_pool(api_url: str, client: PrefectClient) -> str:
    """A local:push pool whose env and memory variables accept anything."""
    name = f"loose-{uuid.uuid4().hex[:8]}"
    await create_pool(api_url, name, "local:push")
    template = (await client.read_work_pool(name)).base_job_template
    template["variables"]["properties"]["env"] = {"title": "Environment Variables"}
    template["variables"]["properties"]["memory"] = {"title": "Memory"}
    await client.request("PATCH", "/work_pools/{name}", path_params={"name": name}, json={"base_job_template": template})
    return name


async def _run(client: PrefectClient, pool: str, deployment_variables: dict | None = None, run_variables: dict | None = None):
    deployment_id = await deploy_example(client, "hello", pool, name=f"d-{uuid.uuid4().hex[:8]}",
                                         job_variables=deployment_variables or {})
    return await client.create_flow_run_from_deployment(deployment_id, job_variables=run_variables or {})


async def test_every_bad_input_ends_its_run_with_a_message_naming_it(prefect_api_url, prefect_client, tmp_path):
    pool = await _loose_pool(prefect_api_url, prefect_client)
    suffix = uuid.uuid4().hex[:8]
    await Secret(value="present").save(f"present-{suffix}", client=prefect_client)
    missing_block_id = uuid.uuid4()
    cases = {
        "env as a list (deployment)": (await _run(prefect_client, pool, {"env": ["A=1"]}), "env", "a mapping"),
        "env as a list (flow run)": (await _run(prefect_client, pool, {"env": {"A": "1"}}, {"env": ["B=2"]}), "env", "a mapping"),
        "missing secret block": (
            await _run(prefect_client, pool, {"env": {"TOKEN": "{{ prefect.blocks.secret.nope-%s }}" % suffix}}),
            "env.TOKEN", f"refers to block secret/nope-{suffix}, which does not exist",
        ),
        "missing block document": (
            await _run(prefect_client, pool, {"env": {"TOKEN": {"$ref": {"block_document_id": str(missing_block_id)}}}}),
            "env.TOKEN", f"refers to block document {missing_block_id}, which does not exist",
        ),
        "missing variable": (
            await _run(prefect_client, pool, {"memory": "{{ prefect.variables.nope_%s }}" % suffix}),
            "memory", f"refers to Prefect variable 'nope_{suffix}', which does not exist",
        ),
        "memory as text": (await _run(prefect_client, pool, {"memory": "lots"}), "memory", "lots"),
        "unparseable command": (await _run(prefect_client, pool, {"command": "python -c 'unbalanced"}), "command", "shell-style"),
    }
    ids = [run.id for run, _, _ in cases.values()]
    async with running_dispatcher(dispatcher_config(prefect_api_url, pool, tmp_path)):
        runs = await wait_until(prefect_client, ids, is_final, timeout_s=60)
    for label, (run, field, words) in cases.items():
        state = runs[run.id].state
        assert state.name == "InvalidJobConfiguration", (label, state.name, state.message)
        assert field in state.message and words in state.message, (label, state.message)
        assert not run_dirs(tmp_path / "local-runs", run.id), label


async def test_redriven_bad_runs_end_the_same_way(prefect_api_url, prefect_client, tmp_path):
    """Claimed by a replica that died before submitting: recovery re-drives them, and they end.
    (Prefect deletes a deployment's scheduled runs with it, so a deleted deployment is met here.)"""
    pool = await _loose_pool(prefect_api_url, prefect_client)
    run = await _run(prefect_client, pool, {"env": ["A=1"]})
    orphan = await _run(prefect_client, pool)
    for claimed in (run, orphan):
        await prefect_client.set_flow_run_state(claimed.id, Pending())
    await prefect_client.delete_deployment(orphan.deployment_id)
    config = dispatcher_config(prefect_api_url, pool, tmp_path)
    config.loop.pending_grace_s = 1.0
    errors_before = _loop_errors("recover") + _loop_errors("redrive")
    async with running_dispatcher(config):
        runs = await wait_until(prefect_client, [run.id, orphan.id], is_final, timeout_s=60)
    state = runs[run.id].state
    assert state.name == "InvalidJobConfiguration" and "env" in state.message and "a mapping" in state.message
    gone = runs[orphan.id].state
    assert gone.name == "Cancelled" and f"Deployment {orphan.deployment_id} no longer exists" in gone.message
    assert _loop_errors("recover") + _loop_errors("redrive") == errors_before


async def test_one_unbuildable_row_never_blocks_recovery_of_the_others(prefect_api_url, prefect_client, tmp_path):
    """A claim whose run a person cancelled, and whose configuration cannot be built, is settled
    on its own; the rows after it are still recovered."""
    pool = await _loose_pool(prefect_api_url, prefect_client)
    bad = await _run(prefect_client, pool, {"env": ["A=1"]})
    good = await _run(prefect_client, pool)
    config = dispatcher_config(prefect_api_url, pool, tmp_path)
    config.loop.pending_grace_s = 1.0
    ledger = await Ledger.open(config.ledger_dsn)
    try:
        for run in (bad, good):  # both claimed by a replica that died before submitting
            claim = await prefect_client.set_flow_run_state(run.id, Pending())
            attempt = AttemptRef(flow_run_id=str(run.id), attempt_id=str(claim.state.id))
            await ledger.record_claim(attempt, "test", pool, "local", utcnow())
        await prefect_client.set_flow_run_state(bad.id, Cancelled(message="a person cancelled it"), force=True)
        async with running_dispatcher(config):
            runs = await wait_until(prefect_client, [good.id], is_final, timeout_s=90)
            for _ in range(80):
                row = await ledger.last_attempt(str(bad.id))
                if row.final_state:
                    break
                await _sleep(0.25)
        assert runs[good.id].state.name == "Completed", runs[good.id].state.message
        assert (await ledger.last_attempt(str(bad.id))).final_state == "Cancelled"
        assert not await ledger.unsubmitted("test")
    finally:
        await ledger.close()


def _loop_errors(loop: str) -> float:
    return metrics.LOOP_ERRORS.labels("test", loop)._value.get() + metrics.RUN_ERRORS.labels("test", loop)._value.get()


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
