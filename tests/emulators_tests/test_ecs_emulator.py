"""The ECS emulator, driven only through real boto3/aiobotocore clients (or raw
SigV4-signed HTTP where a test needs to send what botocore never would)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from datetime import datetime

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from tests.emulators.ecs import EcsEmulator, Faults, fargate, find_issues, handlers

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"]}}
# botocore's ``max_attempts`` counts retries (total attempts = max_attempts + 1);
# ``total_max_attempts`` is the setting that really means "one attempt".
NO_RETRY = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
ECS_TARGET = "AmazonEC2ContainerServiceV20141113"
LOG_OPTIONS = {"awslogs-group": "/ecs/flows", "awslogs-stream-prefix": "prefect", "awslogs-region": REGION}


# -- helpers ------------------------------------------------------------------------------

def client(emu: EcsEmulator, service: str = "ecs", **config):
    return boto3.client(service, endpoint_url=emu.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(**config) if config else None)


def register(ecs, family="flow", command=None, env=None, awslogs=False, **extra) -> dict:
    container = {"name": "flow", "image": "prefecthq/prefect:3-latest", "essential": True}
    if command is not None:
        container["command"] = command
    if env:
        container["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    if awslogs:
        container["logConfiguration"] = {"logDriver": "awslogs", "options": LOG_OPTIONS}
    params = dict(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                  memory="512", executionRoleArn=ROLE, containerDefinitions=[container])
    return ecs.register_task_definition(**(params | extra))["taskDefinition"]


def run(ecs, td="flow", **kw) -> dict:
    params = dict(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK) | kw
    return ecs.run_task(**{k: v for k, v in params.items() if v is not None})


def env_override(**env) -> dict:
    return {"containerOverrides": [{"name": "flow", "environment": [
        {"name": k, "value": str(v)} for k, v in env.items()]}]}


def wait_status(ecs, arn, status="STOPPED", timeout=10.0, **kw) -> tuple[dict, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(tasks=[arn], **kw)["tasks"][0]
        if not seen or seen[-1] != task["lastStatus"]:
            seen.append(task["lastStatus"])
        if task["lastStatus"] == status:
            return task, seen
        time.sleep(0.005)
    raise AssertionError(f"{arn} never reached {status}; saw {seen}")


def error(excinfo) -> tuple[str, str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def raw_call(emu, target: str, body: bytes, sign_region=REGION, service="ecs", sign=True) -> tuple[int, dict]:
    request = AWSRequest(method="POST", url=emu.endpoint_url + "/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    if sign:
        SigV4Auth(Credentials("test", "test"), service, sign_region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def emu():
    with EcsEmulator() as emulator:
        yield emulator
    assert emulator.errors == []  # no handler crash, every response matched its output shape


@pytest.fixture
def ecs(emu):
    return client(emu)


@pytest.fixture
def lax(emu):
    """A client that skips botocore's own parameter validation, to reach the server's."""
    return client(emu, parameter_validation=False)


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


# -- task definitions ---------------------------------------------------------------------

@pytest.mark.parametrize("cpu,memory,ok", [
    ("256", "512", True), ("256", "4096", False), ("512", "3072", True), ("1 vCPU", "2 GB", True),
    ("1024", "9216", False), ("4096", "30720", True), ("8192", "20480", True), ("8192", "18432", False),
    ("16384", "122880", True), ("16384", "40960", True), ("16384", "36864", False), ("0.25 vcpu", "0.5GB", True),
])
def test_fargate_sizes(cpu, memory, ok):
    assert fargate.is_fargate_size(fargate.parse_cpu(cpu), fargate.parse_memory(memory)) is ok


def fargate_td(**change) -> dict:
    td = dict(family="f", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
              executionRoleArn=ROLE, containerDefinitions=[{"name": "c", "image": "i", "logConfiguration": {
                  "logDriver": "awslogs", "options": LOG_OPTIONS}}])
    return {k: v for k, v in (td | change).items() if v is not None}


@pytest.mark.parametrize("change,message", [
    ({"memory": "4096"}, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
    ({"networkMode": "bridge"}, "Fargate only supports network mode 'awsvpc'."),
    ({"cpu": None}, "Fargate requires that 'cpu' be defined at the task level."),
    ({"executionRoleArn": None},
     "Fargate requires task definition to have execution role ARN to support log driver awslogs."),
    ({"containerDefinitions": []}, "Container list cannot be empty."),
    ({"containerDefinitions": [{"name": "c"}]}, "Container.image should not be null or empty."),
])
def test_register_enforces_fargate_rules(ecs, change, message):
    with pytest.raises(ClientError) as excinfo:
        ecs.register_task_definition(**fargate_td(**change))
    code, text, status = error(excinfo)
    assert (code, status) == ("ClientException", 400) and text.startswith(message)


def test_register_normalises_cpu_and_memory(ecs):
    td = ecs.register_task_definition(**fargate_td(cpu="1 vCPU", memory="2 GB"))["taskDefinition"]
    assert (td["cpu"], td["memory"], td["compatibilities"]) == ("1024", "2048", ["EC2", "FARGATE"])


def test_register_describe_list_revisions_and_tags(ecs):
    first = register(ecs, "etl", tags=[{"key": "team", "value": "data"}])
    assert first["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:123456789012:task-definition/etl:1"
    assert first["status"] == "ACTIVE" and isinstance(first["registeredAt"], datetime)
    assert first["containerDefinitions"][0]["essential"] is True
    register(ecs, "etl")
    register(ecs, "etl-other")
    assert ecs.describe_task_definition(taskDefinition="etl")["taskDefinition"]["revision"] == 2
    described = ecs.describe_task_definition(taskDefinition="etl:1", include=["TAGS"])
    assert described["tags"] == [{"key": "team", "value": "data"}]
    ecs.deregister_task_definition(taskDefinition="etl:2")
    assert ecs.describe_task_definition(taskDefinition="etl")["taskDefinition"]["revision"] == 1
    assert ecs.describe_task_definition(taskDefinition="etl:2")["taskDefinition"]["status"] == "INACTIVE"
    # familyPrefix is the full family name for ListTaskDefinitions
    assert ecs.list_task_definitions(familyPrefix="etl")["taskDefinitionArns"] == [first["taskDefinitionArn"]]
    assert len(ecs.list_task_definitions(familyPrefix="etl", status="INACTIVE")["taskDefinitionArns"]) == 1
    page = ecs.list_task_definitions(sort="DESC", maxResults=1)
    assert page["taskDefinitionArns"][0].endswith("etl-other:1") and "nextToken" in page
    rest = ecs.list_task_definitions(sort="DESC", maxResults=1, nextToken=page["nextToken"])
    assert rest["taskDefinitionArns"][0].endswith("etl:1") and "nextToken" not in rest
    assert ecs.list_task_definition_families(familyPrefix="etl")["families"] == ["etl", "etl-other"]
    with pytest.raises(ClientError) as excinfo:
        ecs.describe_task_definition(taskDefinition="nope")
    assert error(excinfo)[:2] == ("ClientException", "Unable to describe task definition.")
    arn = first["taskDefinitionArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "env", "value": "ci"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "env", "value": "ci"}]


def test_clusters(ecs):
    default = ecs.describe_clusters()["clusters"][0]
    assert default["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/default"
    created = ecs.create_cluster(clusterName="flows", tags=[{"key": "a", "value": "b"}])["cluster"]
    found = ecs.describe_clusters(clusters=["flows", "ghost"], include=["TAGS"])
    assert found["clusters"][0]["tags"] == [{"key": "a", "value": "b"}]
    assert found["failures"] == [{"arn": "arn:aws:ecs:us-east-1:123456789012:cluster/ghost", "reason": "MISSING"}]
    register(ecs)
    with pytest.raises(ClientError) as excinfo:
        run(ecs, cluster="ghost")
    assert error(excinfo)[0] == "ClusterNotFoundException"
    with pytest.raises(ClientError) as excinfo:  # a new cluster has no Fargate capacity providers
        run(ecs, cluster=created["clusterArn"], launchType=None,
            capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert "not associated with the cluster" in error(excinfo)[1]
    assert run(ecs, cluster=created["clusterArn"])["tasks"][0]["clusterArn"] == created["clusterArn"]


# -- RunTask and the task lifecycle -----------------------------------------------------------

def test_run_task_lifecycle_and_timestamps(ecs, emu):
    register(ecs, tags=[{"key": "team", "value": "data"}])
    started = run(ecs, startedBy="prefect", propagateTags="TASK_DEFINITION",
                  tags=[{"key": "flow-run", "value": "abc"}])
    assert started["failures"] == []
    task = started["tasks"][0]
    assert task["taskArn"].startswith("arn:aws:ecs:us-east-1:123456789012:task/default/")
    assert len(task["taskArn"].rsplit("/", 1)[1]) == 32
    assert (task["lastStatus"], task["desiredStatus"], task["launchType"]) == ("PROVISIONING", "RUNNING", "FARGATE")
    assert (task["cpu"], task["memory"], task["group"], task["startedBy"]) == ("256", "512", "family:flow", "prefect")
    assert task["attachments"][0]["details"][0] == {"name": "subnetId", "value": "subnet-0abc"}
    stopped, seen = wait_status(ecs, task["taskArn"], include=["TAGS"])
    lifecycle = ["PROVISIONING", "PENDING", "RUNNING", "DEPROVISIONING", "STOPPED"]
    assert [status for status, _ in emu.tasks[task["taskArn"]].history] == lifecycle
    assert seen == [status for status in lifecycle if status in seen]  # polled in order
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert stopped["containers"][0]["exitCode"] == 0 and stopped["containers"][0]["lastStatus"] == "STOPPED"
    assert {"key": "team", "value": "data"} in stopped["tags"]
    assert {"key": "flow-run", "value": "abc"} in stopped["tags"]
    order = ["createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "executionStoppedAt", "stoppedAt"]
    stamps = [stopped[k] for k in order]
    assert all(isinstance(s, datetime) and s.tzinfo is not None for s in stamps)
    assert stamps == sorted(stamps) and stopped["stoppingAt"] <= stopped["stoppedAt"]
    assert "tags" not in ecs.describe_tasks(tasks=[task["taskArn"]])["tasks"][0]


def test_env_override_sets_exit_code_and_run_time(ecs, emu):
    register(ecs, env={"EMULATOR_EXIT_CODE": "9"})
    arn = run(ecs)["tasks"][0]["taskArn"]
    assert wait_status(ecs, arn)[0]["containers"][0]["exitCode"] == 9
    arn = run(ecs, overrides=env_override(EMULATOR_EXIT_CODE=4, EMULATOR_RUN_SECONDS=0))["tasks"][0]["taskArn"]
    assert wait_status(ecs, arn)[0]["containers"][0]["exitCode"] == 4
    assert emu.tasks[arn].environment["EMULATOR_EXIT_CODE"] == "4"


@pytest.mark.parametrize("kwargs,code,message", [
    ({"td": "ghost"}, "ClientException", "TaskDefinition not found."),
    ({"networkConfiguration": None}, "InvalidParameterException",
     "Network Configuration must be provided when networkMode 'awsvpc' is specified."),
    ({"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT"}]}, "InvalidParameterException",
     "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."),
    ({"launchType": "EC2"}, "InvalidParameterException", "No Container Instances were found in your cluster."),
    ({"overrides": {"containerOverrides": [{"name": "web"}]}}, "InvalidParameterException",
     "Override for container named web is not a container in the TaskDefinition."),
    ({"overrides": env_override(BIG="x" * 9000)}, "InvalidParameterException",
     "Container Overrides length must be at most 8192"),
    ({"overrides": {"cpu": "256", "memory": "8192"}}, "ClientException",
     "No Fargate configuration exists for given values: 256 CPU, 8192 memory"),
    ({"count": 11}, "InvalidParameterException", "count must be between 1 and 10."),
    ({"clientToken": "x" * 65}, "InvalidParameterException", "The client token must be up to 64 ASCII characters"),
])
def test_run_task_rejections(ecs, kwargs, code, message):
    register(ecs)
    with pytest.raises(ClientError) as excinfo:
        run(ecs, **kwargs)
    assert error(excinfo)[0] == code and error(excinfo)[1].startswith(message)


def test_inactive_task_definition_cannot_run(ecs):
    register(ecs)
    ecs.deregister_task_definition(taskDefinition="flow:1")
    with pytest.raises(ClientError) as excinfo:
        run(ecs, td="flow:1")
    assert error(excinfo)[:2] == ("InvalidParameterException", "TaskDefinition is inactive")


def test_capacity_provider_strategy(ecs):
    register(ecs)
    task = run(ecs, launchType=None, capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    assert task["tasks"][0]["capacityProviderName"] == "FARGATE_SPOT"
    assert task["tasks"][0]["launchType"] == "FARGATE"


def test_client_token_idempotency(ecs, emu):
    register(ecs)
    first = run(ecs, clientToken="flow-run-123")["tasks"][0]
    again = run(ecs, clientToken="flow-run-123")["tasks"][0]
    assert again["taskArn"] == first["taskArn"] and len(emu.tasks) == 1
    with pytest.raises(ClientError) as excinfo:
        run(ecs, clientToken="flow-run-123", startedBy="someone-else")
    assert error(excinfo)[0] == "ConflictException"
    assert excinfo.value.response["resourceIds"] == [first["taskArn"]]
    run(ecs)  # botocore generates a fresh token per call when none is given
    run(ecs)
    assert len(emu.tasks) == 3


def test_describe_tasks_batching_and_missing(ecs, emu):
    register(ecs, env={"EMULATOR_RUN_SECONDS": "30"})
    arns = [t["taskArn"] for _ in range(10) for t in run(ecs, count=10)["tasks"]]
    assert len(set(arns)) == 100
    described = ecs.describe_tasks(tasks=arns)
    assert len(described["tasks"]) == 100 and described["failures"] == []
    with pytest.raises(ClientError) as excinfo:
        ecs.describe_tasks(tasks=arns + ["one-too-many"])
    assert error(excinfo)[0] == "InvalidParameterException"
    ghost = "arn:aws:ecs:us-east-1:123456789012:task/default/" + "0" * 32
    mixed = ecs.describe_tasks(tasks=[arns[0].rsplit("/", 1)[1], ghost])
    assert mixed["tasks"][0]["taskArn"] == arns[0]
    assert mixed["failures"] == [{"arn": ghost, "reason": "MISSING"}]
    ecs.create_cluster(clusterName="other")
    assert ecs.describe_tasks(cluster="other", tasks=[arns[0]])["failures"][0]["reason"] == "MISSING"


def test_stop_task(ecs):
    register(ecs, env={"EMULATOR_RUN_SECONDS": "30"})
    arn = run(ecs)["tasks"][0]["taskArn"]
    wait_status(ecs, arn, "RUNNING")
    stopping = ecs.stop_task(task=arn, reason="cancelled by Prefect")["task"]
    assert (stopping["desiredStatus"], stopping["stopCode"]) == ("STOPPED", "UserInitiated")
    stopped, _ = wait_status(ecs, arn)
    assert stopped["stoppedReason"] == "cancelled by Prefect" and stopped["containers"][0]["exitCode"] == 143
    again = ecs.stop_task(task=arn, reason="second time")["task"]
    assert again["stoppedReason"] == "cancelled by Prefect" and again["version"] == stopped["version"]
    with pytest.raises(ClientError) as excinfo:
        ecs.stop_task(task="0" * 32)
    assert error(excinfo)[:2] == ("InvalidParameterException", "The referenced task was not found.")


def test_stop_before_running_has_no_exit_code(ecs):
    register(ecs)
    arn = run(ecs)["tasks"][0]["taskArn"]
    ecs.stop_task(task=arn)
    stopped, _ = wait_status(ecs, arn)
    assert "exitCode" not in stopped["containers"][0] and "startedAt" not in stopped


def test_list_tasks_filters(ecs):
    register(ecs, env={"EMULATOR_RUN_SECONDS": "30"})
    register(ecs, "other", env={"EMULATOR_RUN_SECONDS": "30"})
    mine = run(ecs, startedBy="prefect", count=3)["tasks"]
    theirs = run(ecs, td="other")["tasks"][0]["taskArn"]
    assert set(ecs.list_tasks(startedBy="prefect")["taskArns"]) == {t["taskArn"] for t in mine}
    assert ecs.list_tasks(family="other")["taskArns"] == [theirs]
    ecs.stop_task(task=theirs)
    assert ecs.list_tasks(desiredStatus="STOPPED")["taskArns"] == [theirs]
    page = ecs.list_tasks(maxResults=2)
    assert len(page["taskArns"]) == 2
    assert len(ecs.list_tasks(nextToken=page["nextToken"])["taskArns"]) == 1


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


# -- execute mode and awslogs -----------------------------------------------------------------

@pytest.fixture
def live():
    """An emulator that really runs container commands, with a short docker-stop grace."""
    with EcsEmulator(execute=True, stop_timeout_s=0.3) as emulator:
        yield emulator
    assert emulator.errors == []


def python_task(ecs, code: str, **kw) -> dict:
    return register(ecs, command=["python", "-c", code], awslogs=True, **kw)


def stream_of(arn: str) -> str:
    return f"prefect/flow/{arn.rsplit('/', 1)[1]}"


def test_execute_exit_codes_and_logs(live):
    ecs, logs = client(live), client(live, "logs")
    python_task(ecs, "import os, sys; print('hello', os.environ['GREETING']); print('oops', file=sys.stderr); "
                     "sys.exit(int(os.environ.get('CODE', '0')))", env={"GREETING": "world"})
    ok = run(ecs)["tasks"][0]["taskArn"]
    failed = run(ecs, overrides=env_override(CODE=3))["tasks"][0]["taskArn"]
    done, _ = wait_status(ecs, ok)
    assert [status for status, _ in live.tasks[ok].history][-3:] == ["RUNNING", "DEPROVISIONING", "STOPPED"]
    assert done["containers"][0]["exitCode"] == 0 and done["stopCode"] == "EssentialContainerExited"
    assert wait_status(ecs, failed)[0]["containers"][0]["exitCode"] == 3
    events = logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(ok), startFromHead=True)
    assert sorted(e["message"] for e in events["events"]) == ["hello world", "oops"]
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in events["events"])
    tail = logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(ok),
                               nextToken=events["nextForwardToken"])
    assert tail["events"] == [] and tail["nextForwardToken"] == events["nextForwardToken"]


def test_execute_command_override_and_environment(live):
    ecs = client(live)
    register(ecs, command=["python", "-c", "print('from the task definition')"])
    code = "import os; print(os.environ.get('AWS_REGION'), os.environ.get('SECRET_FROM_HOST', 'clean'))"
    overrides = {"containerOverrides": [{"name": "flow", "command": ["python", "-c", code]}]}
    arn = run(ecs, overrides=overrides)["tasks"][0]["taskArn"]
    wait_status(ecs, arn)
    assert live.tasks[arn].output == ["us-east-1 clean"]


def test_stop_task_terminates_the_process_group(live):
    ecs = client(live)
    register(ecs, command=["sh", "-c", "sleep 30"])
    arn = run(ecs)["tasks"][0]["taskArn"]
    wait_status(ecs, arn, "RUNNING")
    assert ecs.stop_task(task=arn)["task"]["lastStatus"] == "STOPPING"
    stopped, _ = wait_status(ecs, arn)
    # 143 = killed by SIGTERM; a SIGKILL after the stop timeout would give 137
    assert stopped["containers"][0]["exitCode"] == 143 and stopped["stopCode"] == "UserInitiated"


def test_processes_left_behind_die_with_the_container(live):
    ecs = client(live)
    register(ecs, command=["sh", "-c", "sleep 30 & echo started"])
    arn = run(ecs)["tasks"][0]["taskArn"]
    stopped, _ = wait_status(ecs, arn)
    assert stopped["containers"][0]["exitCode"] == 0 and live.tasks[arn].output == ["started"]
    assert living_in_group(live.tasks[arn].process.pid) == []  # the orphaned `sleep 30` died too


def living_in_group(pgid: int) -> list[int]:
    """Pids of the group's processes that are not dead (zombies awaiting init count as dead)."""
    alive = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in "ZX" and int(fields[2]) == pgid:
            alive.append(int(entry))
    return alive


