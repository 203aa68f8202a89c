"""Injected faults: throttling, 5xx, latency, capacity, start failures, spot, lost responses; permissions."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import (
    ClientError,
)

from tests.emulators.ecs import EcsEmulator, Faults
from tests.emulators.kit import RateLimit
from tests.emulators_tests.ecs_helpers import (
    NETWORK,
    NO_RETRY,
    client,
    error,
    raw_call,
    register,
    run,
    wait_status,
)

# -- faults ---------------------------------------------------------------------------------

def test_throttling_is_a_botocore_throttling_error(emu):
    ecs = client(emu, **NO_RETRY)
    emu.faults.throttle_rate = 1.0
    with pytest.raises(ClientError) as excinfo:
        ecs.list_clusters()
    assert error(excinfo) == ("ThrottlingException", "Rate exceeded", 400)
    assert emu.calls["ListClusters"] == 1
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 0
    one_retry = client(emu, retries={"max_attempts": 1, "mode": "standard"})
    with pytest.raises(ClientError) as excinfo:
        one_retry.list_clusters()  # botocore retries throttling: the emulator sees it twice
    assert excinfo.value.response["ResponseMetadata"]["RetryAttempts"] == 1
    assert emu.calls["ListClusters"] == 3


def test_server_errors_and_ops_filter(emu):
    ecs = client(emu, **NO_RETRY)
    emu.faults = Faults(server_error_rate=1.0, ops={"RunTask"})
    ecs.list_clusters()
    register(ecs)
    with pytest.raises(ClientError) as excinfo:
        run(ecs)
    assert error(excinfo)[0] == "ServerException" and error(excinfo)[2] == 500
    assert emu.tasks == {}


def test_call_counter_counts_every_request(emu):
    ecs = client(emu, **NO_RETRY)
    ecs.list_clusters()
    emu.faults.throttle_rate = 1.0
    for _ in range(3):
        with pytest.raises(ClientError):
            ecs.describe_clusters()
    assert emu.calls == {"ListClusters": 1, "DescribeClusters": 3}
    emu.reset_calls()
    assert emu.calls == {}


def test_rates_are_repeatable_with_a_seed():
    def pattern() -> list[bool]:
        with EcsEmulator(faults=Faults(throttle_rate=0.5, seed=7)) as emu:
            ecs = client(emu, **NO_RETRY)
            outcome = []
            for _ in range(16):
                try:
                    ecs.list_clusters()
                    outcome.append(True)
                except ClientError:
                    outcome.append(False)
            return outcome

    first = pattern()
    assert first == pattern() and any(first) and not all(first)


def test_latency(emu):
    ecs = client(emu)
    emu.faults.latency_s = 0.15
    started = time.monotonic()
    ecs.list_clusters()
    assert time.monotonic() - started >= 0.15


def test_capacity_failures_come_back_in_failures(ecs, emu):
    register(ecs)
    emu.faults.capacity_failures = 1
    failed = run(ecs, count=2)
    assert failed["tasks"] == [] and [f["reason"] for f in failed["failures"]] == ["RESOURCE:MEMORY"] * 2
    assert emu.faults.capacity_failures == 0
    assert len(run(ecs)["tasks"]) == 1


def test_start_failure(ecs, emu):
    register(ecs)
    emu.faults.start_failures = 1
    arn = run(ecs)["tasks"][0]["taskArn"]
    stopped, seen = wait_status(ecs, arn)
    assert "RUNNING" not in seen and stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith("CannotPullContainerError: pull image manifest has been retried")
    assert "exitCode" not in stopped["containers"][0] and "startedAt" not in stopped
    assert wait_status(ecs, run(ecs)["tasks"][0]["taskArn"])[0]["stopCode"] == "EssentialContainerExited"


def test_a_bad_emulator_env_value_is_ecs_own_400(ecs):
    register(ecs, env={"EMULATOR_EXIT_CODE": "x"})
    with pytest.raises(ClientError) as excinfo:
        run(ecs)
    code, message, status = error(excinfo)
    assert (code, status) == ("InvalidParameterException", 400)
    assert message.startswith("Emulator: bad EMULATOR_RUN_SECONDS/EMULATOR_EXIT_CODE value: ")


def test_spot_interruption(ecs, emu):
    register(ecs, env={"EMULATOR_RUN_SECONDS": "30"})
    emu.faults = Faults(spot_interruptions=1, spot_only=True)
    on_demand = run(ecs)["tasks"][0]["taskArn"]
    spot = run(ecs, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    stopped, seen = wait_status(ecs, spot["tasks"][0]["taskArn"])
    assert "RUNNING" in seen and stopped["stopCode"] == "SpotInterruption"
    assert stopped["stoppedReason"] == "Your Spot Task was interrupted."
    assert ecs.describe_tasks(tasks=[on_demand])["tasks"][0]["lastStatus"] == "RUNNING"


def test_lost_response_then_retry_with_same_token(ecs, emu):
    register(ecs)
    emu.faults.lost_responses = 1
    with pytest.raises(ClientError) as excinfo:
        client(emu, **NO_RETRY).run_task(taskDefinition="flow", launchType="FARGATE",
                                          networkConfiguration=NETWORK, clientToken="retry-me")
    assert error(excinfo)[2] == 500 and len(emu.tasks) == 1  # the task did start
    retried = run(ecs, clientToken="retry-me")["tasks"][0]
    assert list(emu.tasks) == [retried["taskArn"]]


def test_accept_then_fail_carries_out_a_mutating_call(ecs, emu):
    register(ecs)
    emu.faults.accept_then_fail = 1
    quiet = client(emu, **NO_RETRY)
    quiet.list_clusters()  # reads do not use it up
    with pytest.raises(ClientError) as excinfo:
        quiet.run_task(taskDefinition="flow", launchType="FARGATE", networkConfiguration=NETWORK)
    assert error(excinfo)[::2] == ("ServerException", 500) and len(emu.tasks) == 1
    assert emu.faults.accept_then_fail == 0


def test_rate_limit_throttles_per_operation(emu):
    quiet = client(emu, **NO_RETRY)
    emu.faults = Faults(rate_limits={"ListClusters": RateLimit(per_s=0.001, burst=2)})
    quiet.list_clusters()
    quiet.list_clusters()
    with pytest.raises(ClientError) as excinfo:
        quiet.list_clusters()
    assert error(excinfo) == ("ThrottlingException", "Rate exceeded", 400)
    quiet.describe_clusters()  # its own (unlimited) bucket


def test_permissions_record_the_iam_actions_called(emu):
    client(emu).list_clusters()
    client(emu, "ec2").describe_vpcs()
    emu.faults.throttle_rate = 1.0
    with pytest.raises(ClientError):
        client(emu, "logs", **NO_RETRY).get_log_events(logGroupName="g", logStreamName="s")
    raw_call(emu, "AmazonEC2ContainerServiceV20141113.ListClusters", b"{}", sign=False)  # never authorized
    assert emu.permissions == {"ecs:ListClusters": 1, "ec2:DescribeVpcs": 1, "logs:GetLogEvents": 1}
    emu.reset_calls()
    assert emu.permissions == {} and emu.calls == {}
