"""ACI provider behaviour beyond the contract, measured against the ACI emulator (simulated containers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from dispatcher.config import LoopConfig
from dispatcher.loops.calls import ProviderCalls
from providers.aci import AciProvider
from providers.base import InfraPhase, InfraStatus, RunLimits, RunRef, StopCause, SubmitRequest
from providers.errors import CapacityError, ThrottledError, TransientProviderError
from providers.secrets import RunSecrets
from tests.emulators.aci import AciEmulator, Faults
from tests.emulators.kit import RateLimit
from tests.providers.harnesses.aci import aci_configuration, emulator_settings, started

API_KEY = "pnu_0123456789abcdefTOPSECRETAPIKEY"
FAST = {"refresh_after_s": 0, "reads_per_s": 1000, "read_burst": 1000}


@pytest.fixture
def emu() -> Iterator[AciEmulator]:
    with AciEmulator(execute=False, default_run_s=0.1) as emulator:
        yield emulator
    assert not emulator.errors, emulator.errors


@pytest.fixture
async def provider(emu: AciEmulator) -> AsyncIterator[AciProvider]:
    aci = AciProvider(emulator_settings(emu, **FAST))
    yield aci
    await aci.aclose()


def request(emu: AciEmulator, run_s: float = 0.1, exit_code: int = 0, **fields) -> SubmitRequest:
    env = {"EMULATOR_RUN_SECONDS": str(run_s), "EMULATOR_EXIT_CODE": str(exit_code), **fields.pop("env", {})}
    attempt = uuid.uuid4()
    return SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=attempt, idempotency_key=f"prefect-{attempt.hex}",
                         workspace="ws", pool="aci-pool", configuration=aci_configuration(emu, "run", env=env, **fields),
                         limits=RunLimits(max_runtime_s=300), secrets=fields.pop("secrets", RunSecrets()))


def ref(req: SubmitRequest, infrastructure_id: str) -> RunRef:
    return RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=infrastructure_id,
                  configuration=req.configuration)


async def until(provider: AciProvider, run: RunRef, phase: InfraPhase, timeout: float = 10) -> InfraStatus:
    deadline = time.monotonic() + timeout
    while True:
        [status] = await provider.status_many([run])
        if status.phase == phase:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.02)


async def test_group_is_direct_named_tagged_and_never_polled(emu: AciEmulator, provider: AciProvider) -> None:
    req = request(emu)
    submission = await provider.submit(req)
    name = f"prefect-{req.attempt_id.hex}"
    assert submission.created and submission.infrastructure_id == f"{req.flow_run_id}:{name}"
    group = emu.group(name)
    body = group.body
    assert body["properties"]["restartPolicy"] == "Never" and body["location"] == "eastus"
    assert body["tags"]["prefect-flow-run-id"] == str(req.flow_run_id)
    assert body["tags"]["prefect-workspace"] == "ws" and body["tags"]["prefect-pool"] == "aci-pool"
    calls = dict(emu.calls)
    # A GET (adopt check), the resource group's location once, one PUT; no deployment, no LRO poll.
    assert calls == {"ContainerGroups_Get": 1, "ResourceGroups_Get": 1, "ContainerGroups_CreateOrUpdate": 1}
    await provider.submit(request(emu))
    assert emu.calls["ResourceGroups_Get"] == 1 and provider.clients.created == 1  # cached, one client


async def test_create_answered_503_after_it_happened_starts_exactly_one_group(emu: AciEmulator,
                                                                             provider: AciProvider) -> None:
    emu.faults = Faults(accept_then_fail=1, ops={"ContainerGroups_CreateOrUpdate"})
    req = request(emu, run_s=5)
    with pytest.raises(TransientProviderError):
        await provider.submit(req)
    again = await provider.submit(req)  # the dispatcher's retry
    assert not again.created
    assert started(emu) == 1 and emu.group(f"prefect-{req.attempt_id.hex}").puts == 1  # never PUT over it
    assert emu.calls["ContainerGroups_CreateOrUpdate"] == 1


async def test_create_then_503_through_the_dispatchers_call_path(emu: AciEmulator, provider: AciProvider) -> None:
    emu.faults = Faults(accept_then_fail=1, ops={"ContainerGroups_CreateOrUpdate"})
    calls = ProviderCalls(provider, LoopConfig(submit_deadline_s=30))
    req = request(emu, run_s=5)
    submission = await calls.submit(req)
    assert not submission.created and started(emu) == 1


async def test_every_state_and_exit_code(emu: AciEmulator, provider: AciProvider) -> None:
    ok, bad = request(emu, exit_code=0), request(emu, exit_code=3)
    refs = [ref(r, (await provider.submit(r)).infrastructure_id) for r in (ok, bad)]
    done = [await until(provider, r, InfraPhase.EXITED) for r in refs]
    assert [(s.exit_code, s.stop_cause) for s in done] == [(0, StopCause.EXITED), (3, StopCause.EXITED)]
    assert done[0].native_state == "Succeeded/Succeeded/Terminated" and done[1].native_state.startswith("Succeeded/Failed")
    for status in done:  # metering: first image pull -> container finish, both ACI's clock
        group = emu.group(status.infrastructure_id.split(":")[1])
        pulling = next(e for e in group.containers[0].events if e.name == "Pulling")
        assert abs(status.started_at.timestamp() - pulling.first) < 0.01
        assert abs(status.stopped_at.timestamp() - group.containers[0].current.finish) < 0.01


async def test_image_pull_failure_crashes_with_acis_events(emu: AciEmulator, provider: AciProvider) -> None:
    emu.faults = Faults(pull_failures=1)
    req = request(emu, image="registry.example/missing:1")
    run = ref(req, (await provider.submit(req)).infrastructure_id)
    status = await until(provider, run, InfraPhase.EXITED)
    assert status.stop_cause == StopCause.FAILED_TO_START and status.exit_code is None
    assert "Failed to pull image" in status.reason and "registry.example/missing:1" in status.reason
    assert status.started_at is not None and status.stopped_at is not None


async def test_a_tick_reads_at_most_its_budget_and_list_never_ends_a_run(emu: AciEmulator,
                                                                          provider: AciProvider) -> None:
    reqs = [request(emu, run_s=0.05) for _ in range(20)]
    runs = [ref(r, (await provider.submit(r)).infrastructure_id) for r in reqs]
    for run in runs:
        await until(provider, run, InfraPhase.EXITED)
    # Another replica, whose read budget allows 6 reads now (1 List + 5 GETs) and hardly refills.
    other = AciProvider(emulator_settings(emu, reads_per_s=0.001, read_burst=6, refresh_after_s=0))
    try:
        emu.reset_calls()
        statuses = await other.status_many(runs)
        assert emu.calls["ContainerGroups_ListByResourceGroup"] == 1 and emu.calls["ContainerGroups_Get"] == 5
        assert sum(s.phase == InfraPhase.EXITED for s in statuses) == 5  # the ones read
        # The rest is known to exist (List), not how it ended: never EXITED, never UNKNOWN.
        assert all(s.phase in (InfraPhase.PENDING, InfraPhase.RUNNING) for s in statuses if s.exit_code is None)
    finally:
        await other.aclose()


async def test_create_quota_429_pauses_creates_and_reports_a_backlog(emu: AciEmulator, provider: AciProvider) -> None:
    emu.faults = Faults(create_quota={"00:05:00": RateLimit(per_s=100 / 300, burst=2)})
    for _ in range(2):
        await provider.submit(request(emu))
    assert provider.submit_backlog_s() == 0
    with pytest.raises(ThrottledError) as caught:
        await provider.submit(request(emu))
    assert caught.value.code == "ResourceRequestsThrottled" and caught.value.retry_after_s >= 1
    assert provider.submit_backlog_s() >= 1  # the dispatcher stops claiming until it has passed


async def test_region_quota_is_a_capacity_error(emu: AciEmulator, provider: AciProvider) -> None:
    emu.faults = Faults(max_groups_per_region=1)
    await provider.submit(request(emu, run_s=30))
    with pytest.raises(CapacityError):
        await provider.submit(request(emu))


async def test_release_deletes_unless_kept_and_stop_of_a_gone_group_is_fine(emu: AciEmulator,
                                                                           provider: AciProvider) -> None:
    gone, kept = request(emu), request(emu, keep_container_group=True)
    runs = [ref(r, (await provider.submit(r)).infrastructure_id) for r in (gone, kept)]
    for run in runs:
        await until(provider, run, InfraPhase.EXITED)
        await provider.release(run)
    assert [g.name for g in emu.deleted_groups] == [f"prefect-{gone.attempt_id.hex}"]
    assert f"rg/prefect-{kept.attempt_id.hex}" in emu.groups
    await provider.stop(runs[0], "cancel after delete")  # already gone: success
    [status] = await provider.status_many([runs[0]])
    assert status.phase == InfraPhase.NOT_FOUND


async def test_deletes_are_paced_and_finished_by_housekeeping(emu: AciEmulator) -> None:
    now = [time.monotonic()]
    aci = AciProvider(emulator_settings(emu, delete_quota_per_5min=1, delete_quota_per_hour=12, **FAST),
                      clock=lambda: now[0])
    try:
        reqs = [request(emu) for _ in range(3)]
        runs = [ref(r, (await aci.submit(r)).infrastructure_id) for r in reqs]
        for run in runs:
            await until(aci, run, InfraPhase.EXITED)
            await aci.release(run)
        assert len(emu.deleted_groups) == 1 and len(aci.deleter.queue) == 2  # the rest waits for the quota
        assert emu.calls["ContainerGroups_Delete"] == 1  # nothing was sent to be refused
        await aci.housekeeping()
        assert len(emu.deleted_groups) == 1  # still no token
        now[0] += 3600  # an hour passes: the pacer refills (one token of burst per refill)
        await aci.housekeeping()
        now[0] += 3600
        await aci.housekeeping()
        assert len(emu.deleted_groups) == 3 and not aci.deleter.queue
    finally:
        await aci.aclose()


async def test_a_delete_throttled_by_aci_waits_for_its_retry_after(emu: AciEmulator) -> None:
    now = [time.monotonic()]
    aci = AciProvider(emulator_settings(emu, **FAST), clock=lambda: now[0])
    try:
        req = request(emu)
        run = ref(req, (await aci.submit(req)).infrastructure_id)
        await until(aci, run, InfraPhase.EXITED)
        emu.faults = Faults(throttle_rate=1.0, ops={"ContainerGroups_Delete"}, throttle_retry_after_s=30)
        await aci.release(run)
        assert not emu.deleted_groups and len(aci.deleter.queue) == 1
        emu.faults = Faults()
        now[0] += 29
        await aci.housekeeping()
        assert not emu.deleted_groups and emu.calls["ContainerGroups_Delete"] == 1  # Retry-After honoured
        now[0] += 120
        await aci.housekeeping()
        assert len(emu.deleted_groups) == 1 and not aci.deleter.queue
    finally:
        await aci.aclose()


async def test_a_restart_deletes_groups_left_behind(emu: AciEmulator) -> None:
    first = AciProvider(emulator_settings(emu, **FAST))
    req = request(emu)
    run = ref(req, (await first.submit(req)).infrastructure_id)
    await until(first, run, InfraPhase.EXITED)
    await first.aclose()  # crashed before release
    # The operator's resource group (providers.aci) is known from the start, before any run comes by.
    again = AciProvider(emulator_settings(emu, orphan_grace_s=0, subscription_id=emu.subscription_id,
                                          resource_group_name="rg", **FAST))
    try:
        await again.housekeeping()
        assert [g.name for g in emu.deleted_groups] == [f"prefect-{req.attempt_id.hex}"]
    finally:
        await again.aclose()


async def test_secret_env_values_go_as_secure_values(emu: AciEmulator, provider: AciProvider) -> None:
    req = request(emu, env={"PREFECT_API_KEY": API_KEY, "PLAIN": "visible"})
    await provider.submit(req)
    group = emu.group(f"prefect-{req.attempt_id.hex}")
    env = {v["name"]: v for v in group.body["properties"]["containers"][0]["properties"]["environmentVariables"]}
    assert env["PREFECT_API_KEY"].get("secureValue") == API_KEY and "value" not in env["PREFECT_API_KEY"]
    assert env["PLAIN"]["value"] == "visible"


async def test_unknown_state_is_unknown_never_success(emu: AciEmulator, provider: AciProvider) -> None:
    req = request(emu, run_s=30)
    run = ref(req, (await provider.submit(req)).infrastructure_id)
    await until(provider, run, InfraPhase.RUNNING)
    with emu.backend.lock:
        emu.group(f"prefect-{req.attempt_id.hex}").state = "Hibernating"
    [status] = await provider.status_many([run])
    assert status.phase == InfraPhase.UNKNOWN and "Hibernating" in status.native_state


async def test_backlog_counts_submissions_still_on_their_way_to_the_create_pacer(emu: AciEmulator) -> None:
    aci = AciProvider(emulator_settings(emu, create_quota_per_5min=2, create_quota_per_hour=12, **FAST))
    try:
        assert aci.submit_backlog_s() == 0
        tasks = [asyncio.create_task(aci.submit(request(emu))) for _ in range(4)]
        await asyncio.sleep(0)  # each is in its adopt check, not yet at the pacer
        assert aci.submit_backlog_s() > 30  # 2 burst tokens for 5 creates: the dispatcher stops claiming
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert aci.submit_backlog_s() == 0 and not aci._on_the_way
    finally:
        await aci.aclose()


async def test_a_failed_read_leaves_the_run_unknown_until_a_read_succeeds(emu: AciEmulator,
                                                                         provider: AciProvider) -> None:
    """Never the last good status while ARM does not answer: the watcher's error deadline must run."""
    req = request(emu, run_s=30)
    run = ref(req, (await provider.submit(req)).infrastructure_id)
    await until(provider, run, InfraPhase.RUNNING)
    emu.faults = Faults(server_error_rate=1.0, ops={"ContainerGroups_Get"})
    for _ in range(2):
        [status] = await provider.status_many([run])
        assert status.phase == InfraPhase.UNKNOWN and status.native_state == "Unobserved/ServiceUnavailable"
    provider.settings.refresh_after_s = 3600  # not due for a read: still unknown, not the cached RUNNING
    provider.book.refresh_after_s = 3600
    [status] = await provider.status_many([run])
    assert status.phase == InfraPhase.UNKNOWN
    emu.faults = Faults()
    provider.book.refresh_after_s = 0
    [status] = await provider.status_many([run])
    assert status.phase == InfraPhase.RUNNING
