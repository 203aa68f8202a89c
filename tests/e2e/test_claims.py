"""A claim only ever takes a run that is still SCHEDULED.

Prefect refuses a second PENDING only while a run is PENDING, RUNNING or CANCELLING; a run
that finished after a poll saw it SCHEDULED would accept the late claim and run again. (Seen
in a 50-run burst with two replicas: three runs started twice.)
"""

from __future__ import annotations

import pytest
from prefect.states import Completed, Failed

from dispatcher.config import LoopConfig, PoolConfig, WorkspaceConfig
from dispatcher.demo.examples.deploy import deploy_example
from dispatcher.ledger import Ledger
from dispatcher.loops.calls import ProviderCalls
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import ServedPool
from dispatcher.loops.submitter import Submitter
from dispatcher.policy.limits import EffectiveLimits
from dispatcher.prefect.api import PrefectApi
from providers.local import LocalProvider, LocalSettings

pytestmark = pytest.mark.e2e


@pytest.fixture
async def submitter_and_pool(prefect_api_url, prefect_client, local_pool, tmp_path):
    workspace = WorkspaceConfig(name="test", api_url=prefect_api_url, pools=[PoolConfig(name=local_pool)])
    prefect = PrefectApi(workspace, "claims-test")
    ledger = await Ledger.open(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    pool = ServedPool(config=workspace.pools[0], pool_type="local:push",
                      provider=ProviderCalls(LocalProvider(LocalSettings(state_dir=tmp_path / "runs")), LoopConfig()),
                      limits=EffectiveLimits(max_runtime_s=60), work_pool=await prefect_client.read_work_pool(local_pool))
    async with prefect:
        yield Submitter(prefect, workspace, ledger, InFlight("test")), pool, ledger
    await ledger.close()


@pytest.mark.parametrize("final", [Completed, Failed])
async def test_a_run_that_ended_after_the_poll_is_not_claimed(submitter_and_pool, prefect_client, local_pool, final):
    submitter, pool, ledger = submitter_and_pool
    polled = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "hello", local_pool))
    await prefect_client.set_flow_run_state(polled.id, final(), force=True)  # another replica ran it meanwhile
    assert await submitter.claim(polled, pool) is None
    assert (await prefect_client.read_flow_run(polled.id)).state.type == final().type
    assert await ledger.attempts(str(polled.id)) == []


async def test_a_claim_that_still_lands_on_a_finished_run_is_undone(submitter_and_pool, prefect_client, local_pool, monkeypatch):
    """The read before the claim and the run's end raced: Prefect accepted PENDING from COMPLETED.
    The claim is undone (the run is COMPLETED again) and nothing is started or recorded."""
    submitter, pool, ledger = submitter_and_pool
    polled = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "hello", local_pool))
    await prefect_client.set_flow_run_state(polled.id, Completed(message="ran elsewhere"), force=True)

    async def still_scheduled(flow_run_id):
        return polled  # the stale view the race gives

    monkeypatch.setattr(submitter.prefect, "read_run", still_scheduled)
    assert await submitter.claim(polled, pool) is None
    history = await prefect_client.read_flow_run_states(polled.id)
    names = [state.name for state in sorted(history, key=lambda state: state.timestamp)]
    assert names[-2:] == ["Pending", "Completed"], names  # the late claim, then the run's own end again
    assert (await prefect_client.read_flow_run(polled.id)).state.message == "ran elsewhere"
    assert await ledger.attempts(str(polled.id)) == []


async def test_a_scheduled_run_is_claimed(submitter_and_pool, prefect_client, local_pool):
    submitter, pool, ledger = submitter_and_pool
    run = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "hello", local_pool))
    attempt = await submitter.claim(run, pool)
    assert attempt is not None and attempt.flow_run_id == run.id
    assert (await prefect_client.read_flow_run(run.id)).state.id == attempt.attempt_id
    assert [a.attempt_id for a in await ledger.attempts(str(run.id))] == [str(attempt.attempt_id)]


async def test_a_lost_claim_on_a_finished_run_is_undone_by_recovery(prefect_api_url, prefect_client, local_pool, tmp_path):
    """A claim that landed on a finished run and that its claimer lost (no ledger row: its answer never
    came back) leaves the run PENDING behind the earlier attempt's infrastructure id. Recovery restores the
    run's end and starts nothing more. (Seen once with two replicas and 50 runs: the run stayed Pending.)"""
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    from tests.conftest import dispatcher_config, running_dispatcher
    from tests.e2e.helpers import is_final, wait_until

    run = await prefect_client.create_flow_run_from_deployment(await deploy_example(prefect_client, "hello", local_pool))
    loop = LoopConfig(poll_interval_s=0.2, watch_interval_s=0.3, pending_grace_s=1)
    async with running_dispatcher(dispatcher_config(prefect_api_url, local_pool, tmp_path, loop=loop)):
        first = await wait_until(prefect_client, [run.id], is_final, timeout_s=120)
        assert first[run.id].state.type == StateType.COMPLETED
        lost = await prefect_client.set_flow_run_state(run.id, Pending())
        assert lost.status == SetStateStatus.ACCEPT  # Prefect takes a claim on a finished run
        done = await wait_until(prefect_client, [run.id], lambda r: r.state.type == StateType.COMPLETED, timeout_s=60)
    history = sorted(await prefect_client.read_flow_run_states(run.id), key=lambda state: state.timestamp)
    assert [state.name for state in history][-2:] == ["Pending", "Completed"]
    assert done[run.id].state.type == StateType.COMPLETED
    assert len(list((tmp_path / "local-runs").glob("*/spec.json"))) == 1  # nothing was started again

