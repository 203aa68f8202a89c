"""Every check Cloud Run would make that can be made without calling it (pure).

Sources: Cloud Run's jobs CPU page (https://cloud.google.com/run/docs/configuring/jobs/cpu),
memory limits (…/jobs/memory-limits), task timeout (…/configuring/task-timeout), the
quotas page, and the Admin API v2 reference (env var and label rules). Checking here
turns a 400 after a claim into an immediate ``InvalidJobConfiguration`` that names the
job variable, its value and what Cloud Run allows.
"""

from __future__ import annotations

import re
from typing import Optional

from providers.base import ResourceRequest
from providers.cloud_run import requests
from providers.cloud_run.config import CloudRunJobConfiguration
from providers.commands import command_argv
from providers.errors import InvalidJobConfiguration

MI, GI = 2**20, 2**30
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "Ki": 2**10, "Mi": MI, "Gi": GI, "Ti": 2**40}
_QUANTITY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>[kMGT]i?|)$")
_CPU = re.compile(r"^(\d+(\.\d+)?)(m?)$")
#: Memory range (bytes) per whole vCPU for jobs; below 1 vCPU see memory_range().
MEMORY_RANGE = {1: (512 * MI, 4 * GI), 2: (512 * MI, 8 * GI), 4: (2 * GI, 16 * GI), 6: (4 * GI, 24 * GI),
                8: (4 * GI, 32 * GI)}
MIN_MEMORY = 512 * MI  # second generation execution environment (the only one for jobs)
WHOLE_CPUS = (2, 4, 6, 8)
GA_MAX_TIMEOUT_S, PREVIEW_MAX_TIMEOUT_S = 24 * 3600, 168 * 3600
PREVIEW_STAGES = ("ALPHA", "BETA")
MAX_RETRIES = 10
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]{1,2}$")
#: [registry/]path[:tag][@sha256:digest]; lowercase path components as registries require.
IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*(:[A-Za-z0-9_.-]{1,128})?(@sha256:[0-9a-f]{64})?$")
SERVICE_ACCOUNT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9-]+\.iam\.gserviceaccount\.com$"
                             r"|^[0-9]+-compute@developer\.gserviceaccount\.com$")
CONNECTOR = re.compile(r"^([a-z][-a-z0-9]{0,23}[a-z0-9]|projects/[^/]+/locations/[^/]+/connectors/[a-z][-a-z0-9]{0,23})$")
ENV_NAME = re.compile(r"^[^=\s]{1,32768}$")
RESERVED_ENV = frozenset({"CLOUD_RUN_JOB", "CLOUD_RUN_EXECUTION", "CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_ATTEMPT",
                          "CLOUD_RUN_TASK_COUNT", "PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"})
CPU_ALLOWED = "between 0.08 and 1 vCPU (e.g. '1000m', '0.5'), or 2, 4, 6 or 8"


def parse_cpu(text: str) -> Optional[float]:
    """``"1"``, ``"0.5"``, ``"1000m"`` -> vCPUs; None when it is not a quantity."""
    match = _CPU.match(str(text).strip())
    if not match:
        return None
    value = float(match[1])
    return value / 1000 if match[3] else value


def parse_memory(text: str) -> Optional[int]:
    """A Kubernetes quantity (``512Mi``, ``1G``, ``2Gi``) in bytes; None when it is not one."""
    match = _QUANTITY.match(str(text).strip())
    return None if not match else int(float(match["number"]) * _UNITS[match["unit"]])


def memory_range(cpu: float) -> tuple[int, int]:
    if cpu < 0.5:
        return MIN_MEMORY, 512 * MI
    if cpu < 1:
        return MIN_MEMORY, 1 * GI  # more than 1 GiB needs a whole vCPU
    return MEMORY_RANGE[int(cpu)]


def _mib(n: int) -> str:
    return f"{n // GI} GiB" if n % GI == 0 else f"{n // MI} MiB"


def check_size(cpu_text: str, memory_text: str) -> tuple[float, int]:
    """(vCPU, bytes) of a pair Cloud Run runs as a job; InvalidJobConfiguration otherwise."""
    cpu = parse_cpu(cpu_text)
    if cpu is None or not (0.08 <= cpu <= 1 or cpu in WHOLE_CPUS):
        raise InvalidJobConfiguration("cpu", cpu_text, f"Cloud Run jobs allow cpu {CPU_ALLOWED}")
    memory = parse_memory(memory_text)
    if memory is None:
        raise InvalidJobConfiguration("memory", memory_text, "a quantity such as '512Mi', '2Gi' or '1G'")
    low, high = memory_range(cpu)
    if not low <= memory <= high:
        raise InvalidJobConfiguration(
            "memory", memory_text, f"for cpu={cpu_text} Cloud Run jobs allow memory {_mib(low)} to {_mib(high)}")
    return cpu, memory


