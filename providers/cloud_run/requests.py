"""Build the Cloud Run requests of a run from its job configuration (pure).

What cannot change per execution (image, cpu, memory, service account, VPC access,
launch stage, labels, retries, command, secret env) goes into a Job, named after a
content hash of its body: runs with the same configuration share one job. What
changes per run goes into the ``:run`` overrides (``RunJobRequest.Overrides`` can set
only container args and env, task count and timeout): the flow run's env (Prefect's
``PREFECT__FLOW_RUN_ID``...), its args, ``taskCount: 1``, the runtime cap as
``timeout``, and the attempt marker ``PREFECT_DISPATCHER_ATTEMPT``, which the
execution keeps in its template's env so ``find()`` can recognise it (``:run`` has no
idempotency key and overrides cannot set labels).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from typing import Any, Optional
from uuid import UUID

from google.cloud import run_v2
from google.protobuf import duration_pb2
from pydantic import BaseModel, ConfigDict, Field

from providers.base import SubmitRequest
from providers.cloud_run.config import CloudRunJobConfiguration
from providers.commands import command_argv
from providers.errors import InvalidJobConfiguration

JOB_PREFIX = "prefect-"
MARKER_ENV = "PREFECT_DISPATCHER_ATTEMPT"
DEFAULT_CONTAINER = "prefect"
MANAGED_LABEL, MANAGED_VALUE = "managed-by", "prefect-push-dispatcher"
HASH_LABEL = "prefect-config-hash"
KEEP_LABEL = "prefect-keep-job"
#: Cloud Run's GA task timeout ceiling; the dispatcher never asks for more per run.
MAX_RUN_TIMEOUT_S = 24 * 3600
CLOUDSQL_VOLUME, CLOUDSQL_MOUNT = "cloudsql", "/cloudsql"
_LABEL_BAD = re.compile(r"[^a-z0-9_-]")
#: Env values this long are scrubbed from error messages (API keys are much longer).
SECRET_MIN_LENGTH = 8
_TO_JSON = {"use_integers_for_enums": False, "always_print_fields_with_no_presence": False, "indent": None}


class JobSpec(BaseModel):
    """A Cloud Run job we may create: its id (content hash) and body."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(description="RFC 1035 job id: 'prefect-' + 24 hex digits of the body's sha256.")
    body: str = Field(description="The run_v2 Job as JSON (CreateJob's body), hash label included.")
    container_name: str = Field(description="The container the run's overrides address.")
    keep: bool = Field(description="keep_job: housekeeping never deletes this job.")


class RunSpec(BaseModel):
    """One ``:run`` call."""

    model_config = ConfigDict(frozen=True)

    body: str = Field(description="RunJobRequest JSON (overrides).")
    marker: str = Field(description="The attempt marker env value find() matches.")
    timeout_s: int = Field(description="Task timeout of this execution (the runtime cap, at most 24 h).")
    secrets: tuple[str, ...] = Field(description="Env values, never to appear in messages or logs.")


def marker(attempt_id: UUID) -> str:
    return attempt_id.hex


def _drop_none(value: Any) -> Any:
    """Unset template variables leave None behind; Cloud Run's JSON has no nulls."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def task_template(cfg: CloudRunJobConfiguration) -> dict[str, Any]:
    template = (cfg.job_body.get("template") or {}).get("template")
    if not isinstance(template, dict):
        raise InvalidJobConfiguration("job_body", "<dict>", "a Cloud Run Job body with template.template (the task)")
    return template


def container(cfg: CloudRunJobConfiguration) -> dict[str, Any]:
    """The container that runs the flow: the first of the job body's task template."""
    containers = task_template(cfg).get("containers")
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        raise InvalidJobConfiguration("job_body", "<dict>", "a job body with at least one container")
    return containers[0]


def keeps_image_entrypoint(cfg: CloudRunJobConfiguration) -> bool:
    """Prefect Managed runs go through the official image's entrypoint (it installs EXTRA_PIP_PACKAGES):
    the command becomes the container's args, never its command (which would replace the entrypoint)."""
    return bool(getattr(cfg, "keeps_image_entrypoint", False))


def with_limits(cfg: CloudRunJobConfiguration, allocation: Any) -> dict[str, Any]:
    """A copy of the job body whose first container has the allocation's cpu and memory limits."""
    body = copy.deepcopy(cfg.job_body)
    containers = body.get("template", {}).get("template", {}).get("containers") or [{}]
    vcpu, mib = allocation.vcpu, allocation.memory_mib
    memory = f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
    containers[0].setdefault("resources", {})["limits"] = {"cpu": f"{vcpu:g}", "memory": memory}
    body.setdefault("template", {}).setdefault("template", {})["containers"] = containers
    return body


