"""Shared fixtures: a real Prefect server for the session, pools, deployments, a running dispatcher."""

from __future__ import annotations

import os
import tempfile

# Before Prefect is imported: keep its home (profiles, local storage) out of the user's.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dispatcher-tests-prefect-home-"))
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("PREFECT_API_KEY", None)

import asyncio  # noqa: E402
import contextlib  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from prefect.client.orchestration import PrefectClient  # noqa: E402

from dispatcher.config import DispatcherConfig, Limits, LoopConfig, PoolConfig, ServiceConfig, WorkspaceConfig  # noqa: E402
from dispatcher.demo.embedded import prefect_server  # noqa: E402
from dispatcher.prefect.pools import create_pool  # noqa: E402
from dispatcher.service import Dispatcher  # noqa: E402
from tests.postgres import postgres_database  # noqa: E402,F401 - a shared fixture

# The session-wide record of cloud permissions the provider suites used (least-privilege tests run last).
pytest_plugins = ["tests.least_privilege"]


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real Prefect server (version pinned by constraints/test-server.txt), one per test session."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as api_url:
        yield api_url


@pytest.fixture
async def prefect_client(prefect_api_url: str) -> AsyncIterator[PrefectClient]:
    async with PrefectClient(api=prefect_api_url) as client:
        yield client


@pytest.fixture
async def local_pool(prefect_api_url: str) -> str:
    """A fresh local:push pool per test, so tests never see each other's runs."""
    name = f"local-{uuid.uuid4().hex[:8]}"
    await create_pool(prefect_api_url, name, "local:push")
    return name


def dispatcher_config(
    api_url: str, pool: str, tmp_path: Path, *, limits: Limits | None = None, pool_type_limits: Limits | None = None,
    ledger_dsn: str | None = None, loop: LoopConfig | None = None, workspace: str = "test",
) -> DispatcherConfig:
    return DispatcherConfig(
        workspaces=[WorkspaceConfig(name=workspace, api_url=api_url, pools=[PoolConfig(name=pool, limits=pool_type_limits)], limits=limits)],
        ledger_dsn=ledger_dsn or f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        providers={"local": {"state_dir": str(tmp_path / "local-runs"), "stop_grace_s": 2}},
        loop=loop or LoopConfig(poll_interval_s=0.2, watch_interval_s=0.5, pending_grace_s=15),
        service=ServiceConfig(port=0),
    )


@contextlib.asynccontextmanager
async def running_dispatcher(config: DispatcherConfig, *, graceful: bool = False) -> AsyncIterator[Dispatcher]:
    """Run a dispatcher in this event loop until the block ends: then cancelled, like a crash (the
    replica's membership row stays until its TTL), or with ``graceful`` stopped as on SIGTERM."""
    dispatcher = Dispatcher(config)
    task = asyncio.create_task(dispatcher.run())
    try:
        for _ in range(200):
            if dispatcher.healthy() or task.done():
                break
            await asyncio.sleep(0.05)
        if task.done():
            task.result()
        yield dispatcher
        if graceful:
            dispatcher.request_stop()
            await asyncio.wait_for(asyncio.shield(task), timeout=config.loop.shutdown_grace_s + 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
