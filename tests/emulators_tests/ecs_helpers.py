"""Helpers shared by the ECS emulator tests: real boto3 clients and small request builders."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from tests.emulators.ecs import EcsEmulator

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-0abc"], "securityGroups": ["sg-0abc"]}}
# botocore's ``max_attempts`` counts retries (total attempts = max_attempts + 1);
# ``total_max_attempts`` is the setting that really means "one attempt".
NO_RETRY = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
ECS_TARGET = "AmazonEC2ContainerServiceV20141113"
LOG_OPTIONS = {"awslogs-group": "/ecs/flows", "awslogs-stream-prefix": "prefect", "awslogs-region": REGION}


def client(emu: EcsEmulator, service: str = "ecs", **config):
    return boto3.client(service, endpoint_url=emu.endpoint_url, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(**config) if config else None)


def register(ecs, family="flow", command=None, env=None, awslogs=False, **extra) -> dict:
    container = {"name": "flow", "image": "prefecthq/prefect:3-latest", "essential": True}
    if command is not None:
        container["command"] = command
    if env:
        container["environment"] = [{"name": k, "value": v} for k, v in env.items()]
    if awslogs:
        container["logConfiguration"] = {"logDriver": "awslogs", "options": LOG_OPTIONS}
    params = dict(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
                  memory="512", executionRoleArn=ROLE, containerDefinitions=[container])
    return ecs.register_task_definition(**(params | extra))["taskDefinition"]


def run(ecs, td="flow", **kw) -> dict:
    params = dict(taskDefinition=td, launchType="FARGATE", networkConfiguration=NETWORK) | kw
    return ecs.run_task(**{k: v for k, v in params.items() if v is not None})


def env_override(**env) -> dict:
    return {"containerOverrides": [{"name": "flow", "environment": [
        {"name": k, "value": str(v)} for k, v in env.items()]}]}


def wait_status(ecs, arn, status="STOPPED", timeout=10.0, **kw) -> tuple[dict, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = ecs.describe_tasks(tasks=[arn], **kw)["tasks"][0]
        if not seen or seen[-1] != task["lastStatus"]:
            seen.append(task["lastStatus"])
        if task["lastStatus"] == status:
            return task, seen
        time.sleep(0.005)
    raise AssertionError(f"{arn} never reached {status}; saw {seen}")


def error(excinfo) -> tuple[str, str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def raw_call(emu, target: str, body: bytes, sign_region=REGION, service="ecs", sign=True) -> tuple[int, dict]:
    request = AWSRequest(method="POST", url=emu.endpoint_url + "/", data=body,
                         headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    if sign:
        SigV4Auth(Credentials("test", "test"), service, sign_region).add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(prepared.url, data=body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def python_task(ecs, code: str, **kw) -> dict:
    return register(ecs, command=["python", "-c", code], awslogs=True, **kw)


def stream_of(arn: str) -> str:
    return f"prefect/flow/{arn.rsplit('/', 1)[1]}"


def living_in_group(pgid: int) -> list[int]:
    """Pids of the group's processes that are not dead (zombies awaiting init count as dead)."""
    alive = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in "ZX" and int(fields[2]) == pgid:
            alive.append(int(entry))
    return alive


def fargate_td(**change) -> dict:
    td = dict(family="f", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
              executionRoleArn=ROLE, containerDefinitions=[{"name": "c", "image": "i", "logConfiguration": {
                  "logDriver": "awslogs", "options": LOG_OPTIONS}}])
    return {k: v for k, v in (td | change).items() if v is not None}