def test_sigkill_after_the_stop_timeout(live):
    ecs = client(live)
    python_task(ecs, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('ready', flush=True); time.sleep(30)")
    arn = run(ecs)["tasks"][0]["taskArn"]
    wait_status(ecs, arn, "RUNNING")
    deadline = time.monotonic() + 5
    while "ready" not in live.tasks[arn].output and time.monotonic() < deadline:
        time.sleep(0.01)
    ecs.stop_task(task=arn)
    assert wait_status(ecs, arn)[0]["containers"][0]["exitCode"] == 137


@pytest.mark.parametrize("command,reason", [
    ([], "CannotStartContainerError: Error response from daemon: No command specified"),
    (["no-such-binary-xyz"], "CannotStartContainerError: ResourceInitializationError"),
])
def test_container_that_cannot_start(live, command, reason):
    ecs = client(live)
    register(ecs, command=command)
    stopped, seen = wait_status(ecs, run(ecs)["tasks"][0]["taskArn"])
    assert "RUNNING" not in seen and stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith(reason)


def test_missing_log_group_fails_the_task_when_not_auto_created():
    with EcsEmulator(auto_create_log_groups=False) as emu:
        ecs, logs = client(emu), client(emu, "logs")
        register(ecs, awslogs=True)
        stopped, _ = wait_status(ecs, run(ecs)["tasks"][0]["taskArn"])
        assert stopped["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args")
        logs.create_log_group(logGroupName="/ecs/flows")
        arn = run(ecs)["tasks"][0]["taskArn"]
        assert wait_status(ecs, arn)[0]["stopCode"] == "EssentialContainerExited"
        assert logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(arn))["events"] == []
        with pytest.raises(ClientError) as excinfo:
            logs.get_log_events(logGroupName="/ecs/flows", logStreamName="nope")
        assert error(excinfo)[:2] == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_get_log_events_paging(emu):
    logs = client(emu, "logs")
    emu.create_log_group("/g")
    for i in range(5):
        emu.backend.logs.put("/g", "s", f"line {i}", 1_000 + i)
    head = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True, limit=2)
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1"]
    following = logs.get_log_events(logGroupName="/g", logStreamName="s", nextToken=head["nextForwardToken"], limit=2)
    assert [e["message"] for e in following["events"]] == ["line 2", "line 3"]
    latest = logs.get_log_events(logGroupName="/g", logStreamName="s", limit=2)
    assert [e["message"] for e in latest["events"]] == ["line 3", "line 4"]
    assert isinstance(latest["events"][0]["timestamp"], int)
    with pytest.raises(ClientError) as excinfo:
        logs.get_log_events(logGroupName="/missing", logStreamName="s")
    assert error(excinfo)[:2] == ("ResourceNotFoundException", "The specified log group does not exist.")