def argv(value: Any, field: str) -> Optional[list[str]]:
    """A command or args as a list (Prefect keeps a command as one shell-style string)."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InvalidJobConfiguration(field, value, f"a shell-style command line ({exc})") from None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidJobConfiguration(field, f"<{type(value).__name__}>", "a string or a list of strings")


def limits(cfg: CloudRunJobConfiguration) -> dict[str, str]:
    found = (container(cfg).get("resources") or {}).get("limits") or {}
    return {key: str(value) for key, value in found.items() if value is not None}


def task_timeout_s(cfg: CloudRunJobConfiguration) -> int:
    raw = task_template(cfg).get("timeout")
    if raw is None or raw == "":
        return cfg.timeout
    text = str(raw).strip().removesuffix("s")
    try:
        seconds = float(text)
    except ValueError:
        raise InvalidJobConfiguration("timeout", raw, "seconds, e.g. 600 or '600s'") from None
    return int(seconds) if seconds == int(seconds) else int(seconds) + 1


def gcp_label(text: str) -> str:
    """A label key or value in GCP's alphabet (lowercase letters, digits, _ and -; at most 63)."""
    return _LABEL_BAD.sub("_", text.lower())[:63]


def user_labels(cfg: CloudRunJobConfiguration) -> dict[str, str]:
    """The deployment's own labels; Prefect's per-run ``prefect.io/*`` labels cannot go on a shared job."""
    found = {}
    for key, value in (cfg.labels or {}).items():
        if key.startswith("prefect.io/") or value is None:
            continue
        name = gcp_label(key)
        if not name[:1].isalpha():
            name = ("l" + name)[:63]
        found[name] = gcp_label(str(value))
    return found


def _secret_env(name: str, secret: Any) -> dict[str, Any]:
    selector = secret if isinstance(secret, dict) else secret.model_dump()
    return {"name": name, "valueSource": {"secretKeyRef": {"secret": selector["secret"],
                                                            "version": selector["version"]}}}


def _job_container(cfg: CloudRunJobConfiguration) -> dict[str, Any]:
    ours = copy.deepcopy(container(cfg))
    ours.pop("args", None)  # per run: overrides
    ours["name"] = ours.get("name") or DEFAULT_CONTAINER
    if keeps_image_entrypoint(cfg):
        ours.pop("command", None)  # the image's entrypoint runs and execs the run's args (see build_run)
    else:
        ours["command"] = argv(ours.get("command"), "command") or command_argv(cfg)
    env = [var for var in ours.get("env") or [] if isinstance(var, dict)]
    env += [_secret_env(name, selector) for name, selector in sorted(cfg.env_from_secrets.items())]
    if cfg.prefect_api_key_secret is not None:
        env.append(_secret_env("PREFECT_API_KEY", cfg.prefect_api_key_secret))
    if cfg.prefect_api_auth_string_secret is not None:
        env.append(_secret_env("PREFECT_API_AUTH_STRING", cfg.prefect_api_auth_string_secret))
    ours["env"] = env
    if cfg.cloudsql_instances:
        mounts = ours.setdefault("volumeMounts", [])
        mounts.append({"name": CLOUDSQL_VOLUME, "mountPath": CLOUDSQL_MOUNT})
    return ours


#: build_job results by the configuration fields they depend on: every run of a deployment has the same
#: job, and building it (two proto conversions) is most of a submission's CPU. Bounded; pure.
_JOB_CACHE: dict[str, JobSpec] = {}
_JOB_CACHE_MAX = 512


def _job_key(cfg: CloudRunJobConfiguration) -> str:
    fields = cfg.model_dump(mode="json", include={"job_body", "keep_job", "labels", "env_from_secrets", "command",
                                                   "prefect_api_key_secret", "prefect_api_auth_string_secret",
                                                   "cloudsql_instances", "timeout"})
    fields["labels"] = user_labels(cfg)  # Prefect's per-run labels do not change the job
    return json.dumps(fields, sort_keys=True, default=str)


def build_job(cfg: CloudRunJobConfiguration) -> JobSpec:
    """The job of this configuration; the same configuration gives the same job id on every replica."""
    key = _job_key(cfg)
    found = _JOB_CACHE.get(key)
    if found is None:
        found = _build_job(cfg)
        if len(_JOB_CACHE) >= _JOB_CACHE_MAX:
            _JOB_CACHE.pop(next(iter(_JOB_CACHE)))
        _JOB_CACHE[key] = found
    return found


