"""terraform/gcp-cloud-run grants exactly the Cloud Run permissions the provider calls.

Every path of the provider runs against the emulator (submit with a new and an existing
job, finding an attempt, the watch, cancel, a job that cannot become ready, idle-job
housekeeping); the emulator's permission counter then lists what IAM would have checked,
and that list must equal the module's custom role (plus actAs, from the serviceAccountUser binding
on the runtime service account).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from providers.base import RunLimits, RunRef, SubmitRequest
from providers.cloud_run import CloudRunProvider, CloudRunSettings
from providers.errors import SubmissionRejected
from tests.emulators.cloud_run import CloudRunEmulator, Faults
from tests.providers.harnesses.cloud_run import PROJECT, REGION, configuration, job_body

pytest.importorskip("hcl2", reason="python-hcl2 is not installed (pip install python-hcl2)")

from tests.terraform.grants import SOURCES, granted  # noqa: E402


def role_permissions() -> set[str]:
    """The custom role's permissions, and actAs from the serviceAccountUser binding on the runtime account."""
    return set(granted(SOURCES["cloud-run"]))


def request(cfg, redrive: bool = False) -> SubmitRequest:
    attempt = uuid.uuid4()
    return SubmitRequest(flow_run_id=uuid.uuid4(), attempt_id=attempt, idempotency_key=f"prefect-{attempt.hex}",
                         workspace="w", pool="cr", configuration=cfg, limits=RunLimits(max_runtime_s=600),
                         redrive=redrive)


async def test_the_custom_role_is_exactly_what_the_provider_calls():
    missing_image = "us-docker.pkg.dev/p/flows/missing:1"
    with CloudRunEmulator(project=PROJECT, region=REGION, default_run_s=0.05,
                          faults=Faults(missing_images={missing_image})) as emu:
        provider = CloudRunProvider(CloudRunSettings(endpoint=emu.endpoint_url, anonymous=True))
        try:
            cfg = configuration("prefect flow-run execute", env={"EMULATOR_RUN_SECONDS": "30"})
            first = request(cfg)
            submitted = await provider.submit(first)
            run = RunRef(flow_run_id=first.flow_run_id, attempt_id=first.attempt_id,
                         infrastructure_id=submitted.infrastructure_id, configuration=cfg)
            await provider.status_many([run])
            await provider.find(request(cfg))
            await provider.stop(run, "permission test")
            with pytest.raises(SubmissionRejected):
                await provider.submit(request(configuration("true", job_body=job_body(image=missing_image))))
            idle = configuration("true", job_body=job_body(image="us-docker.pkg.dev/p/flows/idle:1"))
            await provider.submit(request(idle))
            emu.wait_for_execution(next(n for n in emu.executions if n != submitted.infrastructure_id))
            emu.wait_for_execution(submitted.infrastructure_id)
            assert await provider.jobs.sweep(60, now=datetime.now(timezone.utc) + timedelta(hours=2)) == 2
        finally:
            await provider.aclose()
        called = set(emu.permissions)
        assert emu.errors == []
    assert called == role_permissions(), (sorted(called - role_permissions()), sorted(role_permissions() - called))
