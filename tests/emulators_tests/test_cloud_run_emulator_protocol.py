"""The Cloud Run emulator through the official REST clients and raw HTTP: resources, paging, enums, errors."""

from __future__ import annotations

import pytest
from google.api import launch_stage_pb2
from google.api_core import exceptions
from google.cloud import run_v2
from google.longrunning import operations_pb2

from tests.emulators.cloud_run import Auth, CloudRunEmulator, Faults
from tests.emulators.cloud_run import resources as cr_resources
from tests.emulators_tests.cloud_run_helpers import (
    clients,
    create,
    job,
    raw,
    raw_job,
    run,
    wait_done,
)

READY = run_v2.Condition.State.CONDITION_SUCCEEDED


def test_create_get_and_409_on_an_existing_id(cr):
    jobs, _, _ = clients(cr)
    created = create(jobs, cr)  # CreateJob's operation is done at once: result() makes no poll
    assert created.name == f"{cr.parent}/jobs/cfg-abc123" and cr.calls["GetOperation"] == 0
    got = jobs.get_job(name=created.name)
    assert got.terminal_condition.type_ == "Ready" and got.terminal_condition.state == READY
    assert got.generation == 1 and got.observed_generation == 1 and got.etag and got.uid
    assert got.template.template.max_retries == 0 and got.template.template.timeout.seconds == 3600
    assert got.template.template.service_account == "123456789012-compute@developer.gserviceaccount.com"
    assert not got.latest_created_execution.name and got.execution_count == 0
    with pytest.raises(exceptions.Conflict, match="Resource 'cfg-abc123' already exists."):
        create(jobs, cr)
    with pytest.raises(exceptions.NotFound, match="Resource 'nope' of kind 'JOB' in region 'us-central1'"):
        jobs.get_job(name=f"{cr.parent}/jobs/nope")


