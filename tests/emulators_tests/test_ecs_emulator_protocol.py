"""Protocol and model validation: SigV4, targets, botocore shapes in and out."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
)

from tests.emulators.ecs import EcsEmulator, find_issues, handlers
from tests.emulators_tests.ecs_helpers import (
    ECS_TARGET,
    NO_RETRY,
    client,
    error,
    raw_call,
)

# -- protocol and model validation ----------------------------------------------------------

def test_requires_sigv4_scoped_to_region_and_service(emu):
    body = b"{}"
    assert raw_call(emu, f"{ECS_TARGET}.ListClusters", body, sign=False) == (
        400, {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})
    status, answer = raw_call(emu, f"{ECS_TARGET}.ListClusters", body, sign_region="eu-west-1")
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    status, answer = raw_call(emu, f"{ECS_TARGET}.ListClusters", body, service="logs")
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert raw_call(emu, f"{ECS_TARGET}.ListClusters", body)[0] == 200


def test_stopped_emulator_refuses_connections():
    emu = EcsEmulator().start()
    ecs = client(emu, **NO_RETRY)
    ecs.list_clusters()  # leaves a kept-alive connection in botocore's pool
    emu.stop()
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        ecs.list_clusters()


def test_unknown_operation_and_bad_json(emu):
    status, answer = raw_call(emu, f"{ECS_TARGET}.LaunchRocket", b"{}")
    assert (status, answer["__type"]) == (400, "UnknownOperationException")
    status, answer = raw_call(emu, f"{ECS_TARGET}.ListClusters", b"{not json")
    assert (status, answer["__type"]) == (400, "SerializationException")
    assert emu.calls["LaunchRocket"] == 1


def test_missing_required_member(lax):
    with pytest.raises(ClientError) as excinfo:
        lax.run_task(launchType="FARGATE")
    assert error(excinfo) == ("InvalidParameterException", "1 validation error detected: Value null at "
                              "'taskDefinition' failed to satisfy constraint: Member must not be null", 400)


def test_wrong_enum_and_length(lax):
    with pytest.raises(ClientError) as excinfo:
        lax.run_task(taskDefinition="flow", launchType="SPACESHIP", tags=[{"key": "k" * 129, "value": "v"}])
    code, message, _ = error(excinfo)
    assert code == "InvalidParameterException" and message.startswith("2 validation errors detected")
    assert "at 'launchType' failed to satisfy constraint: Member must satisfy enum value set" in message
    assert ("at 'tags.1.member.key' failed to satisfy constraint: "
            "Member must have length less than or equal to 128") in message


def test_unknown_member_and_wrong_type_name_the_path(emu):
    body = json.dumps({"taskDefinition": "flow", "overrides": {"containerOverride": []}}).encode()
    status, answer = raw_call(emu, f"{ECS_TARGET}.RunTask", body)
    assert (status, answer["__type"]) == (400, "InvalidParameterException")
    assert "overrides.containerOverride" in answer["message"]
    status, answer = raw_call(emu, f"{ECS_TARGET}.RunTask", json.dumps({"taskDefinition": 7}).encode())
    assert (status, answer["__type"]) == (400, "SerializationException")
    assert "'taskDefinition'" in answer["message"]


def test_logs_pattern_constraint(emu):
    logs = client(emu, "logs", parameter_validation=False)
    with pytest.raises(ClientError) as excinfo:
        logs.get_log_events(logGroupName="bad name", logStreamName="s")
    code, message, _ = error(excinfo)
    assert code == "InvalidParameterException" and "regular expression pattern" in message


def test_output_shape_checker_catches_bad_responses(emu, monkeypatch):
    shape = client(emu).meta.service_model.operation_model("DescribeTasks").output_shape
    good = {"tasks": [{"taskArn": "a", "createdAt": 1.5, "stopCode": "UserInitiated", "version": 2}]}
    assert find_issues(shape, good) == []
    bad = {"tasks": [{"taskArn": 1, "createdAt": "yesterday", "stopCode": "Bored", "colour": "red"}]}
    assert {i.path for i in find_issues(shape, bad)} == {
        "tasks.1.member.taskArn", "tasks.1.member.createdAt", "tasks.1.member.stopCode", "tasks.1.member.colour"}
    monkeypatch.setitem(handlers.ECS_HANDLERS, "ListClusters", lambda b, p: {"clusterArns": "oops"})
    with pytest.raises(ClientError) as excinfo:
        client(emu, **NO_RETRY).list_clusters()
    assert error(excinfo)[0] == "EmulatorInvalidResponse"
    assert emu.errors and "ListClusters" in emu.errors[0]
    emu.errors.clear()
