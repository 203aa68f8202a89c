"""Pure request building: shapes checked against botocore's ECS model, hashes, tags, tokens, env."""

from __future__ import annotations

from uuid import uuid4

import botocore.session
import pytest
from botocore.validate import ParamValidator
from prefect.client.schemas.objects import FlowRun

from providers.base import RunLimits, SubmitRequest
from providers.ecs import naming
from providers.ecs.config import EcsJobConfiguration
from providers.ecs.requests import (
    OVERRIDES_MAX,
    TaskDefinitionInfo,
    build_run_task,
    build_task_definition,
    check_model,
    describe_info,
    log_target_for,
)
from providers.errors import InvalidJobConfiguration

ECS = botocore.session.get_session().get_service_model("ecs")
EXEC_ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
TASKDEF_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/prefect_pool_dep:1"
SUBNETS = {"subnets": ["subnet-0a", "subnet-0b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}


def assert_valid(operation: str, params: dict) -> None:
    report = ParamValidator().validate(params, ECS.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def cfg(**values) -> EcsJobConfiguration:
    values.setdefault("image", "prefecthq/prefect:3-latest")
    values.setdefault("network_configuration", SUBNETS)
    return EcsJobConfiguration(**values)


def submit_request(configuration: EcsJobConfiguration, key: str | None = None) -> SubmitRequest:
    flow_run_id = uuid4()
    return SubmitRequest(
        flow_run_id=flow_run_id, attempt_id=flow_run_id, idempotency_key=key or f"prefect-{flow_run_id.hex}", workspace="acme",
        pool="ecs-pool", configuration=configuration, limits=RunLimits(max_runtime_s=3600),
    )


def run_task(configuration: EcsJobConfiguration, key: str | None = None, cluster: str | None = "prod") -> dict:
    spec = build_task_definition(configuration, "ecs-pool", "us-east-1")
    info = TaskDefinitionInfo(arn=TASKDEF_ARN, container_name=spec.container_name, awsvpc=spec.awsvpc)
    network = configuration.network_configuration if spec.awsvpc else None
    return build_run_task(configuration, submit_request(configuration, key), info, network, cluster).request


CONFIGURATIONS = {
    "defaults": cfg(),
    "logs and roles": cfg(configure_cloudwatch_logs=True, execution_role_arn=EXEC_ROLE,
                          task_role_arn="arn:aws:iam::123456789012:role/task", cloudwatch_logs_prefix="runs",
                          cloudwatch_logs_options={"awslogs-group": "/prefect/flows"}),
    "secrets": cfg(execution_role_arn=EXEC_ROLE, prefect_api_key_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:k"),
    "storage and spot": cfg(ephemeral_storage=100, launch_type="FARGATE_SPOT", cpu=4096, memory=16384),
    "ec2": cfg(launch_type="EC2", network_configuration={}, cpu=512, memory=700),
    "strategy": cfg(capacity_provider_strategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                {"capacityProvider": "FARGATE_SPOT", "weight": 4}]),
    "raw templates": cfg(
        task_definition={"volumes": [{"name": "scratch"}], "runtimePlatform": {"cpuArchitecture": "ARM64"},
                         "containerDefinitions": [{"name": "prefect", "portMappings": [{"containerPort": 8080}]},
                                                  {"name": "sidecar", "image": "busybox", "essential": False}]},
        task_run_request={"platformVersion": "1.4.0", "enableExecuteCommand": True, "propagateTags": "TASK_DEFINITION"},
    ),
}


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_register_task_definition_fits_the_service_model(name: str) -> None:
    spec = build_task_definition(CONFIGURATIONS[name], "ecs-pool", "us-east-1")
    assert_valid("RegisterTaskDefinition", spec.request)
    check_model("RegisterTaskDefinition", spec.request, "task_definition")


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_run_task_fits_the_service_model(name: str) -> None:
    request = run_task(CONFIGURATIONS[name])
    assert_valid("RunTask", request)
    check_model("RunTask", request, "task_run_request")


def test_fargate_task_definition_shape() -> None:
    request = build_task_definition(CONFIGURATIONS["logs and roles"], "ecs-pool", "us-east-1").request
    assert request["family"] == "prefect_ecs-pool_flow"
    assert (request["cpu"], request["memory"]) == ("1024", "2048")
    assert request["requiresCompatibilities"] == ["FARGATE"] and request["networkMode"] == "awsvpc"
    assert request["executionRoleArn"] == EXEC_ROLE and request["taskRoleArn"].endswith("role/task")
    [container] = request["containerDefinitions"]
    assert container["name"] == "prefect" and container["essential"] is True
    assert container["logConfiguration"] == {"logDriver": "awslogs", "options": {
        "awslogs-create-group": "true", "awslogs-group": "/prefect/flows", "awslogs-stream-prefix": "runs",
        "awslogs-region": "us-east-1"}}
    assert "environment" not in container and "command" not in container  # per run: RunTask overrides


def test_spot_storage_and_ec2_shapes() -> None:
    spot = build_task_definition(CONFIGURATIONS["storage and spot"], "p", None).request
    assert spot["ephemeralStorage"] == {"sizeInGiB": 100} and spot["requiresCompatibilities"] == ["FARGATE"]
    ec2 = build_task_definition(CONFIGURATIONS["ec2"], "p", None).request
    assert ec2["requiresCompatibilities"] == ["EC2"] and "networkMode" not in ec2 and "cpu" not in ec2
    assert (ec2["containerDefinitions"][0]["cpu"], ec2["containerDefinitions"][0]["memory"]) == (512, 700)


def test_raw_template_keeps_sidecars_and_merges_our_container() -> None:
    request = build_task_definition(CONFIGURATIONS["raw templates"], "p", None).request
    prefect, sidecar = request["containerDefinitions"]
    assert prefect["image"] == "prefecthq/prefect:3-latest" and prefect["portMappings"] == [{"containerPort": 8080}]
    assert sidecar["name"] == "sidecar" and request["volumes"] == [{"name": "scratch"}]
    assert run_task(CONFIGURATIONS["raw templates"])["platformVersion"] == "1.4.0"


def test_secret_arns_become_container_secrets() -> None:
    [container] = build_task_definition(CONFIGURATIONS["secrets"], "p", None).request["containerDefinitions"]
    assert container["secrets"] == [{"name": "PREFECT_API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}]


def test_prepare_for_flow_run_drops_the_plain_key_when_a_secret_is_given() -> None:
    flow_run = FlowRun(flow_id=uuid4(), name="brave-otter")
    configuration = cfg(execution_role_arn=EXEC_ROLE, prefect_api_key_secret_arn="arn:aws:secretsmanager:x",
                        env={"PREFECT_API_KEY": "pnu_plain", "KEEP": "1"})
    configuration.prepare_for_flow_run(flow_run)
    assert "PREFECT_API_KEY" not in configuration.env and configuration.env["KEEP"] == "1"
    assert configuration.env["PREFECT__FLOW_RUN_ID"] == str(flow_run.id)
    assert configuration.command == "prefect flow-run execute"


# -- content hash --------------------------------------------------------------------------------


def content_hash(configuration: EcsJobConfiguration, pool: str = "ecs-pool", region: str | None = "us-east-1") -> str:
    return build_task_definition(configuration, pool, region).content_hash


def test_hash_is_stable_and_ignores_what_varies_per_run() -> None:
    base = content_hash(cfg())
    assert base == content_hash(cfg()) and len(base) == 64
    per_run = cfg(env={"PREFECT__FLOW_RUN_ID": str(uuid4()), "X": "1"}, command="python -m flow",
                  labels={"prefect.io/flow-run-id": str(uuid4())}, name="some-run",
                  aws_credentials={"aws_access_key_id": "AKIA2"}, cluster="other",
                  network_configuration={"subnets": ["subnet-zz"]}, launch_type="FARGATE_SPOT")
    assert content_hash(per_run) == base


@pytest.mark.parametrize("change", [
    {"image": "prefecthq/prefect:3-python3.12"}, {"cpu": 2048, "memory": 4096}, {"memory": 4096},
    {"ephemeral_storage": 30}, {"execution_role_arn": EXEC_ROLE}, {"task_role_arn": "arn:aws:iam::1:role/t"},
    {"family": "mine"}, {"container_name": "flow"},
    {"configure_cloudwatch_logs": True, "execution_role_arn": EXEC_ROLE},
    {"task_definition": {"volumes": [{"name": "v"}]}},
])
def test_hash_changes_with_content(change: dict) -> None:
    assert content_hash(cfg(**change)) != content_hash(cfg())


def test_hash_depends_on_family_inputs_and_region_of_logs() -> None:
    assert content_hash(cfg(), pool="a") != content_hash(cfg(), pool="b")
    logs = cfg(configure_cloudwatch_logs=True, execution_role_arn=EXEC_ROLE)
    assert content_hash(logs, region="us-east-1") != content_hash(logs, region="eu-west-1")


def test_hash_ignores_key_order_of_raw_templates_and_excludes_tags() -> None:
    one = cfg(task_definition={"volumes": [{"name": "v"}], "pidMode": "task", "tags": [{"key": "a", "value": "1"}]})
    two = cfg(task_definition={"pidMode": "task", "volumes": [{"name": "v"}]})
    assert content_hash(one) == content_hash(two)
    spec = build_task_definition(one, "p", None)
    assert {"key": naming.HASH_TAG, "value": spec.content_hash} in spec.request["tags"]


def test_family_default_and_sanitising() -> None:
    labels = {"prefect.io/deployment-name": "nightly ETL (v2)!", "prefect.io/flow-name": "etl"}
    assert build_task_definition(cfg(labels=labels), "my pool", None).family == "prefect_my-pool_nightly-ETL-v2"
    assert build_task_definition(cfg(labels={"prefect.io/flow-name": "etl"}), "p", None).family == "prefect_p_etl"
    assert build_task_definition(cfg(task_definition={"family": "from-template"}), "p", None).family == "from-template"
    assert build_task_definition(cfg(family="var", task_definition={"family": "tpl"}), "p", None).family == "var"
    long = build_task_definition(cfg(family="x" * 300 + "/é"), "p", None).family
    assert len(long) == 255 and set(long) == {"x"}


# -- run task ------------------------------------------------------------------------------------


def test_run_task_shape() -> None:
    configuration = cfg(env={"PREFECT_API_URL": "http://prefect/api", "GONE": None, "N": 3},
                        command="prefect flow-run execute --flag 'two words'")
    request = run_task(configuration, key="prefect-abc")
    assert request["cluster"] == "prod" and request["taskDefinition"] == TASKDEF_ARN
    assert request["launchType"] == "FARGATE" and "capacityProviderStrategy" not in request
    assert request["clientToken"] == "prefect-abc"
    assert request["networkConfiguration"] == {"awsvpcConfiguration": SUBNETS}
    [override] = request["overrides"]["containerOverrides"]
    assert override["name"] == "prefect"
    assert override["command"] == ["prefect", "flow-run", "execute", "--flag", "two words"]
    assert override["environment"] == [{"name": "N", "value": "3"}, {"name": "PREFECT_API_URL", "value": "http://prefect/api"}]
    assert len(request["startedBy"]) == 36 and request["tags"][0]["value"] == request["startedBy"]


def test_default_command_and_no_cluster() -> None:
    request = run_task(cfg(), cluster=None)
    assert "cluster" not in request
    assert request["overrides"]["containerOverrides"][0]["command"] == ["prefect", "flow-run", "execute"]


def test_fargate_spot_becomes_a_capacity_provider_strategy() -> None:
    request = run_task(cfg(launch_type="FARGATE_SPOT"))
    assert "launchType" not in request
    assert request["capacityProviderStrategy"] == [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    explicit = run_task(CONFIGURATIONS["strategy"])
    assert [s["capacityProvider"] for s in explicit["capacityProviderStrategy"]] == ["FARGATE", "FARGATE_SPOT"]


def test_tags_ours_first_sanitised_and_capped() -> None:
    labels = {"prefect.io/flow-run-name": "brave otter", "weird key*": "v<al>", "aws:reserved": "x",
              **{f"l{i}": str(i) for i in range(60)}}
    request = run_task(cfg(labels=labels))
    tags = request["tags"]
    ours = ["prefect.io/flow-run-id", "prefect.io/attempt-id", "prefect.io/workspace", "prefect.io/pool"]
    assert [t["key"] for t in tags[:4]] == ours
    assert {"key": "prefect.io/workspace", "value": "acme"} in tags and {"key": "prefect.io/pool", "value": "ecs-pool"} in tags
    assert {"key": "weird key_", "value": "v_al_"} in tags and not any(t["key"].startswith("aws:") for t in tags)
    assert len(tags) == 50


def test_long_tags_are_truncated() -> None:
    [_, _, _, _, tag] = run_task(cfg(labels={"k" * 200: "v" * 300}))["tags"]
    assert (len(tag["key"]), len(tag["value"])) == (128, 256)


@pytest.mark.parametrize("key", ["x" * 65, "has space", "ünïcode", ""])
def test_client_token_must_be_64_printable_ascii(key: str) -> None:
    configuration = cfg()
    spec = build_task_definition(configuration, "p", None)
    info = TaskDefinitionInfo(arn=TASKDEF_ARN, container_name="prefect", awsvpc=True)
    request = submit_request(configuration).model_copy(update={"idempotency_key": key})
    with pytest.raises(InvalidJobConfiguration):
        build_run_task(configuration, request, info, configuration.network_configuration, None)
    assert spec.request  # the task definition does not depend on the key


def test_task_definition_arn_runs_override_size_and_roles() -> None:
    configuration = cfg(task_definition_arn="mine:3", cpu=2048, memory=4096, task_role_arn="arn:aws:iam::1:role/t")
    info = TaskDefinitionInfo(arn="mine:3", container_name="app", awsvpc=True)
    network = configuration.network_configuration
    request = build_run_task(configuration, submit_request(configuration), info, network, None).request
    assert request["taskDefinition"] == "mine:3"
    overrides = request["overrides"]
    assert (overrides["cpu"], overrides["memory"], overrides["taskRoleArn"]) == ("2048", "4096", "arn:aws:iam::1:role/t")
    assert overrides["containerOverrides"][0]["name"] == "app"
    assert_valid("RunTask", request)


def test_oversized_overrides_are_rejected_without_echoing_values() -> None:
    secret = "s3cr3t" * 2000
    with pytest.raises(InvalidJobConfiguration) as info:
        run_task(cfg(env={"BIG": secret}))
    assert info.value.field == "env" and str(OVERRIDES_MAX) in info.value.message
    assert "s3cr3t" not in str(info.value)


def test_environment_values_are_kept_for_scrubbing() -> None:
    configuration = cfg(env={"PREFECT_API_KEY": "pnu_0123456789abcdef", "SHORT": "1"})
    spec = build_task_definition(configuration, "p", None)
    info = TaskDefinitionInfo(arn=TASKDEF_ARN, container_name=spec.container_name, awsvpc=True)
    run = build_run_task(configuration, submit_request(configuration), info, configuration.network_configuration, None)
    assert run.secrets == ("pnu_0123456789abcdef",)


def test_bad_raw_template_names_the_field_and_no_value() -> None:
    configuration = cfg(task_run_request={"enableExecuteCommand": "yes-please-secret", "bogusMember": 1})
    with pytest.raises(InvalidJobConfiguration) as info:
        check_model("RunTask", run_task(configuration), "task_run_request")
    assert info.value.field == "task_run_request"
    assert "enableExecuteCommand" in info.value.message and "bogusMember" in info.value.message
    assert "yes-please-secret" not in info.value.message


# -- ids, logs, described definitions --------------------------------------------------------------


def test_infrastructure_id_round_trip() -> None:
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
    task = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef"
    value = naming.infrastructure_id(cluster, task)
    assert value == f"{cluster}::{task}" and naming.parse_infrastructure_id(value) == (cluster, task)
    assert naming.cluster_of_task(task, "x") == cluster and naming.cluster_of_task("task-id", "x") == "x"
    for bad in ["host:123", "::task", "cluster::", ""]:
        with pytest.raises(ValueError):
            naming.parse_infrastructure_id(bad)


def test_log_stream_names_follow_the_awslogs_driver() -> None:
    target = log_target_for(cfg(configure_cloudwatch_logs=True, execution_role_arn=EXEC_ROLE), "us-east-1")
    assert (target.group, target.container) == ("prefect", "prefect")
    assert target.stream("arn:aws:ecs:us-east-1:1:task/default/abc") == "prefect/prefect/abc"
    assert log_target_for(cfg(), "us-east-1") is None


def test_described_definition_picks_the_flow_container() -> None:
    definition = {"taskDefinitionArn": TASKDEF_ARN, "networkMode": "awsvpc", "containerDefinitions": [
        {"name": "proxy", "essential": False}, {"name": "app", "essential": True, "logConfiguration": {
            "logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-stream-prefix": "p"}}}]}
    info = describe_info(definition, None, "family-only")
    assert (info.arn, info.container_name, info.awsvpc) == ("family-only", "app", True)
    assert info.log_target.stream("arn:x/task/c/id1") == "p/app/id1"
    assert describe_info(definition, "proxy", "f").log_target is None
