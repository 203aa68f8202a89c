"""Cloud Run provider behaviour beyond the contract, measured against the Cloud Run emulator."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from providers.base import InfraPhase, InfraStatus, RunLimits, RunRef, StopCause, SubmitRequest
from providers.cloud_run import CloudRunJobConfiguration, CloudRunProvider, CloudRunSettings
from providers.cloud_run.requests import MARKER_ENV
from providers.errors import SubmissionRejected, ThrottledError, TransientProviderError
from tests.emulators.cloud_run import Auth, CloudRunEmulator, Faults
from tests.providers.harnesses.cloud_run import PROJECT, REGION, configuration, job_body

API_KEY = "pnu_0123456789abcdefTOPSECRETAPIKEY"


@pytest.fixture
def emu() -> Iterator[CloudRunEmulator]:
    with CloudRunEmulator(project=PROJECT, region=REGION, default_run_s=0.1) as emulator:
        yield emulator
    assert not emulator.errors, emulator.errors


def settings(emu: CloudRunEmulator, **values) -> CloudRunSettings:
    values.setdefault("run_rate_per_s", 50.0)  # the default pace (1/s, bursts of 10) would make tests wait
    values.setdefault("run_rate_max_per_s", 100.0)
    return CloudRunSettings(endpoint=emu.endpoint_url, anonymous=values.pop("anonymous", True), **values)


@pytest.fixture
async def provider(emu: CloudRunEmulator) -> AsyncIterator[CloudRunProvider]:
    provider = CloudRunProvider(settings(emu))
    yield provider
    await provider.aclose()


def cfg(run_s: float = 0.1, exit_code: int = 0, **fields) -> CloudRunJobConfiguration:
    env = {"PREFECT_API_KEY": API_KEY, "EMULATOR_RUN_SECONDS": str(run_s), "EMULATOR_EXIT_CODE": str(exit_code),
           **fields.pop("env", {})}
    return configuration("prefect flow-run execute", env=env, **fields)


def request(configuration: CloudRunJobConfiguration, *, redrive: bool = False, attempt_id: uuid.UUID | None = None,
            max_runtime_s: int = 3600) -> SubmitRequest:
    attempt_id = attempt_id or uuid.uuid4()
    return SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=attempt_id, idempotency_key=f"prefect-{attempt_id.hex}",
                         workspace="w", pool="cr", configuration=configuration,
                         limits=RunLimits(max_runtime_s=max_runtime_s), redrive=redrive)


def ref(req: SubmitRequest, infrastructure_id: str) -> RunRef:
    return RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=infrastructure_id,
                  configuration=req.configuration)


async def until_exited(provider: CloudRunProvider, run: RunRef, timeout: float = 20) -> InfraStatus:
    deadline = time.monotonic() + timeout
    while True:
        [status] = await provider.status_many([run])
        if status.phase == InfraPhase.EXITED:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


# -- one job per configuration, one :run per attempt ------------------------------------------------


async def test_runs_of_one_configuration_share_one_job_and_cost_one_call_each(emu, provider):
    same = cfg()
    for _ in range(5):
        await provider.submit(request(same))
    assert emu.calls == {"CreateJob": 1, "RunJob": 5}
    (job,) = emu.jobs.values()
    assert job.spec["labels"]["managed-by"] == "prefect-push-dispatcher"
    execution = next(iter(emu.executions.values()))
    env = {var["name"]: var.get("value") for var in execution.task_template["containers"][0]["env"]}
    assert env[MARKER_ENV] and env["PREFECT_API_KEY"] == API_KEY
    assert execution.task_template["timeout"] == "600s" and len(execution.tasks) == 1


async def test_another_replica_reuses_the_job_it_finds_by_name(emu, provider):
    await provider.submit(request(cfg()))
    other = CloudRunProvider(settings(emu))
    try:
        await other.submit(request(cfg()))
    finally:
        await other.aclose()
    assert emu.calls["CreateJob"] == 2 and len(emu.jobs) == 1  # the second CreateJob was a 409: reused
    assert emu.calls["RunJob"] == 2


async def test_a_different_configuration_gets_its_own_job(emu, provider):
    await provider.submit(request(cfg()))
    await provider.submit(request(cfg(job_body=job_body(image="us-docker.pkg.dev/p/flows/other:2"))))
    assert len(emu.jobs) == 2


async def test_timeout_override_is_the_runtime_cap_never_above_24_hours(emu, provider):
    short = await provider.submit(request(cfg(), max_runtime_s=42))
    long = await provider.submit(request(cfg(timeout=172800, job_body=job_body(timeout=172800)),
                                         max_runtime_s=200000))
    assert emu.executions[short.infrastructure_id].task_template["timeout"] == "42s"
    assert emu.executions[long.infrastructure_id].task_template["timeout"] == "86400s"


# -- idempotency without an idempotency key -----------------------------------------------------------


async def test_accepted_then_503_run_is_adopted_by_the_retry_not_started_twice(emu, provider):
    emu.faults = Faults(accept_then_fail=1, ops={"RunJob"})
    req = request(cfg(run_s=5))
    with pytest.raises(TransientProviderError):
        await provider.submit(req)
    assert len(emu.executions) == 1  # Cloud Run did start it
    again = await provider.submit(req)  # the dispatcher's retry of the same attempt
    assert again.infrastructure_id in emu.executions and not again.created
    assert emu.calls["RunJob"] == 1 and len(emu.executions) == 1


async def test_a_redriven_submission_after_a_crash_adopts_the_execution(emu, provider):
    req = request(cfg(run_s=5))
    first = await provider.submit(req)
    restarted = CloudRunProvider(settings(emu))  # no memory of the first submission
    try:
        again = await restarted.submit(req.model_copy(update={"redrive": True}))
    finally:
        await restarted.aclose()
    assert again.infrastructure_id == first.infrastructure_id and not again.created
    assert emu.calls["RunJob"] == 1


async def test_a_redriven_submission_that_never_ran_starts_once(emu, provider):
    req = request(cfg(), redrive=True)
    submission = await provider.submit(req)
    assert submission.created and emu.calls["RunJob"] == 1 and emu.calls["ListExecutions"] == 1


# -- watching ------------------------------------------------------------------------------------


async def test_many_runs_are_watched_with_one_list_call_per_location(emu, provider):
    runs = []
    for _ in range(30):
        req = request(cfg(run_s=0.2))
        runs.append(ref(req, (await provider.submit(req)).infrastructure_id))
    emu.reset_calls()
    statuses = await provider.status_many(runs)
    assert emu.calls == {"ListExecutions": 1}
    assert [s.infrastructure_id for s in statuses] == [r.infrastructure_id for r in runs]


async def test_two_regions_cost_one_list_call_each(emu, provider):
    req_a, req_b = request(cfg()), request(cfg(region="europe-west1"))
    runs = [ref(r, (await provider.submit(r)).infrastructure_id) for r in (req_a, req_b)]
    assert "europe-west1" in runs[1].infrastructure_id
    emu.reset_calls()
    await provider.status_many(runs)
    assert emu.calls == {"ListExecutions": 2}


async def test_a_task_past_its_timeout_is_timed_out_with_the_log_link(emu, provider):
    req = request(cfg(run_s=30), max_runtime_s=1)
    status = await until_exited(provider, ref(req, (await provider.submit(req)).infrastructure_id))
    assert status.stop_cause == StopCause.TIMED_OUT
    assert "timeout was reached" in status.reason and "Logs: https://console.cloud.google.com/logs" in status.reason


async def test_a_failed_task_reports_its_exit_code_and_retries(emu, provider):
    req = request(cfg(exit_code=3, job_body=job_body(maxRetries=1)))
    status = await until_exited(provider, ref(req, (await provider.submit(req)).infrastructure_id))
    assert (status.stop_cause, status.exit_code) == (StopCause.EXITED, 3)
    assert "exit code: 3" in status.reason and "retried" in status.reason
    assert status.started_at is not None and status.stopped_at is not None


async def test_an_execution_that_never_starts_failed_to_start(emu, provider):
    emu.faults = Faults(start_failures=1)
    req = request(cfg())
    status = await until_exited(provider, ref(req, (await provider.submit(req)).infrastructure_id))
    assert status.stop_cause == StopCause.FAILED_TO_START and "not found" in status.reason
    assert status.started_at is None


async def test_cancel_ends_stopped_and_twice_is_fine(emu, provider):
    req = request(cfg(run_s=30))
    run = ref(req, (await provider.submit(req)).infrastructure_id)
    await provider.stop(run, "test")
    status = await until_exited(provider, run)
    assert status.stop_cause == StopCause.STOPPED and status.stopped_at is not None
    await provider.stop(run, "again")  # FAILED_PRECONDITION "already completed": success
    assert emu.calls["CancelExecution"] == 2


# -- quotas, broken jobs, credentials ------------------------------------------------------------


async def test_throttled_runs_slow_the_pacer_down(emu, provider):
    emu.faults = Faults(throttle_rate=1.0, ops={"RunJob"})
    before = provider.pacers("run", f"projects/{PROJECT}/locations/{REGION}").rate
    for _ in range(3):
        with pytest.raises(ThrottledError):
            await provider.submit(request(cfg()))
    assert provider.pacers("run", f"projects/{PROJECT}/locations/{REGION}").rate < before
    assert provider.submit_backlog_s() > 0
    assert emu.executions == {}


async def test_a_job_deleted_behind_our_back_is_created_again(emu, provider):
    await provider.submit(request(cfg()))
    (name,) = emu.jobs
    with emu.backend.lock:
        emu.backend.delete_job(name, emu.parent)
    with pytest.raises(TransientProviderError):
        await provider.submit(request(cfg()))
    await provider.submit(request(cfg()))
    assert len(emu.jobs) == 1 and emu.calls["CreateJob"] == 2


async def test_a_job_whose_image_is_missing_rejects_the_run_and_is_deleted(emu, provider):
    image = "us-docker.pkg.dev/p/flows/missing:1"
    emu.faults = Faults(missing_images={image})
    with pytest.raises(SubmissionRejected, match="not found"):
        await provider.submit(request(cfg(job_body=job_body(image=image))))
    assert emu.jobs == {}


async def test_service_account_key_gives_a_self_signed_token_without_a_token_call(emu):
    from tests.e2e.test_prefect_cloud_run_worker_on_emulator import service_account_info

    emu.auth = Auth(required=True)
    emu.protocol.auth = emu.auth
    credentials = {"service_account_info": service_account_info(emu.token_uri), "project": PROJECT}
    provider = CloudRunProvider(settings(emu, anonymous=False))
    try:
        await provider.submit(request(cfg(credentials=credentials)))
        await provider.submit(request(cfg(credentials=credentials)))
    finally:
        await provider.aclose()
    assert emu.calls["RunJob"] == 2 and "OAuthToken" not in emu.calls and provider.clients.created == 1


async def test_a_refusal_never_echoes_the_api_key(emu, provider):
    emu.auth.denied_permissions.add("run.jobs.runWithOverrides")
    with pytest.raises(Exception) as raised:
        await provider.submit(request(cfg()))
    assert API_KEY not in str(raised.value) and "runWithOverrides" in str(raised.value)


# -- housekeeping ------------------------------------------------------------------------------


async def test_idle_jobs_are_deleted_but_kept_and_busy_ones_stay(emu, provider):
    idle = request(cfg())
    kept = request(cfg(keep_job=True))
    busy = request(cfg(run_s=60, job_body=job_body(image="us-docker.pkg.dev/p/flows/busy:1")))
    for req in (idle, kept):
        await until_exited(provider, ref(req, (await provider.submit(req)).infrastructure_id))
    await provider.submit(busy)
    assert len(emu.jobs) == 3
    deleted = await provider.jobs.sweep(idle_s=60, now=datetime.now(timezone.utc) + timedelta(hours=1))
    assert deleted == 1 and len(emu.jobs) == 2
    assert all(job.spec["labels"].get("prefect-keep-job") == "true" or "busy" in str(job.spec)
               for job in emu.jobs.values())
    await provider.submit(request(cfg()))  # the deleted job comes back on demand
    assert len(emu.jobs) == 3


async def test_a_job_still_being_created_is_a_retryable_refusal():
    with CloudRunEmulator(project=PROJECT, region=REGION, default_run_s=0.1, job_ready_s=0.5) as emu:
        provider = CloudRunProvider(settings(emu))
        try:
            with pytest.raises(TransientProviderError, match="not ready yet"):
                await provider.submit(request(cfg()))
            for _ in range(100):  # what the dispatcher's retries do, without their backoff
                await asyncio.sleep(0.05)
                try:
                    await provider.submit(request(cfg()))
                    break
                except TransientProviderError:
                    continue
        finally:
            await provider.aclose()
        assert emu.calls["CreateJob"] == 1 and len(emu.executions) == 1 and emu.calls["GetJob"] >= 1


async def test_housekeeping_never_raises(emu, provider):
    await provider.submit(request(cfg()))
    emu.faults = Faults(server_error_rate=1.0)
    await provider.housekeeping()  # logged, retried on the next sweep
    assert emu.calls["ListJobs"] == 1