# -- aiobotocore --------------------------------------------------------------------------------

def test_aiobotocore_client(live):
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def scenario() -> tuple[dict, list[str], str]:
        options = dict(endpoint_url=live.endpoint_url, region_name=REGION, config=AioConfig(**NO_RETRY),
                       aws_access_key_id="test", aws_secret_access_key="test")
        session = get_session()
        async with session.create_client("ecs", **options) as ecs, session.create_client("logs", **options) as logs:
            await ecs.register_task_definition(**fargate_td(family="async", containerDefinitions=[{
                "name": "flow", "image": "i", "command": ["python", "-c", "print('async hello')"],
                "logConfiguration": {"logDriver": "awslogs", "options": LOG_OPTIONS}}]))
            started = await ecs.run_task(taskDefinition="async", launchType="FARGATE", networkConfiguration=NETWORK)
            arn = started["tasks"][0]["taskArn"]
            while (task := (await ecs.describe_tasks(tasks=[arn]))["tasks"][0])["lastStatus"] != "STOPPED":
                await asyncio.sleep(0.01)
            events = await logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(arn))
            live.faults.throttle_rate = 1.0
            try:
                await ecs.list_clusters()
                code = "none"
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
            return task, [e["message"] for e in events["events"]], code

    task, messages, code = asyncio.run(scenario())
    assert task["containers"][0]["exitCode"] == 0 and isinstance(task["stoppedAt"], datetime)
    assert messages == ["async hello"]
    assert code == "ThrottlingException"
