"""What Cloud Run itself checks beyond the proto schema, as (field, description) violations.

The schema (unknown fields, types, enum values) is ``codec.parse_message``'s
job; these are the service's own rules on ids, labels, sizes, retries and
timeouts. Paths are the JSON paths of the request (``job.template.template.
containers[0].resources.limits.memory``). Sources: Cloud Run's jobs CPU and
memory pages, the task-timeout page and the quotas page (see README.md).
"""

from __future__ import annotations

import re
from typing import Any

from .codec import duration_s

Violations = list[tuple[str, str]]

RFC1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_ENV = {"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
                "CLOUD_RUN_TASK_COUNT"}
RESERVED_NAMESPACES = ("run.googleapis.com", "cloud.googleapis.com", "serving.knative.dev",
                       "autoscaling.knative.dev")
LAUNCH_STAGES = {"LAUNCH_STAGE_UNSPECIFIED", "ALPHA", "BETA", "GA"}
PREVIEW_STAGES = {"ALPHA", "BETA"}
GA_MAX_TIMEOUT_S, PREVIEW_MAX_TIMEOUT_S = 24 * 3600, 168 * 3600
MAX_TASKS, MAX_RETRIES, MAX_LABELS = 10_000, 10, 64

MI, GI = 2**20, 2**30
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": MI, "Gi": GI, "Ti": 2**40}
_QUANTITY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>[kMGT]i?|)$")
# Memory range per whole CPU for jobs (docs: configuring/jobs/cpu); below 1 CPU see _max_memory.
_MEMORY_RANGE = {1: (512 * MI, 4 * GI), 2: (512 * MI, 8 * GI), 4: (2 * GI, 16 * GI), 6: (4 * GI, 24 * GI),
                 8: (4 * GI, 32 * GI)}
MIN_MEMORY_GEN2 = 512 * MI


def job_id_violations(job_id: str | None) -> Violations:
    if job_id and RFC1035.match(job_id):
        return []
    return [("job_id", f"Invalid value '{job_id or ''}': a job ID must be 1 to 63 characters of lowercase letters, "
                       "digits and hyphens, start with a letter and not end with a hyphen (RFC 1035).")]


def job_violations(job: dict[str, Any]) -> Violations:
    stage = job.get("launchStage", "GA")
    found = _stage_violations(stage) + _metadata_violations("job", job)
    template = job.get("template") or {}
    found += _metadata_violations("job.template", template)
    found += _count_violations("job.template.taskCount", template.get("taskCount", 0))
    if template.get("parallelism", 0) < 0:
        found.append(("job.template.parallelism", "Parallelism must not be negative."))
    return found + _task_template_violations("job.template.template", template.get("template") or {}, stage)


def overrides_violations(overrides: dict[str, Any], job_template: dict[str, Any], stage: str) -> Violations:
    """RunJobRequest.overrides against the job: known container names, env rules, task count, timeout."""
    path = "overrides"
    containers = job_template["template"]["containers"]
    names = [c.get("name", "") for c in containers]
    found: Violations = []
    for i, override in enumerate(overrides.get("containerOverrides") or []):
        name = override.get("name", "")
        if name not in names and not (name == "" and len(containers) == 1):
            found.append((f"{path}.containerOverrides[{i}].name",
                          f"Container '{name}' does not match any container of the job."))
        found += _env_violations(f"{path}.containerOverrides[{i}].env", override.get("env") or [])
    found += _count_violations(f"{path}.taskCount", overrides.get("taskCount", 0))
    if "timeout" in overrides:
        found += _timeout_violations(f"{path}.timeout", overrides["timeout"], stage)
    return found


def _stage_violations(stage: str) -> Violations:
    if stage in LAUNCH_STAGES:
        return []
    return [("job.launch_stage", f"Launch stage {stage} is not supported; use ALPHA, BETA or GA.")]


def _metadata_violations(path: str, obj: dict[str, Any]) -> Violations:
    labels, found = obj.get("labels") or {}, []
    if len(labels) > MAX_LABELS:
        found.append((f"{path}.labels", f"At most {MAX_LABELS} labels are allowed."))
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            found.append((f"{path}.labels", f"Label key '{key}' must start with a lowercase letter and have at "
                                            "most 63 lowercase letters, digits, underscores and hyphens."))
        if not LABEL_VALUE.match(value):
            found.append((f"{path}.labels", f"Label value '{value}' of key '{key}' must have at most 63 lowercase "
                                            "letters, digits, underscores and hyphens."))
    for key in obj.get("annotations") or {}:
        if key.split("/")[0].endswith(RESERVED_NAMESPACES):
            found.append((f"{path}.annotations", f"Annotation '{key}' uses a reserved namespace; system "
                                                 "annotations of v1 are fields in v2."))
    return found


