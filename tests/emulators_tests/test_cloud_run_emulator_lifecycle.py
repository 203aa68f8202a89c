"""Executions through their lifecycle: conditions, counts, times, failures, retries, timeouts, cancel, delete."""

from __future__ import annotations

import time

import pytest
from google.api_core import exceptions
from google.api_core.future.polling import DEFAULT_POLLING
from google.cloud import run_v2

from tests.emulators.cloud_run import CloudRunEmulator, Faults
from tests.emulators_tests.cloud_run_helpers import (
    clients,
    completed,
    create,
    job,
    raw,
    run,
    wait_done,
)

State = run_v2.Condition.State
Reason = run_v2.Condition.ExecutionReason
FAST_POLLING = DEFAULT_POLLING.with_delay(initial=0.02, maximum=0.05)


def wait_running(executions, name: str, timeout: float = 10.0) -> run_v2.Execution:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ex = executions.get_execution(name=name)
        if ex.running_count:
            return ex
        time.sleep(0.01)
    raise AssertionError(f"{name} never ran a task")


def test_a_successful_execution_from_pending_to_completed():
    with CloudRunEmulator(pending_s=0.2) as emu:
        jobs, executions, _ = clients(emu)
        created = create(jobs, emu)
        operation = run(jobs, created.name)
        pending = operation.metadata
        assert not pending.start_time and pending.reconciling
        assert completed(pending).state == State.CONDITION_RECONCILING
        assert {c.type_: c.state for c in pending.conditions} == {
            "Completed": State.CONDITION_RECONCILING, "ResourcesAvailable": State.CONDITION_RECONCILING,
            "Started": State.CONDITION_RECONCILING, "ContainerReady": State.CONDITION_RECONCILING}
        done = operation.result(polling=FAST_POLLING)  # the RunJob operation ends with the execution
        assert done.succeeded_count == 1 and not done.reconciling and done.running_count == 0
        assert done.create_time <= done.start_time <= done.completion_time
        messages = {c.type_: c.message for c in done.conditions}
        assert messages["Completed"].startswith("Execution completed successfully in ")
        assert messages["Started"].startswith("Started deployed execution in ")
        assert messages["ResourcesAvailable"] == "Provisioned imported containers."
        assert done.log_uri.startswith("https://console.cloud.google.com/logs/viewer?project=emulated-project")
        latest = jobs.get_job(name=created.name).latest_created_execution
        assert latest.name == done.name and latest.completion_status == latest.CompletionStatus.EXECUTION_SUCCEEDED
        assert jobs.get_job(name=created.name).execution_count == 1
        assert emu.errors == []


def test_a_failed_task_fails_the_execution_and_its_operation(cr):
    jobs, executions, tasks = clients(cr)
    operation = run(jobs, create(jobs, cr).name, env={"EMULATOR_EXIT_CODE": "3"})
    with pytest.raises(exceptions.GoogleAPICallError, match="failed with exit code: 3"):
        operation.result(polling=FAST_POLLING)
    ex = executions.get_execution(name=operation.metadata.name)
    condition = completed(ex)
    assert condition.state == State.CONDITION_FAILED and condition.execution_reason == Reason.NON_ZERO_EXIT_CODE
    short = ex.name.rsplit("/", 1)[1]
    assert condition.message == (f"Task {short}-task0 failed with exit code: 3 and message: "
                                 "The container exited with an error.")
    assert (ex.failed_count, ex.succeeded_count, ex.retried_count) == (1, 0, 0)
    (task,) = tasks.list_tasks(parent=ex.name)
    assert task.last_attempt_result.exit_code == 3 and task.last_attempt_result.status.code == 2


def test_a_bad_emulator_env_value_is_cloud_runs_own_400(cr):
    jobs, _, _ = clients(cr)
    with pytest.raises(exceptions.BadRequest, match="Emulator: bad EMULATOR_RUN_SECONDS/EMULATOR_EXIT_CODE value"):
        run(jobs, create(jobs, cr).name, env={"EMULATOR_RUN_SECONDS": "soon"})
    assert cr.executions == {}


def test_failed_attempts_are_retried_up_to_max_retries(cr):
    jobs, executions, tasks = clients(cr)
    name = create(jobs, cr, max_retries=2, task_count=2).name
    ex = wait_done(executions, run(jobs, name, env={"EMULATOR_EXIT_CODE": "1"}).metadata.name)
    assert (ex.failed_count, ex.retried_count) == (2, 2)  # both tasks retried at least once
    assert [t.retried for t in tasks.list_tasks(parent=ex.name)] == [2, 2]  # 3 attempts each


def test_the_task_timeout_is_a_deadline_exceeded_failure(cr):
    jobs, executions, tasks = clients(cr)
    operation = run(jobs, create(jobs, cr).name, env={"EMULATOR_RUN_SECONDS": "30"}, timeout={"seconds": 1})
    ex = wait_done(executions, operation.metadata.name)
    short = ex.name.rsplit("/", 1)[1]
    assert completed(ex).message == f"Task {short}-task0 failed with message: The configured timeout was reached."
    assert 1.0 <= (ex.completion_time - ex.start_time).total_seconds() < 30
    (task,) = tasks.list_tasks(parent=ex.name)
    assert task.last_attempt_result.status.code == 4  # DEADLINE_EXCEEDED


