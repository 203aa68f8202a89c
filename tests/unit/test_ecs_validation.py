"""Pure validation of ECS job configurations: Fargate sizes, storage, image, roles, network."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from providers.ecs.config import EcsJobConfiguration
from providers.ecs.validation import FARGATE_MEMORY, resources, validate
from providers.errors import InvalidJobConfiguration

# The table from the ECS developer guide, written out independently of the code under test.
FARGATE_ROWS = {
    256: [512, 1024, 2048],
    512: [1024, 2048, 3072, 4096],
    1024: list(range(2048, 8192 + 1, 1024)),
    2048: list(range(4096, 16384 + 1, 1024)),
    4096: list(range(8192, 30720 + 1, 1024)),
    8192: list(range(16384, 61440 + 1, 4096)),
    16384: list(range(32768, 122880 + 1, 8192)),
}


def cfg(**values) -> EcsJobConfiguration:
    values.setdefault("image", "prefecthq/prefect:3-latest")
    return EcsJobConfiguration(**values)


def rejected(configuration: EcsJobConfiguration) -> InvalidJobConfiguration:
    with pytest.raises(InvalidJobConfiguration) as info:
        validate(configuration)
    return info.value


def test_table_matches_the_developer_guide() -> None:
    assert {cpu: list(memory) for cpu, memory in FARGATE_MEMORY.items()} == FARGATE_ROWS


@pytest.mark.parametrize("launch_type", ["FARGATE", "FARGATE_SPOT"])
@pytest.mark.parametrize("cpu,memory", [(cpu, m) for cpu, row in FARGATE_ROWS.items() for m in row])
def test_every_allowed_fargate_pair_passes(cpu: int, memory: int, launch_type: str) -> None:
    validate(cfg(cpu=cpu, memory=memory, launch_type=launch_type))


def _neighbours(row: list[int]) -> list[int]:
    """Values just outside the row and between its steps."""
    step = row[1] - row[0]
    inside = [m + step // 2 for m in row[:-1]] if row[0] != 512 else [768, 1536]
    return [row[0] - 1, row[0] - step, row[-1] + 1, row[-1] + step, *inside]


@pytest.mark.parametrize("cpu,memory", [(cpu, m) for cpu, row in FARGATE_ROWS.items() for m in _neighbours(row)])
def test_memory_outside_a_row_or_off_step_is_rejected(cpu: int, memory: int) -> None:
    error = rejected(cfg(cpu=cpu, memory=memory))
    assert error.field == "memory" and error.value == memory
    assert error.message.startswith(f"memory={memory} is not allowed: for cpu={cpu} Fargate allows memory ")
    assert str(FARGATE_ROWS[cpu][0]) in error.message and str(FARGATE_ROWS[cpu][-1]) in error.message


def test_message_names_field_value_and_allowed_values() -> None:
    error = rejected(cfg(cpu=512, memory=3000))
    assert error.message == "memory=3000 is not allowed: for cpu=512 Fargate allows memory 1024, 2048, 3072, 4096 MiB"
    error = rejected(cfg(cpu=1024, memory=9216))
    assert error.message == (
        "memory=9216 is not allowed: for cpu=1024 Fargate allows memory 2048 to 8192 in steps of 1024 MiB"
    )
    error = rejected(cfg(cpu=8192, memory=20000))
    assert "16384 to 61440 in steps of 4096 MiB" in error.message


@pytest.mark.parametrize("cpu", [0, 128, 300, 1000, 3072, 32768])
def test_cpu_outside_the_fargate_values_is_rejected(cpu: int) -> None:
    error = rejected(cfg(cpu=cpu, memory=2048))
    assert error.field == "cpu" and error.value == cpu
    assert "256, 512, 1024, 2048, 4096, 8192, 16384" in error.message


def test_defaults_are_one_vcpu_and_two_gib() -> None:
    validate(cfg())
    request = resources(cfg())
    assert (request.vcpu, request.memory_mib, request.ephemeral_storage_gib) == (1.0, 2048, None)


def test_memory_only_is_checked_against_the_default_cpu() -> None:
    validate(cfg(memory=8192))
    assert rejected(cfg(memory=512)).message.startswith("memory=512 is not allowed: for cpu=1024")


@pytest.mark.parametrize("size,ok", [(None, True), (20, False), (21, True), (100, True), (200, True), (201, False),
                                     (0, False)])
def test_ephemeral_storage_range(size: int | None, ok: bool) -> None:
    configuration = cfg(ephemeral_storage=size)
    if ok:
        validate(configuration)
    else:
        error = rejected(configuration)
        assert error.field == "ephemeral_storage" and "21 to 200 GiB" in error.message


@pytest.mark.parametrize("image", [None, "", "   "])
def test_image_is_required(image: str | None) -> None:
    error = rejected(EcsJobConfiguration(image=image))
    assert error.field == "image"


def test_task_definition_arn_needs_no_image_and_checks_only_a_full_override_pair() -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/mine:3"
    validate(EcsJobConfiguration(task_definition_arn=arn))
    validate(EcsJobConfiguration(task_definition_arn=arn, memory=3000))  # combined with the definition's cpu by ECS
    assert rejected(EcsJobConfiguration(task_definition_arn=arn, cpu=512, memory=3000)).field == "memory"
    request = resources(EcsJobConfiguration(task_definition_arn=arn))
    assert (request.vcpu, request.memory_mib) == (None, None)


def test_cloudwatch_logs_need_an_execution_role() -> None:
    error = rejected(cfg(configure_cloudwatch_logs=True))
    assert error.field == "execution_role_arn" and "configure_cloudwatch_logs" in error.message
    validate(cfg(configure_cloudwatch_logs=True, execution_role_arn="arn:aws:iam::123456789012:role/exec"))


def test_log_options_need_logs_enabled() -> None:
    assert rejected(cfg(cloudwatch_logs_options={"awslogs-group": "g"})).field == "cloudwatch_logs_options"


@pytest.mark.parametrize("field", ["prefect_api_key_secret_arn", "prefect_api_auth_string_secret_arn"])
def test_prefect_secrets_need_an_execution_role(field: str) -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prefect-key"
    assert rejected(cfg(**{field: arn})).field == "execution_role_arn"


def test_ec2_has_no_fargate_size_rules_but_no_ephemeral_storage() -> None:
    validate(cfg(launch_type="EC2", cpu=300, memory=700))
    assert rejected(cfg(launch_type="EC2", ephemeral_storage=50)).field == "ephemeral_storage"


def test_capacity_provider_strategy_of_fargate_providers_is_fargate() -> None:
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 3}, {"capacityProvider": "FARGATE", "base": 1}]
    assert rejected(cfg(launch_type="EC2", capacity_provider_strategy=strategy, cpu=300)).field == "cpu"


@pytest.mark.parametrize(
    "network,field",
    [
        ({"subnets": ["subnet-1"] * 17}, "network_configuration.subnets"),
        ({"subnets": ["sn-1"]}, "network_configuration.subnets"),
        ({"subnets": ["subnet-1"], "securityGroups": ["group-1"]}, "network_configuration.securityGroups"),
        ({"subnets": ["subnet-1"], "securityGroups": ["sg-1"] * 6}, "network_configuration.securityGroups"),
    ],
)
def test_network_configuration_shape(network: dict, field: str) -> None:
    assert rejected(cfg(network_configuration=network)).field == field


def test_network_configuration_may_be_wrapped_like_the_runtask_member() -> None:
    wrapped = cfg(network_configuration={"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "ENABLED"}})
    assert wrapped.network_configuration.subnets == ["subnet-1"]
    with pytest.raises(ValidationError):
        cfg(network_configuration={"subnet": ["subnet-1"]})


@pytest.mark.parametrize("command", ["python -c 'unbalanced", "   "])
def test_command_must_split_into_words(command: str) -> None:
    assert rejected(cfg(command=command)).field == "command"


def test_resources_name_the_users_fields() -> None:
    request = resources(cfg(cpu=4096, memory=16384, ephemeral_storage=100))
    assert (request.vcpu, request.memory_mib, request.ephemeral_storage_gib) == (4.0, 16384, 100)
    assert request.fields == {"vcpu": "cpu", "memory_mib": "memory", "ephemeral_storage_gib": "ephemeral_storage"}
    assert resources(cfg(cpu=256, memory=512)).vcpu == 0.25
