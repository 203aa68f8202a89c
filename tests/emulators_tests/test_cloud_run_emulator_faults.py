"""Fault knobs on the Cloud Run wire (shared kit dice, Cloud Run's answers), quotas and the call counters."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.emulators.cloud_run import CloudRunEmulator, Faults
from tests.emulators.kit import RateLimit
from tests.emulators_tests.cloud_run_helpers import clients, create, raw, run


def test_throttling_is_429_resource_exhausted_and_not_carried_out(cr):
    jobs, _, _ = clients(cr)
    cr.faults = Faults(throttle_rate=1.0)
    with pytest.raises(exceptions.TooManyRequests) as caught:
        create(jobs, cr)
    assert "Resource has been exhausted" in caught.value.message
    assert caught.value.details[0]["reason"] == "RATE_LIMIT_EXCEEDED" and cr.jobs == {}
    assert cr.calls["CreateJob"] == 1 and cr.permissions["run.jobs.create"] == 1


def test_server_errors_are_503_unavailable_and_not_carried_out(cr):
    jobs, _, _ = clients(cr)
    cr.faults = Faults(server_error_rate=1.0)
    with pytest.raises(exceptions.ServiceUnavailable):
        create(jobs, cr)
    assert cr.jobs == {}


def test_latency_and_jitter_delay_every_call(cr):
    jobs, _, _ = clients(cr)
    cr.faults = Faults(latency_s=0.2, latency_jitter_s=0.1, ops={"RunJob"})  # ops does not filter latency
    started = time.monotonic()
    list(jobs.list_jobs(parent=cr.parent))
    assert time.monotonic() - started >= 0.2


def test_accept_then_fail_runs_the_job_then_answers_503(cr):
    """What a dispatcher's idempotency must survive: the execution exists although ``:run`` failed."""
    jobs, executions, _ = clients(cr)
    name = create(jobs, cr).name
    cr.faults = Faults(accept_then_fail=1, ops={"RunJob"})
    with pytest.raises(exceptions.ServiceUnavailable):
        run(jobs, name, env={"RUN_ID": "r1"})
    (ex,) = executions.list_executions(parent=f"{cr.parent}/jobs/-")
    assert [(e.name, e.value) for e in ex.template.containers[0].env] == [("RUN_ID", "r1")]  # findable by marker
    assert jobs.get_job(name=name).latest_created_execution.name == ex.name
    assert cr.faults.accept_then_fail == 0
    run(jobs, name)  # spent: the next run is answered normally
    assert len(cr.executions) == 2 and cr.calls["RunJob"] == 2


def test_lost_responses_hit_reads_too(cr):
    jobs, _, _ = clients(cr)
    name = create(jobs, cr).name
    cr.faults = Faults(lost_responses=1)
    with pytest.raises(exceptions.ServiceUnavailable):
        jobs.get_job(name=name)
    assert jobs.get_job(name=name).name == name


def test_ops_filter_limits_faults_to_named_operations(cr):
    jobs, _, _ = clients(cr)
    name = create(jobs, cr).name
    cr.faults = Faults(throttle_rate=1.0, ops={"RunJob"})
    assert jobs.get_job(name=name).name == name
    with pytest.raises(exceptions.TooManyRequests):
        jobs.run_job(name=name)


def test_run_request_quota_per_minute():
    with CloudRunEmulator(faults=Faults(run_requests_per_minute=2)) as emu:
        jobs, _, _ = clients(emu)
        name = create(jobs, emu).name
        jobs.run_job(name=name)
        jobs.run_job(name=name)
        with pytest.raises(exceptions.TooManyRequests, match="Job run requests per minute per region") as caught:
            jobs.run_job(name=name)
        assert caught.value.details[0]["metadata"]["quota_limit"] == "Job run requests per minute per region"
        assert len(emu.executions) == 2 and jobs.get_job(name=name).name == name  # reads are not run requests
        assert emu.errors == []


def test_per_operation_rate_limits_from_the_kit(cr):
    jobs, _, _ = clients(cr)
    name = create(jobs, cr).name
    cr.faults = Faults(rate_limits={"GetJob": RateLimit(per_s=0.001, burst=1)})
    jobs.get_job(name=name)
    with pytest.raises(exceptions.TooManyRequests):
        jobs.get_job(name=name)


def test_jobs_per_region_quota():
    with CloudRunEmulator(max_jobs=1) as emu:
        jobs, _, _ = clients(emu)
        create(jobs, emu, "one")
        with pytest.raises(exceptions.TooManyRequests, match="Jobs per project per region"):
            create(jobs, emu, "two")
        assert emu.errors == []


def test_calls_and_permissions_are_counted_per_operation(cr):
    jobs, executions, _ = clients(cr)
    name = create(jobs, cr).name
    operation = run(jobs, name, env={"RUN_ID": "r1"})
    executions.get_execution(name=operation.metadata.name)
    list(executions.list_executions(request=run_v2.ListExecutionsRequest(parent=f"{cr.parent}/jobs/-")))
    raw(cr, "GET", f"/v2/{name}/executions/none")  # a 404 is still a call, and still needed the permission
    assert cr.calls == {"CreateJob": 1, "RunJob": 1, "GetExecution": 2, "ListExecutions": 1}
    # Creating a job that runs as a service account also needs actAs on it (what IAM checks).
    assert cr.permissions == {"run.jobs.create": 1, "iam.serviceAccounts.actAs": 1, "run.jobs.run": 1,
                              "run.jobs.runWithOverrides": 1, "run.executions.get": 2, "run.executions.list": 1}
    cr.reset_calls()
    assert cr.calls == {} and cr.permissions == {}
