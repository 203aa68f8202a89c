"""The provider contract (providers/base.py), checked the same way for every provider.

Each test runs once per registered provider that has landed, with its harness
from ``tests/providers/harnesses/<kind>.py``; commands really run (the ECS
emulator executes the container command locally). A provider without a harness
fails ``test_every_landed_provider_has_a_harness``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from providers import registry
from providers.base import InfraPhase, InfraStatus, RunRef, StopCause
from providers.errors import TransientProviderError
from dispatcher.loops.configs import for_watching
from providers.secrets import run_secrets
from tests.providers.contract import ProviderHarness, discover_harnesses, exiting_command

CLOCK_SLACK = timedelta(seconds=5)
HARNESSES, WITHOUT_HARNESS = discover_harnesses(registry.servable_kinds())


def test_every_landed_provider_has_a_harness():
    assert not WITHOUT_HARNESS, (
        f"providers without a contract harness: {WITHOUT_HARNESS}; write tests/providers/harnesses/<kind>.py "
        "with a `Harness` (a tests.providers.contract.ProviderHarness subclass)"
    )
    assert sorted(HARNESSES) == sorted(registry.servable_kinds())


def test_a_provider_without_a_harness_module_is_reported():
    found, missing = discover_harnesses(["local", "no-such-cloud"])
    assert list(found) == ["local"] and missing == ["no-such-cloud"]


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ProviderHarness]:
    harness = HARNESSES[request.param](tmp_path)
    await harness.start()
    try:
        yield harness
    finally:
        await harness.stop()


async def submit(harness: ProviderHarness, command: str) -> RunRef:
    request = harness.request(command)
    return harness.ref(request, await harness.provider.submit(request))


async def wait_for(harness: ProviderHarness, ref: RunRef, phase: InfraPhase, timeout: float = 20) -> InfraStatus:
    deadline = time.monotonic() + timeout
    while True:
        [status] = await harness.provider.status_many([ref])
        if status.phase == phase:
            return status
        assert time.monotonic() < deadline, f"{harness.name}: still {status} after {timeout}s"
        await asyncio.sleep(0.05)


async def test_submit_is_idempotent(harness: ProviderHarness) -> None:
    request = harness.request(exiting_command(sleep_s=0.5))
    first = await harness.provider.submit(request)
    second = await harness.provider.submit(request)
    assert second.infrastructure_id == first.infrastructure_id
    assert harness.started_count() == 1


async def test_find_returns_what_submit_started_and_starts_nothing(harness: ProviderHarness) -> None:
    request = harness.request(exiting_command(sleep_s=0.2))
    assert await harness.provider.find(request) is None
    submission = await harness.provider.submit(request)
    ref = harness.ref(request, submission)
    found = await harness.provider.find(request)
    assert found is not None and found.infrastructure_id == submission.infrastructure_id and not found.created
    await wait_for(harness, ref, InfraPhase.EXITED)
    found = await harness.provider.find(request)
    assert found is not None and found.infrastructure_id == submission.infrastructure_id
    assert harness.started_count() == 1


async def test_each_attempt_of_a_run_gets_its_own_infrastructure(harness: ProviderHarness) -> None:
    """A retry from Prefect is a new attempt of the same flow run: new infrastructure, found by its own attempt."""
    first = harness.request(exiting_command(sleep_s=0.2))
    second = harness.request(exiting_command(sleep_s=0.2), flow_run_id=first.flow_run_id)
    one = await harness.provider.submit(first)
    await wait_for(harness, harness.ref(first, one), InfraPhase.EXITED)
    two = await harness.provider.submit(second)
    assert two.infrastructure_id != one.infrastructure_id and two.created
    assert (await harness.provider.find(first)).infrastructure_id == one.infrastructure_id
    assert (await harness.provider.find(second)).infrastructure_id == two.infrastructure_id
    assert (await harness.provider.submit(second)).infrastructure_id == two.infrastructure_id  # still idempotent
    assert harness.started_count() == 2


@pytest.mark.parametrize("exit_code", [0, 3])
async def test_exit_code_and_timestamps(harness: ProviderHarness, exit_code: int) -> None:
    before = datetime.now(timezone.utc)
    ref = await submit(harness, exiting_command(exit_code, sleep_s=0.2))
    status = await wait_for(harness, ref, InfraPhase.EXITED)
    after = datetime.now(timezone.utc)
    assert status.exit_code == exit_code
    assert status.stop_cause == StopCause.EXITED
    assert status.started_at is not None and status.stopped_at is not None
    assert status.started_at <= status.stopped_at
    assert before - CLOCK_SLACK <= status.started_at and status.stopped_at <= after + CLOCK_SLACK
    assert status.infrastructure_id == ref.infrastructure_id


async def test_status_many_keeps_input_order_and_reports_unknown_runs(harness: ProviderHarness) -> None:
    refs = [await submit(harness, exiting_command(code, sleep_s=0.1)) for code in (0, 1, 2, 3, 4)]
    unknown = harness.unknown_ref()
    ordered = [refs[3], unknown, refs[0], refs[4], refs[1], refs[2]]
    for ref in refs:
        await wait_for(harness, ref, InfraPhase.EXITED)
    statuses = await harness.provider.status_many(ordered)
    assert [s.infrastructure_id for s in statuses] == [r.infrastructure_id for r in ordered]
    assert [s.exit_code for s in statuses] == [3, None, 0, 4, 1, 2]
    assert statuses[1].phase == InfraPhase.NOT_FOUND
    assert await harness.provider.status_many([]) == []


async def test_runs_started_alike_share_one_watch_batch_that_shows_no_secret(harness: ProviderHarness) -> None:
    """Replicas divide the watching by batch (dispatcher/loops/shards.py): runs one status call can observe
    together must be in one batch, and the batch key goes into the ledger, so it holds no secret."""
    refs = [await submit(harness, exiting_command()) for _ in range(3)]
    batches = {harness.provider.watch_batch(ref) for ref in refs}
    assert len(batches) == 1, batches
    [batch] = batches
    if batch is not None:
        assert batch.size is None or batch.size >= 1
        secrets = run_secrets(refs[0].configuration).revealed()
        assert not any(secret in batch.key for secret in secrets if len(secret) >= 4), batch.key
        assert (await harness.provider.status_many(refs[:1]))[0].phase != InfraPhase.UNKNOWN
    foreign = refs[0].model_copy(update={"infrastructure_id": "not-an-id-of-this-cloud"})
    assert harness.provider.watch_batch(foreign) is None  # status_many answers it without a call: no batch


async def test_stop_a_running_run(harness: ProviderHarness) -> None:
    ref = await submit(harness, exiting_command(sleep_s=60))
    await wait_for(harness, ref, InfraPhase.RUNNING)
    await harness.provider.stop(ref, "contract test stops it")
    status = await wait_for(harness, ref, InfraPhase.EXITED)
    assert status.stop_cause == StopCause.STOPPED
    assert status.stopped_at is not None


async def test_watching_reads_none_of_the_per_run_parts_of_a_configuration(harness: ProviderHarness) -> None:
    """Watched runs keep their configuration without its environment, labels and name (dispatcher/loops/configs.py)."""
    ref = await submit(harness, exiting_command(sleep_s=60))
    watched = ref.model_copy(update={"configuration": for_watching(ref.configuration)})
    await wait_for(harness, watched, InfraPhase.RUNNING)
    await harness.provider.stop(watched, "contract test stops it with the watching configuration")
    assert (await wait_for(harness, watched, InfraPhase.EXITED)).stop_cause == StopCause.STOPPED
    await harness.provider.last_log_lines(watched)
    await harness.provider.release(watched)


async def test_stop_is_idempotent_and_unknown_runs_stop_quietly(harness: ProviderHarness) -> None:
    ref = await submit(harness, exiting_command())
    await wait_for(harness, ref, InfraPhase.EXITED)
    await harness.provider.stop(ref, "already over")
    await harness.provider.stop(ref, "twice")
    await harness.provider.stop(harness.unknown_ref(), "never existed")


async def test_transient_failures_surface_as_retryable_errors(harness: ProviderHarness) -> None:
    if harness.no_fault_injection:
        pytest.skip(harness.no_fault_injection)
    ref = await submit(harness, exiting_command(sleep_s=0.5))
    harness.fail_transiently(True)
    with pytest.raises(TransientProviderError):
        await harness.provider.submit(harness.request(exiting_command()))
    with pytest.raises(TransientProviderError):
        await harness.provider.status_many([ref])
    harness.fail_transiently(False)
    [status] = await harness.provider.status_many([ref])
    assert status.phase != InfraPhase.UNKNOWN