def _build_job(cfg: CloudRunJobConfiguration) -> JobSpec:
    container(cfg)  # the shape first: a body without a task template or container is the user's error
    body = _drop_none(copy.deepcopy(cfg.job_body))
    for output_only in ("name", "uid", "etag", "createTime", "updateTime", "latestCreatedExecution"):
        body.pop(output_only, None)
    body["client"] = "prefect-push-dispatcher"
    execution = body.setdefault("template", {})
    execution["taskCount"] = 1
    task = execution["template"]
    task["timeout"] = f"{task_timeout_s(cfg)}s"
    task["maxRetries"] = int(task.get("maxRetries") or 0)
    if not (task.get("vpcAccess") or {}).get("connector"):
        task.pop("vpcAccess", None)
    if not task.get("serviceAccount"):
        task.pop("serviceAccount", None)
    task["containers"] = [_job_container(cfg), *copy.deepcopy(task["containers"][1:])]
    if cfg.cloudsql_instances:
        task.setdefault("volumes", []).append({"name": CLOUDSQL_VOLUME,
                                               "cloudSqlInstance": {"instances": list(cfg.cloudsql_instances)}})
    labels = {**{gcp_label(k): gcp_label(str(v)) for k, v in (body.get("labels") or {}).items()}, **user_labels(cfg)}
    labels[MANAGED_LABEL] = MANAGED_VALUE
    if cfg.keep_job:
        labels[KEEP_LABEL] = "true"
    body["labels"] = labels
    job = parse_job(body)
    canonical = run_v2.Job.to_json(job, sort_keys=True, **_TO_JSON)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:24]
    job.labels[HASH_LABEL] = digest
    return JobSpec(job_id=f"{JOB_PREFIX}{digest}", body=run_v2.Job.to_json(job, **_TO_JSON),
                   container_name=task["containers"][0]["name"], keep=cfg.keep_job)


def parse_job(body: dict[str, Any]) -> run_v2.Job:
    """The body as a run_v2 Job; a field Cloud Run does not know is the user's template's error."""
    try:
        return run_v2.Job.from_json(json.dumps(body), ignore_unknown_fields=False)
    except Exception as exc:  # json_format.ParseError, TypeError, ValueError: all mean "not a Job"
        detail = str(exc).split("\n")[0][:200]
        raise InvalidJobConfiguration("job_body", "<dict>", f"a Cloud Run v2 Job body ({detail})") from None


def run_timeout_s(cfg: CloudRunJobConfiguration, request: SubmitRequest) -> int:
    """The execution's task timeout: the job's, the runtime cap and 24 h, whichever is least."""
    return max(1, min(task_timeout_s(cfg), request.limits.max_runtime_s, MAX_RUN_TIMEOUT_S))


def build_run(cfg: CloudRunJobConfiguration, request: SubmitRequest, job: JobSpec) -> RunSpec:
    """RunJobRequest with the run's overrides: env (and the attempt marker), args, one task, the timeout."""
    env = {key: str(value) for key, value in (cfg.env or {}).items() if value is not None}
    if cfg.prefect_api_key_secret is not None:
        env.pop("PREFECT_API_KEY", None)  # the job reads it from Secret Manager
    if cfg.prefect_api_auth_string_secret is not None:
        env.pop("PREFECT_API_AUTH_STRING", None)
    env[MARKER_ENV] = marker(request.attempt_id)
    args = argv(container(cfg).get("args"), "args") or (command_argv(cfg) if keeps_image_entrypoint(cfg) else [])
    override = run_v2.RunJobRequest.Overrides.ContainerOverride(
        name=job.container_name, args=args, env=[run_v2.EnvVar(name=k, value=v) for k, v in env.items()])
    timeout = run_timeout_s(cfg, request)
    overrides = run_v2.RunJobRequest.Overrides(container_overrides=[override], task_count=1,
                                               timeout=duration_pb2.Duration(seconds=timeout))
    body = '{"overrides": %s}' % run_v2.RunJobRequest.Overrides.to_json(overrides, **_TO_JSON)
    secrets = tuple(v for k, v in env.items() if len(v) >= SECRET_MIN_LENGTH and k != MARKER_ENV)
    return RunSpec(body=body, marker=env[MARKER_ENV], timeout_s=timeout, secrets=secrets)


def marker_of(execution: run_v2.Execution) -> Optional[str]:
    """The attempt marker an execution carries in its template's env (None: not one of ours)."""
    for item in execution.template.containers:
        for var in item.env:
            if var.name == MARKER_ENV:
                return var.value
    return None
