"""Fixtures of the chaos suite: its own restartable Prefect server, the cluster of replicas every
scenario runs on (tests/chaos/rig.py), a seeded RNG whose seed is printed when a scenario fails.

The cloud: ECS unless a scenario is marked ``@pytest.mark.clouds("ecs", "cloud-run", "aci")``; then
it runs once per cloud named, each on a cluster of its own (one cluster is up at a time).

Replay a failure with ``CHAOS_SEED=<seed>``; soak with ``CHAOS_SOAK=1`` (see README.md).
"""

from __future__ import annotations

import os
import random
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from prefect.client.orchestration import PrefectClient
from sqlalchemy.engine import make_url

from dispatcher.prefect.pools import create_pool
from tests.chaos.cloud import ChaosCloud, cloud_named
from tests.chaos.prefect_server import RestartablePrefect
from tests.chaos.rig import SOAK, Cluster, Rig, scale
from tests.postgres import PG_SERVER, in_own_loop, pg_admin

SEED_KEY = pytest.StashKey[int]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Soak rounds: the same scenario again with the next seeds."""
    if "chaos_round" in metafunc.fixturenames:
        metafunc.parametrize("chaos_round", range(scale().rounds), ids=lambda n: f"round{n}")
    if "chaos_cloud" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("clouds")
        # Package scope: pytest groups the scenarios by cloud, so each cloud's cluster starts once, and the
        # last one stops with the package instead of polling its Prefect server for the rest of the session.
        metafunc.parametrize("chaos_cloud", marker.args if marker else ("ecs",), indirect=True, scope="package")


@pytest.fixture(scope="package")
def chaos_cloud(request: pytest.FixtureRequest) -> ChaosCloud:
    return cloud_named(request.param)


@pytest.fixture
def chaos_rng(request: pytest.FixtureRequest) -> random.Random:
    """The scenario's RNG, seeded with ``CHAOS_SEED`` (random if unset) plus the soak round."""
    base = int(os.environ["CHAOS_SEED"]) if os.environ.get("CHAOS_SEED") else secrets.randbelow(10**9)
    round_ = request.node.callspec.params.get("chaos_round", 0) if hasattr(request.node, "callspec") else 0
    request.node.stash[SEED_KEY] = base
    print(f"CHAOS_SEED={base} (round {round_})")
    return random.Random(base + round_)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    base = item.stash.get(SEED_KEY, None)
    if base is not None and report.failed:
        soak = "CHAOS_SOAK=1 " if scale() is SOAK else ""
        report.sections.append(("chaos seed", f"replay with: {soak}CHAOS_SEED={base} pytest '{item.nodeid}'"))


def _create_database(prefix: str) -> tuple[str, str]:
    """A new PostgreSQL database: (name, async DSN), or a skip saying why there is none."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        in_own_loop(pg_admin(f"CREATE DATABASE {name}"))
    except Exception as exc:  # refused, auth, timeout...: all mean "no server"
        pytest.skip(f"the chaos suite needs PostgreSQL (the replicas' shared ledger, Prefect's database); none "
                    f"reachable at {make_url(PG_SERVER).render_as_string(hide_password=True)}: {exc!r}")
    return name, make_url(PG_SERVER).set(drivername="postgresql+asyncpg", database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="package")
def chaos_prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartablePrefect]:
    """The chaos suite's own Prefect server (restarting it must not disturb other tests), up while the package runs."""
    name, dsn = _create_database("chaos_prefect")
    server = RestartablePrefect(tmp_path_factory.mktemp("chaos-prefect"), dsn)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        in_own_loop(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def chaos_client(chaos_prefect: RestartablePrefect) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=chaos_prefect.api_url) as client:
        yield client


@pytest.fixture(scope="package")
def chaos_cluster(chaos_prefect: RestartablePrefect, chaos_cloud: ChaosCloud,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Replicas, proxies, the cloud and a fresh PostgreSQL ledger, for every scenario on this cloud."""
    name, dsn = _create_database("chaos_ledger")
    workdir = tmp_path_factory.mktemp("chaos-cluster")
    try:
        with chaos_cloud.emulator(workdir) as emu:
            cluster = Cluster(chaos_prefect, chaos_cloud, emu, dsn, workdir)
            try:
                in_own_loop(create_pool(chaos_prefect.api_url, cluster.pool, chaos_cloud.pool_type,
                                        managed_provider=chaos_cloud.name))
                yield cluster
            finally:
                cluster.stop()
            assert emu.errors == [], emu.errors  # no emulator handler crash, no answer outside its shape
    finally:
        in_own_loop(pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def rig(chaos_cluster: Cluster, chaos_client: PrefectClient, chaos_rng: random.Random) -> AsyncIterator[Rig]:
    await chaos_cluster.healthy()
    try:
        yield Rig(chaos_cluster, chaos_client, chaos_rng)
    finally:
        await chaos_cluster.healthy()  # the next scenario starts without this one's faults
