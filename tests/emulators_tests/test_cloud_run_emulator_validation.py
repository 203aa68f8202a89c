"""What Cloud Run checks beyond the schema: sizes, ids, labels, env, counts, retries, timeouts, overrides."""

from __future__ import annotations

import pytest
from google.api_core import exceptions

from tests.emulators.cloud_run.validation import (
    parse_cpu,
    parse_quantity,
    resource_violations,
)
from tests.emulators_tests.cloud_run_helpers import clients, create, raw, raw_job, run

LIMITS = "job.template.template.containers[0].resources.limits"


def violations_of(exc: exceptions.GoogleAPICallError) -> list[str]:
    return [v["field"] for d in exc.details for v in d.get("fieldViolations", [])]


@pytest.mark.parametrize(("cpu", "memory"), [("1", "512Mi"), ("1000m", "4Gi"), ("0.5", "1Gi"), ("2", "8Gi"),
                                             ("4", "2Gi"), ("8", "32Gi"), ("0.08", "512Mi")])
def test_allowed_cpu_memory_pairs(cpu, memory):
    assert resource_violations("limits", cpu, memory) == []


@pytest.mark.parametrize(("cpu", "memory", "field"), [
    ("1", "8Gi", "memory"),      # 1 vCPU: at most 4 GiB
    ("4", "1Gi", "memory"),      # 4 vCPU: at least 2 GiB
    ("0.25", "1Gi", "memory"),   # under 0.5 vCPU: at most 512 MiB
    ("1", "256Mi", "memory"),    # second generation: at least 512 MiB
    ("3", "4Gi", "cpu"),         # above 1 vCPU: 2, 4, 6 or 8
    ("16", "32Gi", "cpu"),
    ("lots", "1Gi", "cpu"),
    ("1", "1 gig", "memory"),
])
def test_refused_cpu_memory_pairs(cpu, memory, field):
    (found,) = resource_violations("limits", cpu, memory)
    assert found[0] == f"limits.{field}"


def test_quantities():
    assert parse_cpu("1000m") == 1.0 and parse_cpu("0.5") == 0.5 and parse_cpu("1.5x") is None
    assert parse_quantity("512Mi") == 512 * 2**20 and parse_quantity("1G") == 10**9 and parse_quantity("") is None


def test_invalid_cpu_memory_answer_400_naming_the_field(cr):
    jobs, _, _ = clients(cr)
    with pytest.raises(exceptions.BadRequest, match="For 1 CPU, memory must be between 512Mi and 4Gi") as caught:
        create(jobs, cr, cpu="1", memory="16Gi")
    assert violations_of(caught.value) == [f"{LIMITS}.memory"] and cr.jobs == {}


@pytest.mark.parametrize(("job_id", "ok"), [("a", True), ("cfg-abc123", True), ("a" * 63, True), ("a" * 64, False),
                                            ("1abc", False), ("Abc", False), ("abc-", False), ("a_b", False)])
def test_job_id_is_rfc_1035(cr, job_id, ok):
    status, body = raw(cr, "POST", f"/v2/{cr.parent}/jobs", raw_job(), query=f"jobId={job_id}")
    assert (status == 200) == ok
    if not ok:
        assert body["error"]["details"][0]["fieldViolations"][0]["field"] == "job_id"


@pytest.mark.parametrize(("change", "field"), [
    ({"labels": {"Team": "a"}}, "job.labels"),
    ({"labels": {"team": "A B"}}, "job.labels"),
    ({"annotations": {"run.googleapis.com/launch-stage": "BETA"}}, "job.annotations"),
    ({"launchStage": "DEPRECATED"}, "job.launch_stage"),
    ({"template": {"taskCount": -1, "template": {"containers": [{"image": "i"}]}}}, "job.template.taskCount"),
    ({"template": {"template": {"maxRetries": 11, "containers": [{"image": "i"}]}}},
     "job.template.template.max_retries"),
    ({"template": {"template": {"timeout": "90000s", "containers": [{"image": "i"}]}}},
     "job.template.template.timeout"),
    ({"template": {"template": {"containers": []}}}, "job.template.template.containers"),
    ({"template": {"template": {"containers": [{"name": "c"}]}}}, "job.template.template.containers[0].image"),
    ({"template": {"template": {"containers": [{"image": "i", "env": [{"name": "CLOUD_RUN_JOB", "value": "x"}]}]}}},
     "job.template.template.containers[0].env[0].name"),
    ({"template": {"template": {"containers": [{"image": "i", "env": [{"name": "A=B"}]}]}}},
     "job.template.template.containers[0].env[0].name"),
    ({"template": {"template": {"containers": [{"image": "i", "env": [{"name": "A"}, {"name": "A"}]}]}}},
     "job.template.template.containers[0].env[1].name"),
])
def test_service_rules_answer_400_naming_the_field(cr, change, field):
    status, body = raw(cr, "POST", f"/v2/{cr.parent}/jobs", raw_job() | change, query="jobId=checked")
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT"), body
    assert [v["field"] for v in body["error"]["details"][0]["fieldViolations"]] == [field]
    assert field in body["error"]["message"]


def test_timeouts_past_24_hours_need_a_preview_launch_stage(cr):
    path = f"/v2/{cr.parent}/jobs"
    three_days = raw_job()
    three_days["template"]["template"]["timeout"] = f"{72 * 3600}s"
    assert raw(cr, "POST", path, three_days, query="jobId=ga")[0] == 400
    assert raw(cr, "POST", path, three_days | {"launchStage": "BETA"}, query="jobId=beta")[0] == 200
    eight_days = three_days | {"launchStage": "BETA"}
    eight_days["template"]["template"]["timeout"] = f"{8 * 86400}s"
    assert raw(cr, "POST", path, eight_days, query="jobId=too-long")[0] == 400


def test_overrides_are_checked_against_the_job(cr):
    jobs, _, _ = clients(cr)
    name = create(jobs, cr).name
    path = f"/v2/{name}:run"
    status, body = raw(cr, "POST", path, {"overrides": {"containerOverrides": [{"name": "other", "args": ["x"]}]}})
    assert status == 400 and body["error"]["details"][0]["fieldViolations"][0]["field"] == (
        "overrides.containerOverrides[0].name")
    status, body = raw(cr, "POST", path, {"overrides": {"timeout": "100000s"}})
    assert status == 400 and "overrides.timeout" in body["error"]["message"]
    status, body = raw(cr, "POST", path, {"overrides": {"containerOverrides": [{"name": "job", "env": [
        {"name": "CLOUD_RUN_TASK_INDEX", "value": "7"}]}]}})
    assert status == 400 and "reserved env names" in body["error"]["message"]
    status, body = raw(cr, "POST", path, {"overrides": {"containerOverrides": [{"name": "job", "resources": {}}]}})
    assert status == 400 and 'Unknown name "resources"' in body["error"]["message"]  # no cpu/memory/image overrides
    assert cr.executions == {}
    run(jobs, name, env={"RUN_ID": "r1"})  # a good override still runs
    assert len(cr.executions) == 1
