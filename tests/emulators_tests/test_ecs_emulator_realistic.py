"""ECS realistic mode through real boto3 clients: API buckets, Fargate launch rate, capacity, networks, phases.

The buckets run on an injected clock (``Realism(clock=...)``): refills happen when the test moves it, never
by waiting, so no assertion depends on how fast this machine is.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.emulators.ecs import EcsEmulator, Faults
from tests.emulators.ecs.realistic import CAPACITY_REASON
from tests.emulators.kit import RateLimit, Realism
from tests.emulators_tests.ecs_helpers import NO_RETRY, client, error, register, run
from tests.emulators_tests.fake_clock import FakeClock

DEFAULT_NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-0defaulta"], "securityGroups": ["sg-0default"]}}


def realistic_emulator(clock: FakeClock, **realism) -> EcsEmulator:
    return EcsEmulator(realistic=Realism(clock=clock, **realism))


def test_register_task_definition_bucket_throttles_then_refills(clock):
    with realistic_emulator(clock) as emu:
        ecs = client(emu, **NO_RETRY)
        for _ in range(20):  # the burst
            register(ecs)
        with pytest.raises(ClientError) as excinfo:
            register(ecs)
        assert error(excinfo) == ("ThrottlingException", "Rate exceeded", 400)
        clock.now += 1.0  # sustained: one token per second
        register(ecs)
        with pytest.raises(ClientError):
            register(ecs)
        ecs.list_clusters()  # another API's bucket is untouched
        assert emu.errors == []


def test_fargate_launch_rate_refuses_the_whole_run_task(clock):
    with realistic_emulator(clock) as emu:
        ecs = client(emu, **NO_RETRY)
        register(ecs)
        for _ in range(10):  # 100 tasks: the launch bucket's burst
            assert len(run(ecs, count=10, networkConfiguration=DEFAULT_NETWORK)["tasks"]) == 10
        with pytest.raises(ClientError) as excinfo:
            run(ecs, networkConfiguration=DEFAULT_NETWORK)
        assert error(excinfo) == ("ThrottlingException", "Rate exceeded", 400)
        assert len(emu.tasks) == 100  # nothing launched by the refused call
        spot = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
        assert run(ecs, launchType=None, capacityProviderStrategy=spot, count=10,
                   networkConfiguration=DEFAULT_NETWORK)["tasks"]  # Spot launches have their own bucket
        clock.now += 0.25  # 20 tasks per second: 5 tokens
        with pytest.raises(ClientError):
            run(ecs, count=6, networkConfiguration=DEFAULT_NETWORK)
        assert len(run(ecs, count=5, networkConfiguration=DEFAULT_NETWORK)["tasks"]) == 5
        assert len(emu.tasks) == 115 and emu.errors == []


def test_run_task_api_bucket_is_twenty_per_second(clock):
    with realistic_emulator(clock, launch_limits=False) as emu:
        ecs = client(emu, **NO_RETRY)
        register(ecs)
        for _ in range(20):
            run(ecs, networkConfiguration=DEFAULT_NETWORK)
        with pytest.raises(ClientError) as excinfo:
            run(ecs, networkConfiguration=DEFAULT_NETWORK)
        assert error(excinfo)[0] == "ThrottlingException"
        assert emu.calls["RunTask"] == 21


def test_capacity_errors_in_fargate_words(clock):
    with realistic_emulator(clock, capacity_failure_rate=1.0) as emu:
        ecs = client(emu, **NO_RETRY)
        register(ecs)
        answer = run(ecs, count=2, networkConfiguration=DEFAULT_NETWORK)
        assert answer["tasks"] == []
        assert [f["reason"] for f in answer["failures"]] == [CAPACITY_REASON] * 2


def test_subnets_and_security_groups_must_exist(clock):
    with realistic_emulator(clock) as emu:
        ecs = client(emu, **NO_RETRY)
        register(ecs)
        unknown_subnet = {"awsvpcConfiguration": {"subnets": ["subnet-0abc"], "securityGroups": ["sg-0default"]}}
        with pytest.raises(ClientError) as excinfo:
            run(ecs, networkConfiguration=unknown_subnet)
        assert error(excinfo) == ("InvalidParameterException",
                                  "Error retrieving subnet information for [subnet-0abc]: The subnet ID "
                                  "'subnet-0abc' does not exist (ErrorCode: InvalidSubnetID.NotFound)", 400)
        unknown_group = {"awsvpcConfiguration": {"subnets": ["subnet-0defaulta"], "securityGroups": ["sg-0abc"]}}
        with pytest.raises(ClientError) as excinfo:
            run(ecs, networkConfiguration=unknown_group)
        assert "The security group 'sg-0abc' does not exist" in error(excinfo)[1]
        assert emu.tasks == {}

        vpc = emu.ec2.add_vpc("10.1.0.0/16")
        subnet = emu.ec2.add_subnet(vpc.id, "10.1.0.0/24", az="us-east-1b")
        group = emu.ec2.add_security_group(vpc.id, "flows", "flow runs")
        mine = {"awsvpcConfiguration": {"subnets": [subnet.id], "securityGroups": [group.id]}}
        assert len(run(ecs, networkConfiguration=mine)["tasks"]) == 1
        assert len(run(ecs, networkConfiguration=DEFAULT_NETWORK)["tasks"]) == 1


def test_phase_times_are_fargate_times_scaled(clock):
    factor = 0.005
    with realistic_emulator(clock, time_factor=factor) as emu:
        ecs = client(emu, **NO_RETRY)
        register(ecs)
        arn = run(ecs, networkConfiguration=DEFAULT_NETWORK)["tasks"][0]["taskArn"]
        task = emu.wait_for_task(arn, "STOPPED", timeout=10)
        assert task.pull_started_at - task.created_at == pytest.approx(20 * factor)
        assert task.started_at - task.pull_started_at == pytest.approx(25 * factor)
        assert task.stopped_at - task.execution_stopped_at == pytest.approx(30 * factor)
        assert emu.backend.lifecycle.timings.stop_timeout_s == pytest.approx(30 * factor)


def test_explicit_phase_times_and_test_knobs_win(clock):
    with EcsEmulator(realistic=Realism(clock=clock), provisioning_s=0.01) as emu:
        assert emu.backend.lifecycle.timings.provisioning_s == 0.01
        slow_launches = {"FARGATE": RateLimit(per_s=1, burst=1)}
        emu.faults = Faults(capacity_failures=1, launch_limits=slow_launches)  # a new Faults object...
        assert emu.faults.rate_limits["RunTask"].per_s == 20 and emu.faults.validate_network  # ...stays realistic
        assert emu.faults.launch_limits == slow_launches  # the test's own knob wins over the profile's


def test_default_mode_is_unchanged_and_the_environment_switches_it(monkeypatch):
    monkeypatch.delenv("EMULATOR_REALISTIC", raising=False)
    plain = EcsEmulator()
    assert plain.realism is None and plain.faults.rate_limits == {} and not plain.faults.validate_network
    assert plain.backend.lifecycle.timings.provisioning_s == 0.05
    monkeypatch.setenv("EMULATOR_REALISTIC", "0.02")
    from_env = EcsEmulator()
    assert from_env.realism == Realism(time_factor=0.02)
    assert from_env.backend.lifecycle.timings.deprovisioning_s == pytest.approx(0.6)
    assert EcsEmulator(realistic=False).realism is None
