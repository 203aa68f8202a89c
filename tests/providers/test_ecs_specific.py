"""ECS provider behaviour beyond the contract, measured against the ECS emulator."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from dispatcher.loops.retry import call_with_retries
from providers.base import InfraPhase, InfraStatus, RunLimits, RunRef, StopCause, SubmitRequest
from providers.ecs import EcsJobConfiguration, EcsProvider, EcsSettings
from providers.ecs import provider as provider_module
from providers.errors import (
    CapacityError,
    InvalidJobConfiguration,
    ProviderError,
    SubmissionRejected,
    ThrottledError,
    TransientProviderError,
)
from tests.emulators.ecs import EcsEmulator, Faults

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYTOPSECRET"
API_KEY = "pnu_0123456789abcdefTOPSECRETAPIKEY"
EXEC_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"


@pytest.fixture
def emu() -> Iterator[EcsEmulator]:
    with EcsEmulator(execute=False, default_run_s=0.1) as emulator:
        yield emulator
    assert not emulator.errors, emulator.errors


@pytest.fixture
async def provider() -> AsyncIterator[EcsProvider]:
    provider = EcsProvider(EcsSettings(max_attempts=2, retry_mode="adaptive"))
    yield provider
    await provider.aclose()


def creds(emu: EcsEmulator, key_id: str = "AKIAEXAMPLE") -> dict:
    return {"aws_access_key_id": key_id, "aws_secret_access_key": AWS_SECRET, "region_name": emu.region,
            "aws_client_parameters": {"endpoint_url": emu.endpoint_url}}


def cfg(emu: EcsEmulator, **values) -> EcsJobConfiguration:
    env = {"PREFECT_API_KEY": API_KEY, "PREFECT_API_URL": "https://api.prefect.example/api", **values.pop("env", {})}
    values.setdefault("aws_credentials", creds(emu))
    values.setdefault("network_configuration", {"subnets": ["subnet-0a"]})
    values.setdefault("image", "prefecthq/prefect:3-latest")
    return EcsJobConfiguration(env=env, **values)


def request(configuration: EcsJobConfiguration, flow_run_id: uuid.UUID | None = None) -> SubmitRequest:
    flow_run_id = flow_run_id or uuid.uuid4()
    return SubmitRequest(flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key=f"prefect-{flow_run_id.hex}", workspace="w",
                         pool="ecs-pool", configuration=configuration, limits=RunLimits(max_runtime_s=600))


async def submit(provider: EcsProvider, configuration: EcsJobConfiguration) -> RunRef:
    req = request(configuration)
    submission = await provider.submit(req)
    return RunRef(flow_run_id=req.flow_run_id, attempt_id=req.attempt_id, infrastructure_id=submission.infrastructure_id, configuration=configuration)


async def wait_exited(provider: EcsProvider, ref: RunRef, timeout: float = 10,
                      phase: InfraPhase = InfraPhase.EXITED) -> InfraStatus:
    deadline = time.monotonic() + timeout
    while True:
        [status] = await provider.status_many([ref])
        if status.phase == phase:
            return status
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)


def revisions(emu: EcsEmulator) -> int:
    return len(emu.backend.taskdefs.all())


# -- task definitions ---------------------------------------------------------------------------


async def test_one_registration_per_content(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu)
    await asyncio.gather(*(submit(provider, configuration) for _ in range(20)))
    assert emu.calls["RegisterTaskDefinition"] == 1 and emu.calls["RunTask"] == 20
    await submit(provider, cfg(emu, image="prefecthq/prefect:3-python3.12"))
    assert emu.calls["RegisterTaskDefinition"] == 2
    await submit(provider, cfg(emu, env={"ONLY_PER_RUN": "x"}, command="python -m other"))
    await submit(provider, configuration)
    assert emu.calls["RegisterTaskDefinition"] == 2 and revisions(emu) == 2


async def test_revision_is_found_by_tag_after_a_restart(emu: EcsEmulator, provider: EcsProvider) -> None:
    await submit(provider, cfg(emu))
    await submit(provider, cfg(emu, cpu=2048, memory=4096))  # a newer revision of the same family on top
    restarted = EcsProvider(EcsSettings(max_attempts=2))
    try:
        emu.reset_calls()
        await submit(restarted, cfg(emu))
        await submit(restarted, cfg(emu))
    finally:
        await restarted.aclose()
    assert emu.calls["RegisterTaskDefinition"] == 0 and revisions(emu) == 2
    assert emu.calls["ListTaskDefinitions"] == 1 and emu.calls["DescribeTaskDefinition"] == 2


async def test_untagged_revisions_are_not_adopted(emu: EcsEmulator, provider: EcsProvider) -> None:
    ecs = await provider.clients.client("ecs", provider.clients.resolve(cfg(emu).aws_credentials)[1])
    await ecs.register_task_definition(family="prefect_ecs-pool_flow", containerDefinitions=[
        {"name": "prefect", "image": "prefecthq/prefect:3-latest"}], cpu="1024", memory="2048",
        networkMode="awsvpc", requiresCompatibilities=["FARGATE"])
    await submit(provider, cfg(emu))
    assert revisions(emu) == 2


async def test_a_revision_deregistered_behind_our_back_is_registered_again(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu)
    await submit(provider, configuration)
    [taskdef] = emu.backend.taskdefs.all()
    ecs = await provider.clients.client("ecs", provider.clients.resolve(configuration.aws_credentials)[1])
    await ecs.deregister_task_definition(taskDefinition=taskdef.arn)
    with pytest.raises(TransientProviderError):
        await submit(provider, configuration)
    await submit(provider, configuration)
    assert revisions(emu) == 2


async def test_existing_task_definition_is_described_once(emu: EcsEmulator, provider: EcsProvider) -> None:
    ecs = await provider.clients.client("ecs", provider.clients.resolve(cfg(emu).aws_credentials)[1])
    answer = await ecs.register_task_definition(family="mine", containerDefinitions=[
        {"name": "app", "image": "x"}], cpu="512", memory="1024", networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"])
    arn = answer["taskDefinition"]["taskDefinitionArn"]
    emu.reset_calls()
    refs = [await submit(provider, cfg(emu, task_definition_arn=arn, image=None)) for _ in range(5)]
    assert emu.calls == {"DescribeTaskDefinition": 1, "RunTask": 5}
    assert (await wait_exited(provider, refs[0])).exit_code == 0


# -- call counts ---------------------------------------------------------------------------------


async def test_submission_costs_one_call_per_run(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu)
    for _ in range(50):
        await submit(provider, configuration)
    per_run = sum(emu.calls.values()) / 50
    assert per_run <= 1.05, emu.calls
    assert emu.calls["RunTask"] == 50


async def test_250_runs_are_observed_with_3_describe_calls(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu, env={"EMULATOR_RUN_SECONDS": "60"})
    refs = list(await asyncio.gather(*(submit(provider, configuration) for _ in range(250))))
    emu.reset_calls()
    shuffled = refs[::-1]
    statuses = await provider.status_many(shuffled)
    assert emu.calls == {"DescribeTasks": 3}
    assert [s.infrastructure_id for s in statuses] == [r.infrastructure_id for r in shuffled]
    assert {s.phase for s in statuses} <= {InfraPhase.PENDING, InfraPhase.RUNNING}


async def test_runs_are_grouped_per_cluster(emu: EcsEmulator, provider: EcsProvider) -> None:
    ecs = await provider.clients.client("ecs", provider.clients.resolve(cfg(emu).aws_credentials)[1])
    await ecs.create_cluster(clusterName="other", capacityProviders=["FARGATE", "FARGATE_SPOT"])
    refs = [await submit(provider, cfg(emu, cluster=c)) for c in ("default", "other", "default", "other")]
    emu.reset_calls()
    statuses = await provider.status_many(refs)
    assert emu.calls == {"DescribeTasks": 2}
    assert ["cluster/other::" in s.infrastructure_id for s in statuses] == [False, True, False, True]


# -- idempotency ---------------------------------------------------------------------------------


async def test_client_token_returns_the_same_task_after_a_crash(emu: EcsEmulator, provider: EcsProvider) -> None:
    req = request(cfg(emu))
    first = await provider.submit(req)
    restarted = EcsProvider(EcsSettings(max_attempts=2))
    try:
        again = await restarted.submit(req)
        # another replica builds a different environment (worker name): ECS answers ConflictException
        other = req.model_copy(update={"configuration": cfg(emu, env={"PREFECT__WORKER_NAME": "replica-2"})})
        adopted = await restarted.submit(other)
    finally:
        await restarted.aclose()
    assert again.infrastructure_id == first.infrastructure_id == adopted.infrastructure_id
    assert adopted.created is False and first.created is True
    assert len(emu.tasks) == 1


async def test_a_replayed_token_is_reported_as_not_created(emu: EcsEmulator, provider: EcsProvider,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    req = request(cfg(emu))
    await provider.submit(req)
    monkeypatch.setattr(provider_module, "REPLAY_MARGIN_S", -60.0)  # as if the first call was long ago
    assert (await provider.submit(req)).created is False


# -- failures ----------------------------------------------------------------------------------------


async def test_capacity_failures_are_retryable(emu: EcsEmulator, provider: EcsProvider) -> None:
    emu.faults = Faults(capacity_failures=1, capacity_failure_reason="RESOURCE:MEMORY")
    with pytest.raises(CapacityError, match="RESOURCE:MEMORY"):
        await submit(provider, cfg(emu))
    await submit(provider, cfg(emu))


async def test_throttling_surfaces_and_the_dispatcher_retry_gets_through(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu)
    await submit(provider, configuration)  # the task definition is cached; only RunTask is throttled now
    emu.faults = Faults(throttle_rate=1.0, ops={"RunTask"})
    with pytest.raises(ThrottledError):
        await submit(provider, configuration)
    assert emu.calls["RunTask"] == 1 + 2  # one success, then max_attempts=2 throttled attempts
    # Adaptive mode also slows the whole client down after throttles (its own token bucket):
    # throttling makes submission slower, the dispatcher's retries make it succeed.
    emu.faults = Faults(throttle_rate=0.3, ops={"RunTask"}, seed=7)
    submissions = await asyncio.gather(*(
        call_with_retries("ecs", "submit", lambda: provider.submit(request(configuration)), deadline_s=90,
                          initial_wait_s=0.05, max_wait_s=0.5)
        for _ in range(6)
    ))
    assert len({s.infrastructure_id for s in submissions}) == 6
    assert emu.calls["RunTask"] > 3 + 6  # some attempts were throttled and retried


async def test_server_errors_are_transient(emu: EcsEmulator, provider: EcsProvider) -> None:
    ref = await submit(provider, cfg(emu))
    emu.faults = Faults(server_error_rate=1.0)
    with pytest.raises(TransientProviderError) as info:
        await submit(provider, cfg(emu))
    assert info.value.code == "ServerException"
    with pytest.raises(TransientProviderError):
        await provider.status_many([ref])


async def test_unknown_cluster_is_rejected(emu: EcsEmulator, provider: EcsProvider) -> None:
    with pytest.raises(SubmissionRejected) as info:
        await submit(provider, cfg(emu, cluster="nope"))
    assert info.value.code == "ClusterNotFoundException"


async def test_task_failed_to_start(emu: EcsEmulator, provider: EcsProvider) -> None:
    emu.faults = Faults(start_failures=1)
    status = await wait_exited(provider, await submit(provider, cfg(emu)))
    assert status.stop_cause == StopCause.FAILED_TO_START and status.exit_code is None
    assert "CannotPullContainerError" in status.reason
    assert status.native_state == "STOPPED/TaskFailedToStart"


async def test_spot_interruption(emu: EcsEmulator, provider: EcsProvider) -> None:
    emu.faults = Faults(spot_interruptions=1, spot_only=True)
    configuration = cfg(emu, launch_type="FARGATE_SPOT", env={"EMULATOR_RUN_SECONDS": "30"})
    status = await wait_exited(provider, await submit(provider, configuration))
    assert status.stop_cause == StopCause.INTERRUPTED and status.native_state == "STOPPED/SpotInterruption"


@pytest.mark.parametrize("exit_code", [0, 1, 7, 137])
async def test_exit_codes(emu: EcsEmulator, provider: EcsProvider, exit_code: int) -> None:
    status = await wait_exited(provider, await submit(provider, cfg(emu, env={"EMULATOR_EXIT_CODE": str(exit_code)})))
    assert (status.exit_code, status.stop_cause) == (exit_code, StopCause.EXITED)
    assert status.started_at < status.stopped_at


async def test_fargate_spot_becomes_a_capacity_provider_strategy(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu, launch_type="FARGATE_SPOT")
    ecs = await provider.clients.client("ecs", provider.clients.resolve(configuration.aws_credentials)[1])
    sent: list[dict] = []
    ecs.meta.events.register("provide-client-params.ecs.RunTask", lambda params, **_: sent.append(dict(params)))
    ref = await submit(provider, configuration)
    [params] = sent
    assert "launchType" not in params
    assert params["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    task = emu.tasks[ref.infrastructure_id.split("::")[1]]
    assert task.capacity_provider == "FARGATE_SPOT"


async def test_invalid_fargate_size_never_reaches_aws(emu: EcsEmulator, provider: EcsProvider) -> None:
    with pytest.raises(InvalidJobConfiguration, match="memory=3000 is not allowed: for cpu=512"):
        await submit(provider, cfg(emu, cpu=512, memory=3000))
    assert sum(emu.calls.values()) == 0


async def test_one_client_per_credential_set(emu: EcsEmulator, provider: EcsProvider) -> None:
    await submit(provider, cfg(emu))
    await submit(provider, cfg(emu, env={"OTHER": "run"}))
    assert provider.clients.created == 1
    same = provider.clients.resolve(cfg(emu).aws_credentials)[1]
    assert await provider.clients.client("ecs", same) is await provider.clients.client("ecs", same)
    await submit(provider, cfg(emu, aws_credentials=creds(emu, key_id="AKIAOTHER")))
    assert provider.clients.created == 2


async def test_stop_is_idempotent_and_tolerates_missing_tasks(emu: EcsEmulator, provider: EcsProvider) -> None:
    ref = await submit(provider, cfg(emu, env={"EMULATOR_RUN_SECONDS": "30"}))
    await wait_exited(provider, ref, phase=InfraPhase.RUNNING)
    await provider.stop(ref, "cancelled")
    await provider.stop(ref, "cancelled again")
    status = await wait_exited(provider, ref)
    assert status.stop_cause == StopCause.STOPPED and status.exit_code == 143
    gone = ref.model_copy(update={"infrastructure_id": ref.infrastructure_id[:-6] + "ffffff"})
    await provider.stop(gone, "never existed")
    missing_cluster = ref.model_copy(update={"infrastructure_id": "arn:aws:ecs:us-east-1:123456789012:cluster/x::"
                                             "arn:aws:ecs:us-east-1:123456789012:task/x/abc"})
    await provider.stop(missing_cluster, "cluster gone")
    [status] = await provider.status_many([missing_cluster])
    assert status.phase == InfraPhase.NOT_FOUND


async def test_last_log_lines_from_cloudwatch(tmp_path) -> None:
    with EcsEmulator(execute=True, workdir=str(tmp_path)) as emu:
        provider = EcsProvider(EcsSettings(max_attempts=2, log_lines_on_crash=3))
        try:
            command = "python -c \"import sys; [print('line', i) for i in range(10)]; sys.exit(2)\""
            ref = await submit(provider, cfg(emu, command=command, configure_cloudwatch_logs=True,
                                             execution_role_arn=EXEC_ROLE))
            assert (await wait_exited(provider, ref)).exit_code == 2
            assert await provider.last_log_lines(ref, limit=10) == ["line 7", "line 8", "line 9"]
            assert await provider.last_log_lines(ref.model_copy(update={"configuration": cfg(emu)})) == []
        finally:
            await provider.aclose()


async def test_secrets_never_reach_messages_or_logs(emu: EcsEmulator, provider: EcsProvider,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[ProviderError] = []
    echo = cfg(emu, task_run_request={"propagateTags": API_KEY})  # ECS echoes a bad enum value in its message
    for configuration, faults in [
        (echo, Faults()),
        (cfg(emu), Faults(throttle_rate=1.0)),
        (cfg(emu), Faults(server_error_rate=1.0)),
        (cfg(emu), Faults(capacity_failures=1)),
        (cfg(emu, cluster="missing"), Faults()),
        (cfg(emu, cpu=512, memory=3000), Faults()),
    ]:
        emu.faults = faults
        with pytest.raises(ProviderError) as info:
            await submit(provider, configuration)
        errors.append(info.value)
    emu.faults = Faults()
    ref = await submit(provider, cfg(emu))
    await wait_exited(provider, ref)
    await provider.stop(ref, "done")
    text = caplog.text + "\n".join(f"{e} {e.message} {e.args}" for e in errors)
    assert "propagateTags" in text  # the echo case did reach ECS and come back
    for secret in (AWS_SECRET, API_KEY):
        assert secret not in text


async def test_launches_are_paced_at_the_accounts_launch_rate(emu: EcsEmulator) -> None:
    """RunTask goes at ``launch_rate_per_s`` (Fargate's quota), and the backlog tells the dispatcher not to claim."""
    provider = EcsProvider(EcsSettings(max_attempts=2, launch_rate_per_s=0.5, launch_burst=1))
    try:
        configuration = cfg(emu)
        first = asyncio.create_task(submit(provider, configuration))
        await first  # the burst token
        waiting = [asyncio.create_task(submit(provider, configuration)) for _ in range(4)]
        while provider.submit_backlog_s() < 4 * 2 - 0.5:  # 4 waiting at 2 s each: the next would wait ~8-10 s
            await asyncio.sleep(0.01)
        assert emu.calls["RunTask"] == 1  # the others wait here, not at AWS
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    finally:
        await provider.aclose()


async def test_a_throttled_launch_slows_the_pace_down(emu: EcsEmulator, provider: EcsProvider) -> None:
    configuration = cfg(emu)
    await submit(provider, configuration)
    emu.faults = Faults(throttle_rate=1.0, ops={"RunTask"})
    with pytest.raises(ThrottledError):
        await submit(provider, configuration)
    (pacer,) = provider.launches._pacers.values()
    assert pacer.rate == pytest.approx(provider.settings.launch_rate_per_s / 2)
