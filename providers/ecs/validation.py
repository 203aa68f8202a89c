"""Every check ECS would make that can be made without calling it (pure).

Fargate runs only certain task-level cpu/memory pairs (ECS developer guide,
"Task CPU and memory"; https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size):
checking them here turns a RegisterTaskDefinition rejection after a claim into
an immediate, named job-variable error.
"""

from __future__ import annotations


from providers.base import ResourceRequest
from providers.ecs.config import DEFAULT_CPU, DEFAULT_MEMORY, EcsJobConfiguration
from providers.commands import command_argv
from providers.errors import InvalidJobConfiguration

#: cpu units -> (lowest MiB, highest MiB, step MiB); 256 is the one irregular row.
FARGATE_MEMORY_RANGES: dict[int, tuple[int, int, int]] = {
    512: (1024, 4096, 1024),
    1024: (2048, 8192, 1024),
    2048: (4096, 16384, 1024),
    4096: (8192, 30720, 1024),
    8192: (16384, 61440, 4096),
    16384: (32768, 122880, 8192),
}
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    **{cpu: tuple(range(low, high + 1, step)) for cpu, (low, high, step) in FARGATE_MEMORY_RANGES.items()},
}
EPHEMERAL_STORAGE_GIB = (21, 200)
FARGATE_LAUNCH_TYPES = ("FARGATE", "FARGATE_SPOT")
MAX_SUBNETS = 16
MAX_SECURITY_GROUPS = 5


def is_fargate(cfg: EcsJobConfiguration) -> bool:
    """Fargate unless the configuration picks EC2/EXTERNAL (a strategy of FARGATE* providers is Fargate)."""
    if cfg.capacity_provider_strategy:
        return all(item.capacityProvider in FARGATE_LAUNCH_TYPES for item in cfg.capacity_provider_strategy)
    return cfg.launch_type in FARGATE_LAUNCH_TYPES


def task_cpu(cfg: EcsJobConfiguration) -> int:
    return cfg.cpu if cfg.cpu is not None else DEFAULT_CPU


def task_memory(cfg: EcsJobConfiguration) -> int:
    return cfg.memory if cfg.memory is not None else DEFAULT_MEMORY


def allowed_memory_text(cpu: int) -> str:
    """How the allowed memory of one Fargate cpu row reads in an error message."""
    values = FARGATE_MEMORY[cpu]
    if len(values) <= 4:
        listed = ", ".join(str(v) for v in values)
    else:
        low, high, step = FARGATE_MEMORY_RANGES[cpu]
        listed = f"{low} to {high} in steps of {step}"
    return f"for cpu={cpu} Fargate allows memory {listed} MiB"


def check_fargate_size(cpu: int, memory: int) -> None:
    if cpu not in FARGATE_MEMORY:
        allowed = ", ".join(str(c) for c in FARGATE_MEMORY)
        raise InvalidJobConfiguration("cpu", cpu, f"Fargate allows cpu {allowed} (1024 = 1 vCPU)")
    if memory not in FARGATE_MEMORY[cpu]:
        raise InvalidJobConfiguration("memory", memory, allowed_memory_text(cpu))


def check_ephemeral_storage(size: int | None) -> None:
    low, high = EPHEMERAL_STORAGE_GIB
    if size is not None and not low <= size <= high:
        raise InvalidJobConfiguration(
            "ephemeral_storage", size, f"Fargate allows {low} to {high} GiB (leave it unset for the default 20 GiB)"
        )


def _check_network(cfg: EcsJobConfiguration) -> None:
    network = cfg.network_configuration
    if len(network.subnets) > MAX_SUBNETS:
        raise InvalidJobConfiguration("network_configuration.subnets", network.subnets, f"at most {MAX_SUBNETS} subnets")
    if len(network.securityGroups) > MAX_SECURITY_GROUPS:
        raise InvalidJobConfiguration(
            "network_configuration.securityGroups", network.securityGroups, f"at most {MAX_SECURITY_GROUPS} groups"
        )
    for subnet in network.subnets:
        if not subnet.startswith("subnet-"):
            raise InvalidJobConfiguration("network_configuration.subnets", subnet, "subnet ids like 'subnet-0abc...'")
    for group in network.securityGroups:
        if not group.startswith("sg-"):
            raise InvalidJobConfiguration("network_configuration.securityGroups", group, "ids like 'sg-0abc...'")


def validate(cfg: EcsJobConfiguration) -> None:
    """Raise InvalidJobConfiguration for the first value ECS would refuse."""
    command_argv(cfg)
    _check_network(cfg)
    if cfg.task_start_timeout_seconds is not None and cfg.task_start_timeout_seconds <= 0:
        raise InvalidJobConfiguration("task_start_timeout_seconds", cfg.task_start_timeout_seconds, "more than 0, or unset")
    if cfg.task_definition_arn:  # image, logs and roles come from the existing task definition
        if is_fargate(cfg) and cfg.cpu is not None and cfg.memory is not None:
            check_fargate_size(cfg.cpu, cfg.memory)  # they become task-level RunTask overrides
        return
    if not (cfg.image or "").strip():
        raise InvalidJobConfiguration("image", cfg.image, "an image name, e.g. prefecthq/prefect:3-latest")
    if is_fargate(cfg):
        check_fargate_size(task_cpu(cfg), task_memory(cfg))
        check_ephemeral_storage(cfg.ephemeral_storage)
    elif cfg.ephemeral_storage is not None:
        raise InvalidJobConfiguration("ephemeral_storage", cfg.ephemeral_storage, "only on Fargate launch types")
    if cfg.configure_cloudwatch_logs and not cfg.execution_role_arn:
        raise InvalidJobConfiguration(
            "execution_role_arn", None, "an IAM role ARN: configure_cloudwatch_logs needs an execution role"
        )
    secret = cfg.prefect_api_key_secret_arn or cfg.prefect_api_auth_string_secret_arn
    if secret and not cfg.execution_role_arn:
        raise InvalidJobConfiguration(
            "execution_role_arn", None, "an IAM role ARN: ECS reads the Prefect API secret with the execution role"
        )
    if cfg.cloudwatch_logs_options and not cfg.configure_cloudwatch_logs:
        raise InvalidJobConfiguration(
            "cloudwatch_logs_options", cfg.cloudwatch_logs_options, "only with configure_cloudwatch_logs enabled"
        )


def resources(cfg: EcsJobConfiguration) -> ResourceRequest:
    """What the run asks for, in the dispatcher's units (task_definition_arn runs: unknown -> None)."""
    if cfg.task_definition_arn:  # the existing definition's size applies unless cpu/memory override it
        return ResourceRequest(
            vcpu=cfg.cpu / 1024 if cfg.cpu is not None else None,
            memory_mib=cfg.memory,
            fields={"vcpu": "cpu", "memory_mib": "memory"},
        )
    return ResourceRequest(
        vcpu=task_cpu(cfg) / 1024,
        memory_mib=task_memory(cfg),
        ephemeral_storage_gib=cfg.ephemeral_storage,
        fields={"vcpu": "cpu", "memory_mib": "memory", "ephemeral_storage_gib": "ephemeral_storage"},
    )
