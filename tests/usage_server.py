"""The usage API and page served over real HTTP on a loopback port, from a thread with its own event loop
(for clients that are not asyncio: schemathesis' requests, Chromium)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from dispatcher.demo.embedded import free_port
from dispatcher.health import HealthReport
from dispatcher.web.app import build_app
from tests.usage_data import seeded_context


@contextmanager
def serving_usage(tmp_path: Path) -> Iterator[str]:
    """Yield the base URL of the usage API and page on a seeded ledger; stop on exit."""
    port = free_port()
    servers: list[uvicorn.Server] = []
    failures: list[BaseException] = []

    async def serve() -> None:
        async with seeded_context(tmp_path) as context:
            app = build_app(lambda: HealthReport(status="ready"), lambda: True, context)
            server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
            servers.append(server)
            await server.serve()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failures.append(exc)

    thread = threading.Thread(target=run, name="usage-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (servers and servers[0].started):
        if failures or time.monotonic() > deadline:
            raise RuntimeError(f"usage server did not start: {failures!r}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        servers[0].should_exit = True
        thread.join(timeout=10)