def _count_violations(path: str, count: int) -> Violations:
    if 0 <= count <= MAX_TASKS:
        return []
    return [(path, f"Task count must be between 1 and {MAX_TASKS}, got {count}.")]


def _task_template_violations(path: str, template: dict[str, Any], stage: str) -> Violations:
    found: Violations = []
    retries = template.get("maxRetries", 0)
    if not 0 <= retries <= MAX_RETRIES:
        found.append((f"{path}.max_retries", f"Max retries must be between 0 and {MAX_RETRIES}, got {retries}."))
    if "timeout" in template:
        found += _timeout_violations(f"{path}.timeout", template["timeout"], stage)
    containers = template.get("containers") or []
    if not containers:
        found.append((f"{path}.containers", "At least one container must be specified."))
    for i, container in enumerate(containers):
        found += _container_violations(f"{path}.containers[{i}]", container)
    return found


def _timeout_violations(path: str, timeout: str, stage: str) -> Violations:
    seconds = duration_s(timeout)
    limit = PREVIEW_MAX_TIMEOUT_S if stage in PREVIEW_STAGES else GA_MAX_TIMEOUT_S
    if 0 < seconds <= limit:
        return []
    hint = "" if stage in PREVIEW_STAGES else " Timeouts over 24 hours need launch stage BETA."
    return [(path, f"Timeout must be between 1 second and {limit // 3600} hours, got {timeout}.{hint}")]


def _container_violations(path: str, container: dict[str, Any]) -> Violations:
    found: Violations = []
    if not container.get("image"):
        found.append((f"{path}.image", "Image must be specified."))
    found += _env_violations(f"{path}.env", container.get("env") or [])
    limits = (container.get("resources") or {}).get("limits") or {}
    unknown = sorted(set(limits) - {"cpu", "memory", "nvidia.com/gpu"})
    if unknown:
        found.append((f"{path}.resources.limits", f"Unsupported resource limits: {', '.join(unknown)}."))
    cpu, memory = limits.get("cpu", "1"), limits.get("memory", "512Mi")
    return found + resource_violations(f"{path}.resources.limits", cpu, memory)


def _env_violations(path: str, env: list[dict[str, Any]]) -> Violations:
    found, seen = [], set()
    for i, var in enumerate(env):
        name = var.get("name", "")
        if not name or "=" in name or len(name) > 32768:
            found.append((f"{path}[{i}].name", f"Invalid environment variable name '{name}'."))
        elif name in RESERVED_ENV:
            found.append((f"{path}[{i}].name", f"The following reserved env names were provided: {name}. "
                                                "These values are automatically set by the system."))
        elif name in seen:
            found.append((f"{path}[{i}].name", f"Duplicate environment variable name '{name}'."))
        seen.add(name)
    return found


def resource_violations(path: str, cpu_text: str, memory_text: str) -> Violations:
    """The CPU/memory pairs Cloud Run allows for jobs (second generation)."""
    cpu, memory = parse_cpu(cpu_text), parse_quantity(memory_text)
    if cpu is None or not (0.08 <= cpu <= 1 or cpu in (2, 4, 6, 8)):
        return [(f"{path}.cpu", f"Invalid value specified for cpu: '{cpu_text}'. CPU must be between 0.08 and 1, "
                                "or one of 2, 4, 6 or 8.")]
    if memory is None:
        return [(f"{path}.memory", f"Invalid value specified for container memory: '{memory_text}'.")]
    low, high = _memory_range(cpu)
    if low <= memory <= high:
        return []
    return [(f"{path}.memory", f"Invalid value specified for container memory. For {cpu:g} CPU, memory must be "
                               f"between {_mebibytes(low)} and {_mebibytes(high)} inclusive.")]


def _memory_range(cpu: float) -> tuple[int, int]:
    if cpu < 0.5:
        return MIN_MEMORY_GEN2, 512 * MI
    if cpu < 1:
        return MIN_MEMORY_GEN2, 1 * GI  # "sub-1 vCPU needs 1 vCPU for more than 1 GiB"
    return _MEMORY_RANGE[int(cpu)]


def parse_cpu(text: str) -> float | None:
    """``"1"``, ``"0.5"``, ``"1000m"`` -> vCPUs."""
    match = re.fullmatch(r"(\d+(\.\d+)?)(m?)", text.strip())
    if not match:
        return None
    value = float(match[1])
    return value / 1000 if match[3] else value


def parse_quantity(text: str) -> int | None:
    """A Kubernetes quantity (``512Mi``, ``1G``, ``2Gi``) in bytes."""
    match = _QUANTITY.match(text.strip())
    return None if not match else int(float(match["number"]) * _UNITS[match["unit"]])


def _mebibytes(n: int) -> str:
    return f"{n // GI}Gi" if n % GI == 0 else f"{n // MI}Mi"
