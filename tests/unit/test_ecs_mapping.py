"""Pure mapping of ECS answers and SDK errors to the provider contract."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ProfileNotFound,
    ReadTimeoutError,
)
from dateutil.tz import tzlocal

from providers.base import InfraPhase, StopCause
from providers.ecs.errors import aws_errors, is_not_found, translate_client_error
from providers.ecs.mapping import (
    CAUSE_OF_STOP_CODE,
    PHASE_OF_STATUS,
    failure_status,
    run_task_failure,
    task_status,
)
from providers.errors import (
    CapacityError,
    CredentialsError,
    InvalidJobConfiguration,
    PermanentProviderError,
    ProviderError,
    SubmissionRejected,
    ThrottledError,
    TransientProviderError,
)

ID = "arn:aws:ecs:us-east-1:1:cluster/c::arn:aws:ecs:us-east-1:1:task/c/abc"
T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

EXPECTED_PHASE = {
    "PROVISIONING": InfraPhase.PENDING, "PENDING": InfraPhase.PENDING, "ACTIVATING": InfraPhase.PENDING,
    "RUNNING": InfraPhase.RUNNING, "DEACTIVATING": InfraPhase.RUNNING, "STOPPING": InfraPhase.RUNNING,
    "DEPROVISIONING": InfraPhase.RUNNING, "STOPPED": InfraPhase.EXITED, "DELETED": InfraPhase.EXITED,
}
EXPECTED_CAUSE = {
    "TaskFailedToStart": StopCause.FAILED_TO_START, "EssentialContainerExited": StopCause.EXITED,
    "UserInitiated": StopCause.STOPPED, "SpotInterruption": StopCause.INTERRUPTED,
    "ServiceSchedulerInitiated": StopCause.STOPPED, "TerminationNotice": StopCause.INTERRUPTED,
}


def task(last_status: str = "STOPPED", stop_code: str | None = "EssentialContainerExited", exit_code: int | None = 0,
         **extra) -> dict:
    container = {"name": "prefect", "lastStatus": last_status}
    if exit_code is not None:
        container["exitCode"] = exit_code
    body = {"taskArn": "arn:aws:ecs:us-east-1:1:task/c/abc", "lastStatus": last_status, "containers": [container]}
    if stop_code:
        body["stopCode"] = stop_code
    return {**body, **extra}


def test_every_documented_state_and_stop_code_is_mapped() -> None:
    assert PHASE_OF_STATUS == EXPECTED_PHASE
    assert CAUSE_OF_STOP_CODE == EXPECTED_CAUSE


@pytest.mark.parametrize("last_status", EXPECTED_PHASE)
def test_phase_of_every_last_status(last_status: str) -> None:
    status = task_status(task(last_status, stop_code=None, exit_code=None), ID, "prefect")
    assert status.phase == EXPECTED_PHASE[last_status]
    assert status.native_state == last_status
    assert (status.stop_cause is not None) == (status.phase == InfraPhase.EXITED)


@pytest.mark.parametrize("stop_code", EXPECTED_CAUSE)
@pytest.mark.parametrize("exit_code", [0, 1, 3, 137, 143, None])
def test_stopped_tasks_by_stop_code_and_exit_code(stop_code: str, exit_code: int | None) -> None:
    status = task_status(task("STOPPED", stop_code, exit_code), ID, "prefect")
    assert status.phase == InfraPhase.EXITED
    assert status.stop_cause == EXPECTED_CAUSE[stop_code]
    assert status.exit_code == exit_code
    assert status.native_state == f"STOPPED/{stop_code}"


@pytest.mark.parametrize("stop_code", EXPECTED_CAUSE)
def test_a_task_on_its_way_down_is_not_exited_yet(stop_code: str) -> None:
    status = task_status(task("DEPROVISIONING", stop_code, 0), ID, "prefect")
    assert status.phase == InfraPhase.RUNNING and status.stop_cause is None


def test_unknown_last_status_is_unknown_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="providers.ecs.mapping"):
        status = task_status(task("HIBERNATING", stop_code=None, exit_code=0), ID, "prefect")
    assert status.phase == InfraPhase.UNKNOWN and status.native_state == "HIBERNATING"
    assert "HIBERNATING" in caplog.text
    assert task_status({"taskArn": "x"}, ID, "prefect").phase == InfraPhase.UNKNOWN


@pytest.mark.parametrize("stop_code", ["SomethingNew", None])
def test_unknown_or_missing_stop_code_is_never_a_success(stop_code: str | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="providers.ecs.mapping"):
        status = task_status(task("STOPPED", stop_code, 0), ID, "prefect")
    assert status.phase == InfraPhase.EXITED and status.stop_cause == StopCause.UNKNOWN
    assert "stopCode" in caplog.text


def test_task_failed_to_start_keeps_the_reason() -> None:
    reason = "CannotPullContainerError: pull image manifest has been retried 1 time(s): not found"
    body = task("STOPPED", "TaskFailedToStart", None, stoppedReason=reason, pullStartedAt=T0, executionStoppedAt=T0,
                stoppedAt=T0 + timedelta(seconds=30))
    body["containers"][0]["reason"] = reason
    status = task_status(body, ID, "prefect")
    assert status.stop_cause == StopCause.FAILED_TO_START and status.exit_code is None
    assert status.reason == reason  # not repeated
    assert (status.started_at, status.stopped_at) == (T0, T0 + timedelta(seconds=30))


def test_reason_joins_task_and_container_reasons() -> None:
    body = task("STOPPED", "EssentialContainerExited", 137, stoppedReason="Essential container in task exited")
    body["containers"][0]["reason"] = "OutOfMemoryError: Container killed due to memory usage"
    status = task_status(body, ID, "prefect")
    assert status.reason == "Essential container in task exited; OutOfMemoryError: Container killed due to memory usage"


def test_metering_timestamps_prefer_image_pull_and_stopped_at() -> None:
    pulled, started, exec_stopped, stopped = (T0 + timedelta(seconds=s) for s in (0, 20, 80, 95))
    full = task(pullStartedAt=pulled, startedAt=started, executionStoppedAt=exec_stopped, stoppedAt=stopped)
    status = task_status(full, ID, "prefect")
    assert (status.started_at, status.stopped_at) == (pulled, stopped)
    partial = task("DEPROVISIONING", startedAt=started, executionStoppedAt=exec_stopped)
    status = task_status(partial, ID, "prefect")
    assert (status.started_at, status.stopped_at) == (started, exec_stopped)
    assert task_status(task("PROVISIONING", None, None), ID, "prefect").started_at is None


def test_timestamps_are_utc_whatever_botocore_parsed() -> None:
    local = T0.astimezone(tzlocal())
    status = task_status(task(pullStartedAt=local, stoppedAt=T0.replace(tzinfo=None)), ID, "prefect")
    assert status.started_at == T0 and status.started_at.tzinfo == timezone.utc
    assert status.stopped_at == T0


def test_exit_code_comes_from_the_flow_container() -> None:
    body = task(exit_code=None)
    body["containers"] = [{"name": "sidecar", "exitCode": 143}, {"name": "flow", "exitCode": 3}]
    assert task_status(body, ID, "flow").exit_code == 3
    assert task_status(body, ID, "prefect").exit_code == 143  # unnamed: the first that exited
    body["containers"] = [{"name": "only", "exitCode": 5}]
    assert task_status(body, ID, "prefect").exit_code == 5
    body["containers"] = []
    assert task_status(body, ID, "prefect").exit_code is None


def test_describe_failures() -> None:
    missing = failure_status({"arn": "x", "reason": "MISSING"}, ID)
    assert missing.phase == InfraPhase.NOT_FOUND
    other = failure_status({"arn": "x", "reason": "ACCESS_DENIED", "detail": "no"}, ID)
    assert other.phase == InfraPhase.UNKNOWN and other.reason == "ACCESS_DENIED: no"


@pytest.mark.parametrize("reason,kind", [
    ("RESOURCE:MEMORY", CapacityError), ("RESOURCE:CPU", CapacityError), ("RESOURCE:ENI", CapacityError),
    ("AGENT", CapacityError), ("Capacity is unavailable at this time. Please try again later.", CapacityError),
    ("MISSING", SubmissionRejected), ("ATTRIBUTE", SubmissionRejected), ("LOCATION", SubmissionRejected),
])
def test_run_task_failures(reason: str, kind: type) -> None:
    error = run_task_failure([{"arn": "arn:x", "reason": reason}])
    assert type(error) is kind and reason in error.message
    assert isinstance(run_task_failure([]), SubmissionRejected)


# -- SDK errors ------------------------------------------------------------------------------------


def client_error(code: str, message: str = "boom", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "RunTask")


@pytest.mark.parametrize("code,status,kind", [
    ("ThrottlingException", 400, ThrottledError), ("Throttling", 400, ThrottledError),
    ("TooManyRequestsException", 429, ThrottledError), ("RequestLimitExceeded", 503, ThrottledError),
    ("ServerException", 500, TransientProviderError), ("ServiceUnavailable", 503, TransientProviderError),
    ("InternalFailure", 500, TransientProviderError), ("SomethingNew", 502, TransientProviderError),
    ("AccessDeniedException", 400, CredentialsError), ("AccessDenied", 403, CredentialsError),
    ("UnrecognizedClientException", 400, CredentialsError), ("InvalidClientTokenId", 403, CredentialsError),
    ("ExpiredTokenException", 400, CredentialsError), ("UnauthorizedOperation", 403, CredentialsError),
    ("ClientException", 400, SubmissionRejected), ("InvalidParameterException", 400, SubmissionRejected),
    ("ClusterNotFoundException", 400, SubmissionRejected), ("PlatformUnknownException", 400, SubmissionRejected),
    ("LimitExceededException", 400, CapacityError),
])
def test_client_error_table(code: str, status: int, kind: type) -> None:
    error = translate_client_error(client_error(code, status=status), "RunTask", SubmissionRejected)
    assert type(error) is kind and error.code == code
    assert error.retryable == issubclass(kind, TransientProviderError)


@pytest.mark.parametrize("exc,kind", [
    (EndpointConnectionError(endpoint_url="https://ecs.us-east-1.amazonaws.com"), TransientProviderError),
    (ReadTimeoutError(endpoint_url="https://ecs"), TransientProviderError),
    (ConnectTimeoutError(endpoint_url="https://ecs"), TransientProviderError),
    (NoCredentialsError(), CredentialsError),
    (ProfileNotFound(profile="nope"), CredentialsError),
    (NoRegionError(), InvalidJobConfiguration),
    (ParamValidationError(report=f"Invalid type for parameter x, value: {SECRET}"), PermanentProviderError),
    (TimeoutError(), TransientProviderError),
])
def test_sdk_errors_are_translated_at_the_boundary(exc: Exception, kind: type) -> None:
    with pytest.raises(ProviderError) as info:
        with aws_errors("DescribeTasks"):
            raise exc
    assert type(info.value) is kind
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_messages_never_contain_secrets() -> None:
    echoed = (f"1 validation error detected: Value '{SECRET}' at 'overrides.containerOverrides.1.member.environment"
              f".1.member.value' failed to satisfy constraint")
    error = translate_client_error(client_error("InvalidParameterException", echoed), "RunTask", SubmissionRejected)
    assert SECRET not in str(error) and "Value '***'" in str(error)
    raw = translate_client_error(client_error("ClientException", f"bad {SECRET} here"), "RunTask",
                                 SubmissionRejected, secrets=[SECRET])
    assert SECRET not in str(raw) and "bad *** here" in str(raw)
    long = translate_client_error(client_error("ClientException", "x" * 5000), "RunTask", SubmissionRejected)
    assert len(long.message) < 500


def test_provider_errors_pass_through() -> None:
    with pytest.raises(CapacityError):
        with aws_errors("RunTask"):
            raise CapacityError("full")


@pytest.mark.parametrize("code,message,expected", [
    ("InvalidParameterException", "The referenced task was not found.", True),
    ("ClusterNotFoundException", "Cluster not found.", True),
    ("ClientException", "TaskDefinition not found.", True),
    ("InvalidParameterException", "Tag keys must be unique.", False),
    ("ThrottlingException", "Rate exceeded", False),
])
def test_not_found_detection(code: str, message: str, expected: bool) -> None:
    error = translate_client_error(client_error(code, message), "StopTask", PermanentProviderError)
    assert is_not_found(error) is expected
