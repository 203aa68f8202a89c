"""Cloud Run realistic mode through the official run_v2 REST clients: quotas, capacity, VPC access, phases.

Buckets run on an injected clock (``Realism(clock=...)``): refills happen when the test moves it.
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import run_v2

from tests.emulators.cloud_run import CloudRunEmulator, Faults
from tests.emulators.cloud_run.realistic import RUN_REQUESTS_PER_MINUTE
from tests.emulators.kit import RateLimit, Realism, per_minute
from tests.emulators_tests.cloud_run_helpers import clients, create, job

READY_AT_ONCE = {"job_ready_s": 0.0}  # create().result() would otherwise poll the operation a whole second


def test_job_run_quota_at_its_default_then_refill(clock):
    with CloudRunEmulator(realistic=Realism(clock=clock), **READY_AT_ONCE) as emu:
        jobs, _, _ = clients(emu)
        name = create(jobs, emu).name
        for _ in range(RUN_REQUESTS_PER_MINUTE):  # a minute's worth at once
            jobs.run_job(name=name)
        with pytest.raises(exceptions.TooManyRequests, match="Job run requests per minute per region"):
            jobs.run_job(name=name)
        assert len(emu.executions) == RUN_REQUESTS_PER_MINUTE
        clock.now += 60 / RUN_REQUESTS_PER_MINUTE  # one more run's worth
        jobs.run_job(name=name)
        with pytest.raises(exceptions.TooManyRequests):
            jobs.run_job(name=name)
        assert emu.errors == []


def test_reads_and_writes_share_their_quota_buckets(clock):
    two_writes = Faults(rate_limits={"Write requests": RateLimit(per_s=1 / 60, burst=2)})  # the test's bucket wins
    with CloudRunEmulator(realistic=Realism(clock=clock), faults=two_writes, **READY_AT_ONCE) as emu:
        assert emu.faults.rate_limits["Read requests"] == per_minute(1000)
        jobs, _, _ = clients(emu)
        first = jobs.create_job(parent=emu.parent, job_id="a", job=job()).metadata.name
        jobs.create_job(parent=emu.parent, job_id="b", job=job())
        with pytest.raises(exceptions.TooManyRequests) as caught:  # a delete is a write too
            jobs.delete_job(name=f"{emu.parent}/jobs/a")
        assert "Write requests per minute per region" in caught.value.message
        assert caught.value.details[0]["metadata"]["quota_limit"] == "Write requests per minute per region"
        assert jobs.get_job(name=f"{emu.parent}/jobs/a").name.endswith("/jobs/a")  # reads: their own bucket
        clock.now += 60
        jobs.delete_job(name=f"{emu.parent}/jobs/a")
        assert first and emu.errors == []


def test_capacity_errors_refuse_the_run(clock):
    with CloudRunEmulator(realistic=Realism(clock=clock, capacity_failure_rate=1.0), **READY_AT_ONCE) as emu:
        jobs, _, _ = clients(emu)
        name = create(jobs, emu).name
        with pytest.raises(exceptions.TooManyRequests, match="no available instance"):
            jobs.run_job(name=name)
        assert emu.executions == {}


def _with_vpc(vpc_access: run_v2.VpcAccess) -> run_v2.Job:
    spec = job()
    spec.template.template.vpc_access = vpc_access
    return spec


def test_vpc_access_must_name_existing_network_objects(clock):
    with CloudRunEmulator(realistic=Realism(clock=clock), **READY_AT_ONCE) as emu:
        jobs, _, _ = clients(emu)
        with pytest.raises(exceptions.BadRequest, match="VPC connector .*/connectors/flows does not exist"):
            jobs.create_job(parent=emu.parent, job_id="a", job=_with_vpc(run_v2.VpcAccess(connector="flows")))
        emu.networks.add_connector("flows")
        jobs.create_job(parent=emu.parent, job_id="a", job=_with_vpc(run_v2.VpcAccess(connector="flows"))).result()

        nic = run_v2.VpcAccess.NetworkInterface
        with pytest.raises(exceptions.BadRequest, match="Subnetwork .*/subnetworks/flows-a' does not exist"):
            jobs.create_job(parent=emu.parent, job_id="b", job=_with_vpc(run_v2.VpcAccess(
                network_interfaces=[nic(network="default", subnetwork="flows-a")])))
        emu.networks.add_network("flows-net")
        emu.networks.add_subnetwork("flows-net", "flows-a")
        jobs.create_job(parent=emu.parent, job_id="b", job=_with_vpc(run_v2.VpcAccess(
            network_interfaces=[nic(network="flows-net", subnetwork="flows-a")]))).result()
        jobs.create_job(parent=emu.parent, job_id="c", job=_with_vpc(run_v2.VpcAccess(
            network_interfaces=[nic(network="default", subnetwork="default")]))).result()
        assert emu.errors == []


def test_default_mode_accepts_any_vpc_access():
    with CloudRunEmulator(realistic=False) as emu:
        jobs, _, _ = clients(emu)
        jobs.create_job(parent=emu.parent, job_id="a", job=_with_vpc(run_v2.VpcAccess(connector="nowhere"))).result()
        assert emu.faults.rate_limits == {} and emu.faults.run_requests_per_minute is None


def test_execution_start_is_cloud_run_time_scaled(clock):
    factor = 0.01
    with CloudRunEmulator(realistic=Realism(clock=clock, time_factor=factor), **READY_AT_ONCE) as emu:
        jobs, _, _ = clients(emu)
        name = create(jobs, emu).name
        execution = jobs.run_job(name=name).metadata.name
        done = emu.wait_for_execution(execution)
        assert done.started_at - done.created_at == pytest.approx(15 * factor)
        assert emu.backend.lifecycle.timings.stop_grace_s == pytest.approx(10 * factor)
