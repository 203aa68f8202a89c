"""Execute mode (commands really run), awslogs, and the aiobotocore client."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from botocore.exceptions import (
    ClientError,
)

from tests.emulators.ecs import EcsEmulator
from tests.emulators_tests.ecs_helpers import (
    LOG_OPTIONS,
    NETWORK,
    NO_RETRY,
    REGION,
    client,
    env_override,
    error,
    fargate_td,
    living_in_group,
    python_task,
    register,
    run,
    stream_of,
    wait_status,
)

# -- execute mode and awslogs -----------------------------------------------------------------


def test_execute_exit_codes_and_logs(live):
    ecs, logs = client(live), client(live, "logs")
    python_task(ecs, "import os, sys; print('hello', os.environ['GREETING']); print('oops', file=sys.stderr); "
                     "sys.exit(int(os.environ.get('CODE', '0')))", env={"GREETING": "world"})
    ok = run(ecs)["tasks"][0]["taskArn"]
    failed = run(ecs, overrides=env_override(CODE=3))["tasks"][0]["taskArn"]
    done, _ = wait_status(ecs, ok)
    assert [status for status, _ in live.tasks[ok].history][-3:] == ["RUNNING", "DEPROVISIONING", "STOPPED"]
    assert done["containers"][0]["exitCode"] == 0 and done["stopCode"] == "EssentialContainerExited"
    assert wait_status(ecs, failed)[0]["containers"][0]["exitCode"] == 3
    events = logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(ok), startFromHead=True)
    assert sorted(e["message"] for e in events["events"]) == ["hello world", "oops"]
    assert all(set(e) == {"timestamp", "message", "ingestionTime"} for e in events["events"])
    tail = logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(ok),
                               nextToken=events["nextForwardToken"])
    assert tail["events"] == [] and tail["nextForwardToken"] == events["nextForwardToken"]


def test_execute_command_override_and_environment(live):
    ecs = client(live)
    register(ecs, command=["python", "-c", "print('from the task definition')"])
    code = "import os; print(os.environ.get('AWS_REGION'), os.environ.get('SECRET_FROM_HOST', 'clean'))"
    overrides = {"containerOverrides": [{"name": "flow", "command": ["python", "-c", code]}]}
    arn = run(ecs, overrides=overrides)["tasks"][0]["taskArn"]
    wait_status(ecs, arn)
    assert live.tasks[arn].output == ["us-east-1 clean"]


def test_stop_task_terminates_the_process_group(live):
    ecs = client(live)
    register(ecs, command=["sh", "-c", "sleep 30"])
    arn = run(ecs)["tasks"][0]["taskArn"]
    wait_status(ecs, arn, "RUNNING")
    assert ecs.stop_task(task=arn)["task"]["lastStatus"] == "STOPPING"
    stopped, _ = wait_status(ecs, arn)
    # 143 = killed by SIGTERM; a SIGKILL after the stop timeout would give 137
    assert stopped["containers"][0]["exitCode"] == 143 and stopped["stopCode"] == "UserInitiated"


def test_processes_left_behind_die_with_the_container(live):
    ecs = client(live)
    register(ecs, command=["sh", "-c", "sleep 30 & echo started"])
    arn = run(ecs)["tasks"][0]["taskArn"]
    stopped, _ = wait_status(ecs, arn)
    assert stopped["containers"][0]["exitCode"] == 0 and live.tasks[arn].output == ["started"]
    assert living_in_group(live.tasks[arn].process.pid) == []  # the orphaned `sleep 30` died too


def test_sigkill_after_the_stop_timeout(live):
    ecs = client(live)
    python_task(ecs, "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                     "print('ready', flush=True); time.sleep(30)")
    arn = run(ecs)["tasks"][0]["taskArn"]
    wait_status(ecs, arn, "RUNNING")
    deadline = time.monotonic() + 5
    while "ready" not in live.tasks[arn].output and time.monotonic() < deadline:
        time.sleep(0.01)
    ecs.stop_task(task=arn)
    assert wait_status(ecs, arn)[0]["containers"][0]["exitCode"] == 137


@pytest.mark.parametrize("command,reason", [
    ([], "CannotStartContainerError: Error response from daemon: No command specified"),
    (["no-such-binary-xyz"], "CannotStartContainerError: ResourceInitializationError"),
])
def test_container_that_cannot_start(live, command, reason):
    ecs = client(live)
    register(ecs, command=command)
    stopped, seen = wait_status(ecs, run(ecs)["tasks"][0]["taskArn"])
    assert "RUNNING" not in seen and stopped["stopCode"] == "TaskFailedToStart"
    assert stopped["stoppedReason"].startswith(reason)


def test_missing_log_group_fails_the_task_when_not_auto_created():
    with EcsEmulator(auto_create_log_groups=False) as emu:
        ecs, logs = client(emu), client(emu, "logs")
        register(ecs, awslogs=True)
        stopped, _ = wait_status(ecs, run(ecs)["tasks"][0]["taskArn"])
        assert stopped["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args")
        logs.create_log_group(logGroupName="/ecs/flows")
        arn = run(ecs)["tasks"][0]["taskArn"]
        assert wait_status(ecs, arn)[0]["stopCode"] == "EssentialContainerExited"
        assert logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(arn))["events"] == []
        with pytest.raises(ClientError) as excinfo:
            logs.get_log_events(logGroupName="/ecs/flows", logStreamName="nope")
        assert error(excinfo)[:2] == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_get_log_events_paging(emu):
    logs = client(emu, "logs")
    emu.create_log_group("/g")
    for i in range(5):
        emu.backend.logs.put("/g", "s", f"line {i}", 1_000 + i)
    head = logs.get_log_events(logGroupName="/g", logStreamName="s", startFromHead=True, limit=2)
    assert [e["message"] for e in head["events"]] == ["line 0", "line 1"]
    following = logs.get_log_events(logGroupName="/g", logStreamName="s", nextToken=head["nextForwardToken"], limit=2)
    assert [e["message"] for e in following["events"]] == ["line 2", "line 3"]
    latest = logs.get_log_events(logGroupName="/g", logStreamName="s", limit=2)
    assert [e["message"] for e in latest["events"]] == ["line 3", "line 4"]
    assert isinstance(latest["events"][0]["timestamp"], int)
    with pytest.raises(ClientError) as excinfo:
        logs.get_log_events(logGroupName="/missing", logStreamName="s")
    assert error(excinfo)[:2] == ("ResourceNotFoundException", "The specified log group does not exist.")


# -- aiobotocore --------------------------------------------------------------------------------

def test_aiobotocore_client(live):
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async def scenario() -> tuple[dict, list[str], str]:
        options = dict(endpoint_url=live.endpoint_url, region_name=REGION, config=AioConfig(**NO_RETRY),
                       aws_access_key_id="test", aws_secret_access_key="test")
        session = get_session()
        async with session.create_client("ecs", **options) as ecs, session.create_client("logs", **options) as logs:
            await ecs.register_task_definition(**fargate_td(family="async", containerDefinitions=[{
                "name": "flow", "image": "i", "command": ["python", "-c", "print('async hello')"],
                "logConfiguration": {"logDriver": "awslogs", "options": LOG_OPTIONS}}]))
            started = await ecs.run_task(taskDefinition="async", launchType="FARGATE", networkConfiguration=NETWORK)
            arn = started["tasks"][0]["taskArn"]
            while (task := (await ecs.describe_tasks(tasks=[arn]))["tasks"][0])["lastStatus"] != "STOPPED":
                await asyncio.sleep(0.01)
            events = await logs.get_log_events(logGroupName="/ecs/flows", logStreamName=stream_of(arn))
            live.faults.throttle_rate = 1.0
            try:
                await ecs.list_clusters()
                code = "none"
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
            return task, [e["message"] for e in events["events"]], code

    task, messages, code = asyncio.run(scenario())
    assert task["containers"][0]["exitCode"] == 0 and isinstance(task["stoppedAt"], datetime)
    assert messages == ["async hello"]
    assert code == "ThrottlingException"