def test_parallelism_limits_the_tasks_running_at_once(cr):
    jobs, executions, tasks = clients(cr)
    name = create(jobs, cr, task_count=3, parallelism=1).name
    ex = wait_done(executions, run(jobs, name, env={"EMULATOR_RUN_SECONDS": "0.05"}).metadata.name)
    assert ex.parallelism == 1 and ex.succeeded_count == 3
    ordered = sorted(tasks.list_tasks(parent=ex.name), key=lambda t: t.index)
    for before, after in zip(ordered, ordered[1:]):
        assert after.start_time >= before.completion_time


def test_cancel_a_running_execution(cr):
    jobs, executions, _ = clients(cr)
    operation = run(jobs, create(jobs, cr).name, env={"EMULATOR_RUN_SECONDS": "60"})
    running = wait_running(executions, operation.metadata.name)
    assert completed(running).state == State.CONDITION_RECONCILING and running.start_time
    cancelled = executions.cancel_execution(name=running.name).result(polling=FAST_POLLING)
    condition = completed(cancelled)
    assert condition.execution_reason == Reason.CANCELLED and cancelled.cancelled_count == 1
    assert cancelled.completion_time and cancelled.running_count == 0
    assert operation.result(polling=FAST_POLLING).cancelled_count == 1  # a cancelled run completes without error
    with pytest.raises(exceptions.BadRequest, match="already completed"):
        executions.cancel_execution(name=running.name)
    assert cr.permissions["run.executions.cancel"] == 2


def test_cancel_before_start_cancels_every_task():
    with CloudRunEmulator(pending_s=30) as emu:
        jobs, executions, _ = clients(emu)
        name = run(jobs, create(jobs, emu, task_count=3).name).metadata.name
        cancelled = executions.cancel_execution(name=name).result(polling=FAST_POLLING)
        assert cancelled.cancelled_count == 3 and not cancelled.start_time and emu.errors == []


def test_delete_an_execution_and_a_job_with_its_executions(cr):
    jobs, executions, _ = clients(cr)
    created = create(jobs, cr)
    kept = run(jobs, created.name, env={"EMULATOR_RUN_SECONDS": "60"}).metadata.name
    gone = wait_done(executions, run(jobs, created.name).metadata.name).name
    deleted = executions.delete_execution(name=gone).result()
    assert deleted.delete_time and deleted.name == gone
    with pytest.raises(exceptions.NotFound, match="of kind 'EXECUTION'"):
        executions.get_execution(name=gone)
    job_gone = jobs.delete_job(name=created.name).result()  # a running execution goes with its job
    assert job_gone.delete_time
    with pytest.raises(exceptions.NotFound):
        executions.get_execution(name=kept)
    assert list(jobs.list_jobs(parent=cr.parent)) == [] and cr.executions == {}
    with pytest.raises(exceptions.NotFound):
        jobs.delete_job(name=created.name)


def test_start_failure_is_an_image_pull_error():
    with CloudRunEmulator(faults=Faults(start_failures=1)) as emu:
        jobs, executions, _ = clients(emu)
        name = create(jobs, emu).name
        failed = wait_done(executions, run(jobs, name).metadata.name)
        image = failed.template.containers[0].image
        assert completed(failed).message == f"Image '{image}' not found." and not failed.start_time
        ready = next(c for c in failed.conditions if c.type_ == "ContainerReady")
        assert ready.state == State.CONDITION_FAILED and failed.failed_count == 1
        assert wait_done(executions, run(jobs, name).metadata.name).succeeded_count == 1  # one failure only
        assert emu.faults.start_failures == 0 and emu.errors == []


def test_a_job_with_a_missing_image_never_gets_ready():
    image = job().template.template.containers[0].image
    with CloudRunEmulator(faults=Faults(missing_images={image})) as emu:
        jobs, _, _ = clients(emu)
        with pytest.raises(exceptions.GoogleAPICallError, match="not found"):
            create(jobs, emu)
        ready = jobs.get_job(name=f"{emu.parent}/jobs/cfg-abc123").terminal_condition
        assert ready.state == State.CONDITION_FAILED and ready.reason == ready.CommonReason.CONTAINER_MISSING
        status, body = raw(emu, "POST", f"/v2/{emu.parent}/jobs/cfg-abc123:run", {})
        assert (status, body["error"]["status"]) == (400, "FAILED_PRECONDITION") and emu.errors == []


def test_a_job_takes_job_ready_s_to_get_ready():
    with CloudRunEmulator(job_ready_s=2.0) as emu:  # the checks before Ready take milliseconds
        jobs, _, _ = clients(emu)
        operation = jobs.create_job(parent=emu.parent, job_id="slow", job=job())
        assert not operation.operation.done
        assert jobs.get_job(name=f"{emu.parent}/jobs/slow").reconciling
        with pytest.raises(exceptions.BadRequest, match="not ready yet"):
            jobs.run_job(name=f"{emu.parent}/jobs/slow")
        assert operation.result(polling=FAST_POLLING).terminal_condition.state == State.CONDITION_SUCCEEDED
        jobs.run_job(name=f"{emu.parent}/jobs/slow")
        assert emu.errors == []


def test_completed_executions_beyond_the_retention_are_deleted():
    with CloudRunEmulator(retained_executions=2) as emu:
        jobs, executions, _ = clients(emu)
        name = create(jobs, emu).name
        names = []
        for _ in range(3):
            names.append(run(jobs, name).metadata.name)
            wait_done(executions, names[-1])
        names.append(run(jobs, name).metadata.name)  # the fourth run prunes the oldest completed one
        assert sorted(emu.executions) == sorted(names[1:]) and emu.errors == []