def test_defaults_filled_as_cloud_run_does(cr):
    status, body = raw(cr, "POST", f"/v2/{cr.parent}/jobs", raw_job(), query="jobId=plain")
    assert status == 200 and body["done"] is True
    stored = body["response"]["template"]
    assert stored["taskCount"] == 1 and stored["template"]["timeout"] == "600s"
    assert stored["template"]["containers"][0]["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
    del stored["template"]["maxRetries"]
    status, body = raw(cr, "POST", f"/v2/{cr.parent}/jobs", {"template": stored}, query="jobId=unset-retries")
    assert body["response"]["template"]["template"]["maxRetries"] == 3  # absent (a oneof) means 3


def test_list_jobs_pages_with_page_size_and_token(cr):
    jobs, _, _ = clients(cr)
    for i in range(5):
        create(jobs, cr, f"job-{i}")
    pager = jobs.list_jobs(request=run_v2.ListJobsRequest(parent=cr.parent, page_size=2))
    assert [j.name.rsplit("/", 1)[1] for j in pager] == [f"job-{i}" for i in range(5)]
    assert cr.calls["ListJobs"] == 3  # 2 + 2 + 1
    status, first = raw(cr, "GET", f"/v2/{cr.parent}/jobs", query="pageSize=2")
    other = "projects/emulated-project/locations/europe-west1"
    status, body = raw(cr, "GET", f"/v2/{other}/jobs", query=f"pageToken={first['nextPageToken']}")
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT") and "page token" in body["error"]["message"]


def test_run_with_overrides_merges_env_replaces_args_and_needs_run_with_overrides(cr):
    jobs, executions, _ = clients(cr)
    created = create(jobs, cr, command=["python"], env={"A": "1", "B": "2"})
    operation = run(jobs, created.name, args=["-m", "flow"], env={"B": "3", "C": "4"}, task_count=2,
                    timeout={"seconds": 120})
    assert not operation.operation.done  # RunJob's first answer: not done (done() would poll again)
    metadata = operation.metadata  # the Execution, in the first answer
    assert metadata.name.startswith(f"{created.name}/executions/cfg-abc123-") and len(metadata.name.rsplit(
        "-", 1)[1]) == 5
    ex = executions.get_execution(name=metadata.name)
    container = ex.template.containers[0]
    assert [(e.name, e.value) for e in container.env] == [("A", "1"), ("B", "3"), ("C", "4")]
    assert list(container.command) == ["python"] and list(container.args) == ["-m", "flow"]
    assert ex.task_count == 2 and ex.template.timeout.seconds == 120 and ex.job == "cfg-abc123"
    assert cr.permissions["run.jobs.run"] == 1 and cr.permissions["run.jobs.runWithOverrides"] == 1
    wait_done(executions, metadata.name)
    cleared = jobs.run_job(request=run_v2.RunJobRequest(name=created.name, overrides=run_v2.RunJobRequest.Overrides(
        container_overrides=[run_v2.RunJobRequest.Overrides.ContainerOverride(name="job", clear_args=True)])))
    assert not executions.get_execution(name=cleared.metadata.name).template.containers[0].args
    plain = jobs.run_job(name=created.name)
    assert cr.permissions["run.jobs.runWithOverrides"] == 2 and cr.permissions["run.jobs.run"] == 3
    assert executions.get_execution(name=plain.metadata.name).task_count == 1


def test_list_executions_under_a_job_and_under_all_jobs_newest_first(cr):
    jobs, executions, _ = clients(cr)
    first, second = create(jobs, cr, "first"), create(jobs, cr, "second")
    names = [run(jobs, name).metadata.name for name in (first.name, second.name, first.name)]
    every = executions.list_executions(request=run_v2.ListExecutionsRequest(parent=f"{cr.parent}/jobs/-",
                                                                           page_size=2))
    assert [e.name for e in every] == names[::-1] and cr.calls["ListExecutions"] == 2
    mine = executions.list_executions(request=run_v2.ListExecutionsRequest(parent=first.name))
    assert [e.name for e in mine] == [names[2], names[0]]
    status, body = raw(cr, "GET", f"/v2/{cr.parent}/jobs/-/executions", query="filter=labels.run%3Dx")
    assert status == 400 and 'Unknown name "filter": Cannot bind query parameter' in body["error"]["message"]


def test_enum_names_by_default_numbers_when_asked_and_both_accepted(cr):
    path = f"/v2/{cr.parent}/jobs"
    assert raw(cr, "POST", path, raw_job() | {"launchStage": 3}, query="jobId=by-number")[0] == 200  # BETA
    assert raw(cr, "POST", path, raw_job() | {"launchStage": "BETA"}, query="jobId=by-name")[0] == 200
    _, named = raw(cr, "GET", f"{path}/by-number")
    _, numbered = raw(cr, "GET", f"{path}/by-name", query="%24alt=json%3Benum-encoding%3Dint")
    assert named["launchStage"] == "BETA" and named["terminalCondition"]["state"] == "CONDITION_SUCCEEDED"
    assert numbered["launchStage"] == 3 and numbered["terminalCondition"]["state"] == 4
    assert named["generation"] == "1" and named["observedGeneration"] == "1"  # int64 as strings
    assert named["latestCreatedExecution"] == {}  # present before the first run: Prefect reads the key
    jobs, _, _ = clients(cr)  # the GAPIC client sends enum numbers and asks for numbers back
    spec = job()
    spec.launch_stage = "BETA"
    beta = jobs.create_job(parent=cr.parent, job_id="gapic", job=spec).result()
    assert beta.launch_stage == launch_stage_pb2.BETA and raw(cr, "GET", f"{path}/gapic")[1]["launchStage"] == "BETA"


def test_unknown_fields_and_wrong_types_are_400_naming_the_field(cr):
    path = f"/v2/{cr.parent}/jobs"
    body = raw_job()
    body["template"]["template"]["cpuIdle"] = True
    status, answer = raw(cr, "POST", path, body, query="jobId=bad")
    error = answer["error"]
    assert (status, error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"] == ("Invalid JSON payload received. Unknown name \"cpuIdle\" at 'job.template.template': "
                                "Cannot find field.")
    assert error["details"][0]["fieldViolations"][0]["field"] == "job.template.template"
    status, answer = raw(cr, "POST", path, {"template": {"taskCount": "many"}}, query="jobId=bad")
    assert status == 400 and "taskCount" in answer["error"]["message"]
    status, answer = raw(cr, "POST", f"{path}/bad:run", {"overides": {}})
    assert status == 400 and 'Unknown name "overides"' in answer["error"]["message"]
    assert raw(cr, "POST", path, b"{not json", query="jobId=bad")[0] == 400
    assert cr.jobs == {}


def test_operations_get_and_wait(cr):
    jobs, executions, _ = clients(cr)
    operation = run(jobs, create(jobs, cr).name, env={"EMULATOR_RUN_SECONDS": "60"})
    name = operation.operation.name
    assert name.startswith(f"{cr.parent}/operations/")
    pending = jobs.get_operation(operations_pb2.GetOperationRequest(name=name))
    assert not pending.done and pending.metadata.type_url == "type.googleapis.com/google.cloud.run.v2.Execution"
    executions.cancel_execution(name=operation.metadata.name)
    done = jobs.wait_operation(operations_pb2.WaitOperationRequest(name=name, timeout={"seconds": 10}))
    assert done.done and done.response.type_url.endswith("Execution") and not done.HasField("error")
    assert cr.permissions["run.operations.get"] == 2
    cr.faults = Faults(accept_then_fail=1)
    jobs.wait_operation(operations_pb2.WaitOperationRequest(name=name))  # a wait changes nothing: not spent
    assert cr.faults.accept_then_fail == 1
    with pytest.raises(exceptions.NotFound):
        jobs.get_operation(operations_pb2.GetOperationRequest(name=f"{cr.parent}/operations/missing"))


def test_tasks_get_and_list(cr):
    jobs, executions, tasks = clients(cr)
    operation = run(jobs, create(jobs, cr, task_count=3).name, env={"EMULATOR_EXIT_CODE": "0"})
    ex = wait_done(executions, operation.metadata.name)
    listed = list(tasks.list_tasks(request=run_v2.ListTasksRequest(parent=ex.name, page_size=2)))
    assert [t.index for t in listed] == [0, 1, 2] and cr.calls["ListTasks"] == 2
    short = ex.name.rsplit("/", 1)[1]
    assert listed[1].name == f"{ex.name}/tasks/{short}-task1" and listed[1].execution == short
    one = tasks.get_task(name=listed[2].name)
    assert one.last_attempt_result.exit_code == 0 and one.start_time and one.completion_time
    assert cr.permissions["run.tasks.list"] == 2 and cr.permissions["run.tasks.get"] == 1


def test_unknown_paths_404_and_unimplemented_rpcs_501(cr):
    status, body = raw(cr, "GET", "/v1/namespaces/p/jobs")
    assert status == 404 and body["error"]["status"] == "NOT_FOUND"
    status, body = raw(cr, "PATCH", f"/v2/{cr.parent}/jobs/x", {})
    assert (status, body["error"]["status"]) == (501, "UNIMPLEMENTED") and cr.calls["UpdateJob"] == 1


def test_auth_401_without_or_with_a_bad_token_403_without_the_permission():
    auth = Auth(required=True, invalid_tokens={"stale"})
    with CloudRunEmulator(auth=auth) as emu:
        path = f"/v2/{emu.parent}/jobs"
        status, body = raw(emu, "GET", path)
        assert (status, body["error"]["details"][0]["reason"]) == (401, "CREDENTIALS_MISSING")
        assert raw(emu, "GET", path, Authorization="Bearer stale")[0] == 401
        assert raw(emu, "GET", path, Authorization="Bearer anything-else")[0] == 200
        auth.denied_permissions.add("run.jobs.list")
        status, body = raw(emu, "GET", path, Authorization="Bearer anything-else")
        assert status == 403 and body["error"]["details"][0]["metadata"]["permission"] == "run.jobs.list"
        assert emu.calls["ListJobs"] == 4 and emu.errors == []


def test_response_guard_catches_a_broken_response(cr, monkeypatch):
    jobs, executions, _ = clients(cr)
    name = run(jobs, create(jobs, cr).name).metadata.name
    original = cr_resources.Execution.to_api
    monkeypatch.setattr(cr_resources.Execution, "to_api", lambda self: {**original(self), "runningTasks": 1})
    with pytest.raises(exceptions.InternalServerError, match="Emulator bug"):
        executions.get_execution(name=name)
    assert cr.errors == ["GetExecution response breaks its output shape: "
                         'Message type "google.cloud.run.v2.Execution" has no field named "runningTasks" at '
                         '"Execution".']
    monkeypatch.setattr(cr_resources.Execution, "to_api", lambda self: {**original(self), "taskCount": "two"})
    with pytest.raises(exceptions.InternalServerError):
        executions.get_execution(name=name)
    assert len(cr.errors) == 2 and "taskCount" in cr.errors[1]
    cr.errors.clear()


def test_delete_job_with_a_stale_etag_is_409_aborted(cr):
    """DeleteJobRequest.etag: a job that ran since the caller read it is kept."""
    jobs, executions, _ = clients(cr)
    created = create(jobs, cr)
    read = jobs.get_job(name=created.name)
    run(jobs, created.name)
    with pytest.raises(exceptions.Conflict, match="does not match"):
        jobs.delete_job(request=run_v2.DeleteJobRequest(name=created.name, etag=read.etag))
    fresh = jobs.get_job(name=created.name)
    jobs.delete_job(request=run_v2.DeleteJobRequest(name=created.name, etag=fresh.etag)).result()
    assert cr.jobs == {}
