"""Helpers shared by the Cloud Run emulator tests: official REST clients, job builders, raw calls, waits."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import run_v2
from google.protobuf import duration_pb2

from tests.emulators.cloud_run import CloudRunEmulator

Overrides = run_v2.RunJobRequest.Overrides
ContainerOverride = run_v2.RunJobRequest.Overrides.ContainerOverride


def clients(emu: CloudRunEmulator) -> tuple[run_v2.JobsClient, run_v2.ExecutionsClient, run_v2.TasksClient]:
    """The official sync GAPIC clients over REST, as the reference note's minimal working code."""
    kw = dict(credentials=AnonymousCredentials(), transport="rest",
              client_options=ClientOptions(api_endpoint=emu.endpoint_url))
    return run_v2.JobsClient(**kw), run_v2.ExecutionsClient(**kw), run_v2.TasksClient(**kw)


def job(command: list[str] | None = None, env: dict[str, str] | None = None, *, cpu: str = "1",
        memory: str = "512Mi", timeout_s: int = 3600, max_retries: int = 0, task_count: int = 1,
        parallelism: int = 0, labels: dict[str, str] | None = None) -> run_v2.Job:
    container = run_v2.Container(name="job", image="us-docker.pkg.dev/p/flows/flow@sha256:" + "a" * 64,
                                 command=command or [], env=[run_v2.EnvVar(name=k, value=v) for k, v in
                                                            (env or {}).items()],
                                 resources=run_v2.ResourceRequirements(limits={"cpu": cpu, "memory": memory}))
    return run_v2.Job(labels=labels or {"cfg-hash": "abc123"}, template=run_v2.ExecutionTemplate(
        task_count=task_count, parallelism=parallelism, template=run_v2.TaskTemplate(
            max_retries=max_retries, timeout=duration_pb2.Duration(seconds=timeout_s), containers=[container])))


def create(jobs: run_v2.JobsClient, emu: CloudRunEmulator, job_id: str = "cfg-abc123", **kw) -> run_v2.Job:
    return jobs.create_job(parent=emu.parent, job_id=job_id, job=job(**kw)).result()


def run(jobs: run_v2.JobsClient, name: str, args: list[str] | None = None, env: dict[str, str] | None = None,
        **overrides: Any):
    """RunJob with overrides (args, env, task_count, timeout); returns the operation."""
    container = ContainerOverride(name="job", args=args or [], env=[
        run_v2.EnvVar(name=k, value=v) for k, v in (env or {}).items()])
    return jobs.run_job(request=run_v2.RunJobRequest(name=name, overrides=Overrides(
        container_overrides=[container] if args or env else [], **overrides)))


def wait_done(executions: run_v2.ExecutionsClient, name: str, timeout: float = 10.0) -> run_v2.Execution:
    """Poll GetExecution until completionTime is set (what a real client waits on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ex = executions.get_execution(name=name)
        if ex.completion_time:
            return ex
        time.sleep(0.01)
    raise AssertionError(f"{name} did not complete: {ex.conditions}")


def completed(ex: run_v2.Execution) -> run_v2.Condition:
    return next(c for c in ex.conditions if c.type_ == "Completed")


def raw(emu: CloudRunEmulator, method: str, path: str, body: Any = None, query: str = "",
        **headers: str) -> tuple[int, Any]:
    """One request without a client library: status and JSON body."""
    host, port = emu.endpoint_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        target = f"{path}?{query}" if query else path
        connection.request(method, target, body=data, headers={"Content-Type": "application/json", **{
            k.replace("_", "-"): v for k, v in headers.items()}})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def raw_job(image: str = "img", **container: Any) -> dict[str, Any]:
    """A Job body as Prefect's worker sends it: camelCase JSON, enum names."""
    return {"launchStage": "GA", "template": {"taskCount": 1, "template": {
        "maxRetries": 0, "timeout": "600s", "containers": [{"name": "job", "image": image, **container}]}}}
