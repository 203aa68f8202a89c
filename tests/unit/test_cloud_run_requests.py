"""The Cloud Run provider's pure parts: request builders, validation, execution mapping (no I/O)."""

from __future__ import annotations

import json
import uuid

import pytest
from google.cloud import run_v2

from providers.base import InfraPhase, RunLimits, StopCause, SubmitRequest
from providers.cloud_run import requests, validation
from providers.cloud_run.mapping import execution_status
from providers.cloud_run.provider import claim_time, location_of
from providers.errors import InvalidJobConfiguration
from tests.providers.harnesses.cloud_run import configuration, job_body

SECRET = {"secret": "prefect-api-key", "version": "latest"}


def cfg(**fields):
    return configuration("prefect flow-run execute", **fields)


def request(configuration, max_runtime_s: int = 3600) -> SubmitRequest:
    attempt = uuid.uuid4()
    return SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=attempt, idempotency_key=f"prefect-{attempt.hex}",
                         workspace="w", pool="p", configuration=configuration,
                         limits=RunLimits(max_runtime_s=max_runtime_s))


# -- the job -----------------------------------------------------------------------------------


def test_the_job_id_is_a_content_hash_independent_of_per_run_values():
    one = requests.build_job(cfg(env={"PREFECT__FLOW_RUN_ID": "a"}, labels={"prefect.io/flow-run-id": "a"}))
    two = requests.build_job(cfg(env={"PREFECT__FLOW_RUN_ID": "b"}, labels={"prefect.io/flow-run-id": "b"}))
    assert one == two and one.job_id.startswith("prefect-") and len(one.job_id) == 32
    other = requests.build_job(cfg(job_body=job_body(image="us-docker.pkg.dev/p/r/other:1")))
    assert other.job_id != one.job_id


def test_the_job_body_is_a_clean_run_v2_job():
    spec = requests.build_job(cfg(keep_job=True, labels={"Team": "Data Eng"}, cloudsql_instances=["p:r:db"],
                                  prefect_api_key_secret=SECRET, env_from_secrets={"TOKEN": SECRET}))
    body = json.loads(spec.body)
    task = body["template"]["template"]
    container = task["containers"][0]
    assert container["command"] == ["prefect", "flow-run", "execute"] and "args" not in container
    assert container["name"] == "prefect" and spec.container_name == "prefect"
    assert {e["name"] for e in container["env"]} == {"TOKEN", "PREFECT_API_KEY"}
    assert all("valueSource" in e for e in container["env"])  # secrets by reference, never by value
    assert task["timeout"] == "600s" and task["maxRetries"] == 0 and "vpcAccess" not in task
    assert "serviceAccount" not in task and task["volumes"][0]["cloudSqlInstance"]["instances"] == ["p:r:db"]
    assert body["labels"]["team"] == "data_eng" and body["labels"]["prefect-keep-job"] == "true"
    assert body["labels"]["prefect-config-hash"] == spec.job_id.removeprefix("prefect-")
    assert body["launchStage"] == "BETA" and body["template"]["taskCount"] == 1


def test_a_custom_template_with_an_unknown_field_is_named():
    with pytest.raises(InvalidJobConfiguration, match="job_body.*Cloud Run v2 Job body"):
        requests.build_job(cfg(job_body=job_body(notAField=1)))


# -- the run -----------------------------------------------------------------------------------


