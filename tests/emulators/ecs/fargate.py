"""Fargate task sizes: parsing ECS cpu/memory strings and the valid pairs.

ECS accepts task-level ``cpu`` as CPU units ("1024") or vCPUs ("1 vCPU") and
``memory`` as MiB ("2048") or GB ("2 GB"), and stores the numeric form.
Fargate only runs the cpu/memory combinations in the table below (from the
ECS developer guide, "Task CPU and memory").
"""

from __future__ import annotations

import re

FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

_VCPU = re.compile(r"^(\d+(?:\.\d+)?)\s*vcpu$", re.IGNORECASE)
_GB = re.compile(r"^(\d+(?:\.\d+)?)\s*gb$", re.IGNORECASE)


def _parse(text: str | int | None, unit: re.Pattern[str]) -> int | None:
    if text is None:
        return None
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    match = unit.match(text)
    if not match:
        return None
    value = float(match.group(1)) * 1024
    return int(value) if value.is_integer() else None


def parse_cpu(text: str | int | None) -> int | None:
    """CPU units for "1024" / "1 vCPU" / "0.25 vcpu"; None when unparseable."""
    return _parse(text, _VCPU)


def parse_memory(text: str | int | None) -> int | None:
    """MiB for "2048" / "2 GB" / "0.5GB"; None when unparseable."""
    return _parse(text, _GB)


def is_fargate_size(cpu: int | None, memory: int | None) -> bool:
    return cpu is not None and memory is not None and memory in FARGATE_MEMORY.get(cpu, ())


def no_fargate_configuration(cpu: object, memory: object) -> str:
    return (
        f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. "
        "See the Amazon ECS documentation for the valid values."
    )
