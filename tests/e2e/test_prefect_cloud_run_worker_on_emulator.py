"""Prefect's own Cloud Run worker (prefect-gcp ``CloudRunWorkerV2``) pointed at the Cloud Run emulator.

A sign the emulator is faithful: the upstream worker, with a ``cloud-run-v2``
pool made from its own default base job template, builds its googleapiclient
discovery client (enum names, ``alt=json``), gets an OAuth token for a
service-account key, creates a job, waits for it to be Ready, runs it, watches
the execution and deletes the job; the emulated task really executes
``prefect flow-run execute`` so the ``hello`` flow reaches Completed.

How the worker is pointed at the emulator, without patching prefect-gcp:
- Credentials: a ``GcpCredentials`` block with a generated service-account
  key whose ``token_uri`` is the emulator's ``/token``; google-auth refreshes
  its token there, as it would at oauth2.googleapis.com.
- Endpoint: the worker hard-codes ``ClientOptions(api_endpoint=
  "https://run.googleapis.com")`` in ``_get_client`` and googleapiclient reads
  no endpoint setting from the environment, so the test replaces the
  ``ClientOptions`` name in the worker module with one that points at the
  emulator. Only the endpoint URL changes; everything else is upstream code.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

pytest.importorskip("prefect_gcp", reason="prefect-gcp is not installed: cannot run Prefect's own Cloud Run worker")

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from prefect.client.orchestration import PrefectClient  # noqa: E402
from prefect.client.schemas.actions import WorkPoolCreate  # noqa: E402
from prefect.client.schemas.objects import FlowRun, StateType  # noqa: E402
from prefect.events.worker import EventsWorker  # noqa: E402
from prefect.logging.handlers import APILogHandler  # noqa: E402
from prefect.settings import PREFECT_API_URL, temporary_settings  # noqa: E402
from prefect_gcp import GcpCredentials  # noqa: E402
from prefect_gcp.workers import cloud_run_v2  # noqa: E402
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2  # noqa: E402

from dispatcher.demo.examples.deploy import deploy_example  # noqa: E402
from tests.e2e.helpers import is_final, wait_until  # noqa: E402
from tests.emulators.cloud_run import CloudRunEmulator, Faults  # noqa: E402

pytestmark = pytest.mark.e2e

PROJECT, REGION = "emulated-project", "us-central1"


def service_account_info(token_uri: str) -> dict[str, str]:
    """A service-account key google-auth accepts; only the emulator ever sees what it signs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": PROJECT, "private_key_id": uuid.uuid4().hex,
            "private_key": pem, "client_email": f"flows@{PROJECT}.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": token_uri}


@pytest.fixture
def point_worker_at(monkeypatch: pytest.MonkeyPatch):
    def point(emu: CloudRunEmulator) -> None:
        monkeypatch.setattr(cloud_run_v2, "ClientOptions",
                            lambda api_endpoint: ClientOptions(api_endpoint=emu.endpoint_url))
    return point


async def _cloud_run_pool(client: PrefectClient, credentials_block_id: uuid.UUID) -> str:
    """A ``cloud-run-v2`` pool from the worker's own template, its credentials defaulting to the block."""
    template = CloudRunWorkerV2.get_default_base_job_template()
    template["variables"]["properties"]["credentials"]["default"] = {
        "$ref": {"block_document_id": str(credentials_block_id)}}
    name = f"cloud-run-{uuid.uuid4().hex[:8]}"
    await client.create_work_pool(WorkPoolCreate(name=name, type="cloud-run-v2", base_job_template=template))
    return name


async def _run_with_prefect_worker(client: PrefectClient, api_url: str, emu: CloudRunEmulator,
                                   job_variables: dict[str, Any] | None = None, *, flow_runs: bool = True) -> FlowRun:
    """Deploy ``hello`` to a fresh pool and let one worker poll submit its run.

    Leaving the worker's context waits for its ``run()``: the execution's end and the job's clean-up.
    ``flow_runs=False``: the emulator does not execute the flow, so its state stays as submitted.
    """
    with temporary_settings({PREFECT_API_URL: api_url}):
        credentials = GcpCredentials(service_account_info=service_account_info(emu.token_uri), project=PROJECT)
        block_id = await credentials.asave(f"emulator-{uuid.uuid4().hex[:8]}")
        pool = await _cloud_run_pool(client, block_id)
        deployment_id = await deploy_example(client, "hello", pool, job_variables={"region": REGION,
                                                                                   **(job_variables or {})})
        run = await client.create_flow_run_from_deployment(deployment_id, parameters={"name": "cloud run"})
        async with CloudRunWorkerV2(work_pool_name=pool) as worker:  # leaving waits for the worker's run()
            submitted = await worker.get_and_submit_flow_runs()
            assert [r.id for r in submitted] == [run.id]
            if flow_runs:
                await wait_until(client, [run.id], is_final, timeout_s=120)
        await APILogHandler.aflush()
        await EventsWorker.drain_all()
    return await client.read_flow_run(run.id)


async def test_prefect_cloud_run_worker_runs_a_flow_on_the_emulator(prefect_api_url, prefect_client, tmp_path,
                                                                     point_worker_at):
    with CloudRunEmulator(project=PROJECT, region=REGION, execute=True, workdir=str(tmp_path)) as emu:
        point_worker_at(emu)
        run = await _run_with_prefect_worker(prefect_client, prefect_api_url, emu)
        ran = [op for op in emu.backend.operations.values() if op.kind == "RunJob"]
        assert len(ran) == 1
        execution = ran[0].resource
        output = "\n".join(line for task in execution.tasks for line in task.output)
        assert run.state.type == StateType.COMPLETED, f"{run.state!r}\n--- task output ---\n{output}"
        assert "hello, cloud run" in output  # the flow ran inside the emulated task
        assert execution.tasks[0].result.exit_code == 0 and execution.outcome == "SUCCEEDED"
        assert emu.jobs == {} and emu.executions == {}  # keep_job=False: the worker deleted both
        per_run = dict(emu.calls)
        polls = per_run.pop("GetExecution")
        assert polls >= 2  # once at submission, then every 5 s until completionTime
        assert per_run == {"OAuthToken": 1, "CreateJob": 1, "GetJob": 2, "RunJob": 1, "ListExecutions": 1,
                           "DeleteExecution": 1, "DeleteJob": 1}
        assert "run.jobs.runWithOverrides" not in emu.permissions  # Prefect runs without overrides
        assert emu.errors == []


async def test_prefect_cloud_run_worker_adopts_the_execution_of_an_accepted_then_failed_run(
        prefect_api_url, prefect_client, point_worker_at):
    """A ``:run`` carried out but answered 503: the worker finds the new execution through
    ``latestCreatedExecution`` instead of starting a second one."""
    faults = Faults(accept_then_fail=1, ops={"RunJob"})
    with CloudRunEmulator(project=PROJECT, region=REGION, faults=faults) as emu:
        point_worker_at(emu)
        await _run_with_prefect_worker(prefect_client, prefect_api_url, emu, {"keep_job": True}, flow_runs=False)
        assert faults.accept_then_fail == 0 and emu.calls["RunJob"] == 1
        (job,) = emu.jobs.values()
        assert job.execution_count == 1 and emu.calls["GetJob"] == 3  # ready, baseline, recovery lookup
        assert emu.errors == []