def test_run_overrides_carry_env_marker_args_one_task_and_the_capped_timeout():
    configuration = cfg(env={"PREFECT_API_KEY": "pnu_secretsecretsecret", "X": "1"},
                        job_body=job_body(timeout=7200), timeout=7200)
    configuration.job_body["template"]["template"]["containers"][0]["args"] = ["--flag"]
    req = request(configuration, max_runtime_s=3000)
    run = requests.build_run(configuration, req, requests.build_job(configuration))
    overrides = json.loads(run.body)["overrides"]
    (container,) = overrides["containerOverrides"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env[requests.MARKER_ENV] == req.attempt_id.hex == run.marker
    assert container["args"] == ["--flag"] and container["name"] == "prefect"
    assert overrides["taskCount"] == 1 and overrides["timeout"] == "3000s" and run.timeout_s == 3000
    assert "pnu_secretsecretsecret" in run.secrets and req.attempt_id.hex not in run.secrets
    run_v2.RunJobRequest.from_json(run.body)  # a valid RunJobRequest


def test_an_api_key_from_secret_manager_is_not_sent_in_plain_env():
    configuration = cfg(env={"PREFECT_API_KEY": "pnu_secretsecretsecret"}, prefect_api_key_secret=SECRET)
    run = requests.build_run(configuration, request(configuration), requests.build_job(configuration))
    assert "pnu_secretsecretsecret" not in run.body


def test_the_override_timeout_never_exceeds_24_hours():
    configuration = cfg(job_body=job_body(timeout=300000), timeout=300000)
    assert requests.run_timeout_s(configuration, request(configuration, max_runtime_s=10**6)) == 86400


# -- validation --------------------------------------------------------------------------------


def _limits(cpu: str, memory: str):
    body = job_body()
    body["template"]["template"]["containers"][0]["resources"]["limits"] = {"cpu": cpu, "memory": memory}
    return cfg(job_body=body)


@pytest.mark.parametrize(("cpu", "memory"), [("1000m", "512Mi"), ("1", "4Gi"), ("0.5", "1Gi"), ("2", "8Gi"),
                                             ("4", "2Gi"), ("8", "32Gi"), ("0.25", "512Mi")])
def test_allowed_cpu_memory_pairs(cpu, memory):
    validation.validate(_limits(cpu, memory))


@pytest.mark.parametrize(("cpu", "memory", "field", "allowed"), [
    ("3", "2Gi", "cpu", "between 0.08 and 1 vCPU"),
    ("0.05", "512Mi", "cpu", "between 0.08 and 1 vCPU"),
    ("1", "8Gi", "memory", "for cpu=1 Cloud Run jobs allow memory 512 MiB to 4 GiB"),
    ("0.5", "2Gi", "memory", "512 MiB to 1 GiB"),
    ("4", "1Gi", "memory", "2 GiB to 16 GiB"),
    ("1", "lots", "memory", "a quantity"),
])
def test_refused_cpu_memory_pairs_name_field_value_and_range(cpu, memory, field, allowed):
    with pytest.raises(InvalidJobConfiguration) as refused:
        validation.validate(_limits(cpu, memory))
    assert refused.value.field == field and allowed in refused.value.allowed


@pytest.mark.parametrize(("fields", "field"), [
    ({"region": "US Central"}, "region"),
    ({"job_body": job_body(image="Not An Image")}, "image"),
    ({"env": {"CLOUD_RUN_JOB": "x"}}, "env"),
    ({"env": {"A=B": "x"}}, "env"),
    ({"job_body": job_body(serviceAccount="not-an-email")}, "service_account_name"),
    ({"job_body": job_body(vpcAccess={"connector": "Bad_Name"})}, "vpc_connector_name"),
    ({"job_body": job_body(maxRetries=11)}, "max_retries"),
])
def test_bad_values_are_refused_before_any_call(fields, field):
    with pytest.raises(InvalidJobConfiguration) as refused:
        validation.validate(cfg(**fields))
    assert refused.value.field == field


def test_timeouts_over_24_hours_need_a_preview_launch_stage():
    body = job_body(timeout=100000)
    validation.validate(cfg(job_body=body, timeout=100000))  # BETA: up to 168 h
    body["launchStage"] = "GA"
    with pytest.raises(InvalidJobConfiguration, match="launch_stage BETA"):
        validation.validate(cfg(job_body=body, timeout=100000))


def test_resources_in_the_dispatchers_units():
    found = validation.resources(_limits("2", "3Gi"))
    assert (found.vcpu, found.memory_mib, found.fields["vcpu"]) == (2.0, 3072, "cpu")


# -- mapping -----------------------------------------------------------------------------------

NAME = "projects/p/locations/us-central1/jobs/prefect-abc/executions/prefect-abc-x1y2z"
LOG = "https://console.cloud.google.com/logs/viewer?project=p"


def execution(state: str, reason: str | None = None, message: str = "", *, started: bool = True,
              completed: bool = True, int_enums: bool = False, **extra) -> run_v2.Execution:
    condition = {"type": "Completed", "state": state, "message": message}
    if reason:
        condition["executionReason"] = reason
    if int_enums:  # the GAPIC encoding; the parser takes both
        condition["state"] = run_v2.Condition.State[state].value
        if reason:
            condition["executionReason"] = run_v2.Condition.ExecutionReason[reason].value
    body = {"name": NAME, "logUri": LOG, "conditions": [condition], **extra}
    if started:
        body["startTime"] = "2026-01-01T00:00:00Z"
    if completed:
        body["completionTime"] = "2026-01-01T00:01:30.5Z"
    return run_v2.Execution.from_json(json.dumps(body))


@pytest.mark.parametrize("int_enums", [False, True])
def test_success_with_either_enum_encoding(int_enums):
    status = execution_status(execution("CONDITION_SUCCEEDED", int_enums=int_enums), NAME)
    assert (status.phase, status.exit_code, status.stop_cause) == (InfraPhase.EXITED, 0, StopCause.EXITED)
    assert (status.stopped_at - status.started_at).total_seconds() == 90.5


@pytest.mark.parametrize(("state", "reason", "message", "extra", "phase", "cause", "exit_code"), [
    ("CONDITION_FAILED", "NON_ZERO_EXIT_CODE", "Task t-task0 failed with exit code: 3 and message: x", {},
     InfraPhase.EXITED, StopCause.EXITED, 3),
    ("CONDITION_FAILED", "CANCELLED", "The execution was cancelled.", {}, InfraPhase.EXITED, StopCause.STOPPED, None),
    ("CONDITION_FAILED", "DELETED", "", {}, InfraPhase.EXITED, StopCause.STOPPED, None),
    ("CONDITION_FAILED", None, "Task t-task0 failed with message: The configured timeout was reached.", {},
     InfraPhase.EXITED, StopCause.TIMED_OUT, None),
    ("CONDITION_FAILED", None, "something odd", {}, InfraPhase.EXITED, StopCause.UNKNOWN, None),
    ("CONDITION_RECONCILING", "CANCELLING", "", {}, InfraPhase.RUNNING, None, None),
    ("CONDITION_RECONCILING", None, "", {"retriedCount": 1}, InfraPhase.RUNNING, None, None),
    ("STATE_UNSPECIFIED", None, "", {}, InfraPhase.UNKNOWN, None, None),
])
def test_every_state_maps_explicitly(state, reason, message, extra, phase, cause, exit_code):
    completed = state == "CONDITION_FAILED"
    status = execution_status(execution(state, reason, message, completed=completed, **extra), NAME)
    assert (status.phase, status.stop_cause, status.exit_code) == (phase, cause, exit_code)
    if phase == InfraPhase.EXITED:
        assert LOG in status.reason


def test_pending_before_start_and_start_failures():
    assert execution_status(execution("CONDITION_PENDING", started=False, completed=False), NAME).phase == \
        InfraPhase.PENDING
    failed = execution("CONDITION_FAILED", None, "Image 'x' not found.", started=False)
    status = execution_status(failed, NAME)
    assert status.stop_cause == StopCause.FAILED_TO_START and "Image 'x' not found." in status.reason


def test_no_completed_condition_is_unknown_never_success():
    status = execution_status(run_v2.Execution(name=NAME), NAME)
    assert status.phase == InfraPhase.UNKNOWN


def test_names_and_claim_times():
    assert location_of(NAME) == "projects/p/locations/us-central1"
    with pytest.raises(ValueError):
        location_of("arn:aws:ecs:task/x")
    v7 = uuid.UUID(int=(1_767_225_600_000 << 80) | (7 << 76) | (2 << 62))
    assert claim_time(v7).isoformat() == "2026-01-01T00:00:00+00:00" and claim_time(uuid.uuid4()) is None


# -- errors and checks -------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": status, "status": code, "message": message}}).encode()


def test_http_answers_become_the_error_tree_without_secrets():
    from providers.cloud_run.errors import ConflictError, FailedPrecondition, Throttled, translate
    from providers.errors import CredentialsError, InfrastructureNotFound, TransientProviderError

    throttled = translate("RunJob", 429, _error(429, "RESOURCE_EXHAUSTED", "Quota exceeded"), {"retry-after": "7"})
    assert isinstance(throttled, Throttled) and throttled.retry_after == 7.0
    assert isinstance(translate("RunJob", 503, _error(503, "UNAVAILABLE", "x")), TransientProviderError)
    assert isinstance(translate("RunJob", 403, _error(403, "PERMISSION_DENIED", "x")), CredentialsError)
    assert isinstance(translate("GetJob", 404, _error(404, "NOT_FOUND", "x")), InfrastructureNotFound)
    assert isinstance(translate("CreateJob", 409, _error(409, "ALREADY_EXISTS", "x")), ConflictError)
    assert isinstance(translate("RunJob", 400, _error(400, "FAILED_PRECONDITION", "x")), FailedPrecondition)
    echoed = translate("RunJob", 400, _error(400, "INVALID_ARGUMENT", "bad env value pnu_secretsecret"),
                       secrets=("pnu_secretsecret",))
    assert "pnu_secretsecret" not in str(echoed) and "***" in str(echoed)
    assert "Cloud Run RunJob failed" in str(translate("RunJob", 502, b"<html>bad gateway</html>"))


async def test_check_reports_credentials_without_calling_cloud_run(tmp_path):
    from providers.cloud_run import CloudRunSettings
    from providers.cloud_run.checks import check_cloud_run_settings

    bad = CloudRunSettings(credentials={"service_account_info": {"type": "service_account"}, "project": "p"})
    findings = await check_cloud_run_settings(bad)
    assert findings[-1].level == "warn" and "no usable GCP credentials" in findings[-1].message
    anonymous = await check_cloud_run_settings(CloudRunSettings(anonymous=True))
    assert [f.level for f in anonymous] == ["ok", "warn"]
