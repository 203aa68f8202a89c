"""Execute mode: task attempts really run the container's command with the merged env."""

from __future__ import annotations

import json
import time

from google.api_core.future.polling import DEFAULT_POLLING

from tests.emulators_tests.cloud_run_helpers import (
    clients,
    completed,
    create,
    run,
    wait_done,
)

FAST_POLLING = DEFAULT_POLLING.with_delay(initial=0.02, maximum=0.05)
ENV_DUMP = ("import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in ('A', 'B', 'C', 'CLOUD_RUN_JOB', "
            "'CLOUD_RUN_EXECUTION', 'CLOUD_RUN_TASK_INDEX', 'CLOUD_RUN_TASK_ATTEMPT', 'CLOUD_RUN_TASK_COUNT', "
            "'HOST_ONLY')})); print('args', sys.argv[1:], file=sys.stderr)")


def test_a_python_command_runs_with_merged_env_and_args(cr_live, monkeypatch):
    monkeypatch.setenv("HOST_ONLY", "leak")
    jobs, executions, _ = clients(cr_live)
    name = create(jobs, cr_live, command=["python", "-c", ENV_DUMP], env={"A": "1", "B": "2"}).name
    operation = run(jobs, name, args=["x", "y"], env={"B": "3", "C": "4"})
    ex = wait_done(executions, operation.metadata.name)
    assert ex.succeeded_count == 1
    (task,) = cr_live.executions[ex.name].tasks
    args = next(line for line in task.output if line.startswith("args"))  # stderr: its own pipe, any order
    dumped = json.loads(next(line for line in task.output if line.startswith("{")))
    assert dumped == {"A": "1", "B": "3", "C": "4", "CLOUD_RUN_JOB": "cfg-abc123",
                      "CLOUD_RUN_EXECUTION": ex.name.rsplit("/", 1)[1], "CLOUD_RUN_TASK_INDEX": "0",
                      "CLOUD_RUN_TASK_ATTEMPT": "0", "CLOUD_RUN_TASK_COUNT": "1", "HOST_ONLY": None}
    assert args == "args ['x', 'y']" and task.result.exit_code == 0


def test_a_failing_attempt_is_retried_and_sees_its_attempt_number(cr_live):
    jobs, executions, tasks = clients(cr_live)
    code = ("import os, sys; attempt = int(os.environ['CLOUD_RUN_TASK_ATTEMPT']); print(attempt); "
            "sys.exit(5 - 5 * attempt)")
    name = create(jobs, cr_live, command=["python", "-c", code], max_retries=1).name
    ex = wait_done(executions, run(jobs, name).metadata.name)
    assert (ex.succeeded_count, ex.retried_count) == (1, 1)
    assert cr_live.executions[ex.name].tasks[0].output == ["0", "1"]
    (task,) = tasks.list_tasks(parent=ex.name)
    assert task.retried == 1 and task.last_attempt_result.exit_code == 0


def test_a_non_zero_exit_fails_the_execution(cr_live):
    jobs, executions, _ = clients(cr_live)
    name = create(jobs, cr_live, command=["python", "-c", "import sys; sys.exit(7)"]).name
    ex = wait_done(executions, run(jobs, name).metadata.name)
    assert ex.failed_count == 1 and "failed with exit code: 7" in completed(ex).message


def test_the_timeout_stops_the_process(cr_live):
    jobs, executions, _ = clients(cr_live)
    name = create(jobs, cr_live, command=["sh", "-c", "echo up; sleep 30"]).name
    ex = wait_done(executions, run(jobs, name, timeout={"seconds": 1}).metadata.name, timeout=20)
    assert "The configured timeout was reached." in completed(ex).message
    (task,) = cr_live.executions[ex.name].tasks
    assert task.output == ["up"] and task.result.exit_code == 143  # SIGTERM, within the stop grace


def test_cancel_terminates_the_process(cr_live):
    jobs, executions, _ = clients(cr_live)
    name = create(jobs, cr_live, command=["sh", "-c", "echo up; sleep 30"]).name
    ex_name = run(jobs, name).metadata.name
    task = cr_live.executions[ex_name].tasks[0]
    wait_for(lambda: task.output == ["up"])
    cancelled = executions.cancel_execution(name=ex_name).result(polling=FAST_POLLING)
    assert cancelled.cancelled_count == 1 and task.result.exit_code == 143


def test_a_container_without_command_cannot_start_here(cr_live):
    jobs, executions, _ = clients(cr_live)
    ex = wait_done(executions, run(jobs, create(jobs, cr_live).name).metadata.name)
    assert ex.failed_count == 1 and "Application failed to start" in completed(ex).message


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)
