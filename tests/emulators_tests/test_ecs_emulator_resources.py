"""Task definitions, clusters, RunTask and the task lifecycle."""

from __future__ import annotations

from datetime import datetime

import pytest
from botocore.exceptions import (
    ClientError,
)

from tests.emulators.ecs import fargate
from tests.emulators_tests.ecs_helpers import (
    env_override,
    error,
    fargate_td,
    register,
    run,
    wait_status,
)

# -- task definitions ---------------------------------------------------------------------

@pytest.mark.parametrize("cpu,memory,ok", [
    ("256", "512", True), ("256", "4096", False), ("512", "3072", True), ("1 vCPU", "2 GB", True),
    ("1024", "9216", False), ("4096", "30720", True), ("8192", "20480", True), ("8192", "18432", False),
    ("16384", "122880", True), ("16384", "40960", True), ("16384", "36864", False), ("0.25 vcpu", "0.5GB", True),
])
def test_fargate_sizes(cpu, memory, ok):
    assert fargate.is_fargate_size(fargate.parse_cpu(cpu), fargate.parse_memory(memory)) is ok


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