def _check_timeout(cfg: CloudRunJobConfiguration, stage: str) -> None:
    seconds = requests.task_timeout_s(cfg)
    limit = PREVIEW_MAX_TIMEOUT_S if stage in PREVIEW_STAGES else GA_MAX_TIMEOUT_S
    if not 0 < seconds <= limit:
        hint = "" if stage in PREVIEW_STAGES else " (up to 168 h with launch_stage BETA)"
        raise InvalidJobConfiguration("timeout", seconds, f"1 to {limit} seconds for launch stage {stage}{hint}")


def _check_env(cfg: CloudRunJobConfiguration) -> None:
    names = [*(cfg.env or {}), *cfg.env_from_secrets]
    for name in names:
        if not ENV_NAME.match(name):
            raise InvalidJobConfiguration("env", name, "environment variable names without '=' or whitespace")
        if name in RESERVED_ENV or name == requests.MARKER_ENV:
            raise InvalidJobConfiguration("env", name, "a name Cloud Run (or the dispatcher) does not set itself: "
                                          + ", ".join(sorted(RESERVED_ENV | {requests.MARKER_ENV})))


def _check_identity(cfg: CloudRunJobConfiguration) -> None:
    task = requests.task_template(cfg)
    account = task.get("serviceAccount")
    if account and not SERVICE_ACCOUNT.match(str(account)):
        raise InvalidJobConfiguration("service_account_name", account,
                                      "a service account email, e.g. flows@my-project.iam.gserviceaccount.com")
    connector = (task.get("vpcAccess") or {}).get("connector")
    if connector and not CONNECTOR.match(str(connector)):
        raise InvalidJobConfiguration("vpc_connector_name", connector,
                                      "a connector name or projects/P/locations/R/connectors/NAME")
    retries = task.get("maxRetries")
    if retries is not None and not (isinstance(retries, int) and 0 <= retries <= MAX_RETRIES):
        raise InvalidJobConfiguration("max_retries", retries, f"0 to {MAX_RETRIES} retries per task")


def validate(cfg: CloudRunJobConfiguration) -> None:
    """Raise InvalidJobConfiguration for the first value Cloud Run would refuse."""
    if not REGION.match(cfg.region or ""):
        raise InvalidJobConfiguration("region", cfg.region, "a Cloud Run region such as us-central1 or europe-west1")
    image = requests.container(cfg).get("image")
    if not isinstance(image, str) or not IMAGE.match(image.strip()):
        raise InvalidJobConfiguration("image", image, "an image reference, e.g. us-docker.pkg.dev/p/repo/flows:1.2 "
                                      "or prefecthq/prefect:3-latest")
    command_argv(cfg)
    requests.argv(requests.container(cfg).get("command"), "command")
    requests.argv(requests.container(cfg).get("args"), "args")
    size = requests.limits(cfg)
    check_size(size.get("cpu", "1000m"), size.get("memory", "512Mi"))
    stage = str(cfg.job_body.get("launchStage") or "GA")
    if stage not in ("ALPHA", "BETA", "GA", "LAUNCH_STAGE_UNSPECIFIED"):
        raise InvalidJobConfiguration("launch_stage", stage, "ALPHA, BETA or GA (Cloud Run jobs accept no other)")
    _check_timeout(cfg, stage)
    _check_env(cfg)
    _check_identity(cfg)
    requests.build_job(cfg)  # the body parses as a run_v2 Job: a custom template's unknown field is named here


def resources(cfg: CloudRunJobConfiguration) -> ResourceRequest:
    size = requests.limits(cfg)
    cpu = parse_cpu(size.get("cpu", "1000m"))
    memory = parse_memory(size.get("memory", "512Mi"))
    if cpu is None:
        raise InvalidJobConfiguration("cpu", size.get("cpu"), f"Cloud Run jobs allow cpu {CPU_ALLOWED}")
    if memory is None:
        raise InvalidJobConfiguration("memory", size.get("memory"), "a quantity such as '512Mi', '2Gi' or '1G'")
    return ResourceRequest(vcpu=cpu, memory_mib=-(-memory // MI), fields={"vcpu": "cpu", "memory_mib": "memory"})
