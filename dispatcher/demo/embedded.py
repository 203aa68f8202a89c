"""A temporary Prefect server for the demo and the tests (no account, nothing outside a temp dir)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(home: Path, port: int, database_url: str | None = None) -> dict[str, str]:
    """The server's environment: SQLite in ``home`` unless ``database_url`` (postgresql+asyncpg://...) is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
        # The scheduler would create runs we did not ask for; nothing here uses schedules.
        PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED="false",
    )
    return env


@contextmanager
def prefect_server(home: Path, timeout_s: float = 90.0, log_path: Path | None = None,
                   database_url: str | None = None) -> Iterator[str]:
    """Start ``prefect server start`` on a free loopback port; yield its API URL; stop it."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_file = open(log_path or home / "server.log", "ab")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
        env=server_environment(home, port, database_url), stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(api_url, process, timeout_s, home)
        yield api_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log_file.close()


def _wait_healthy(api_url: str, process: subprocess.Popen, timeout_s: float, home: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Prefect server exited with {process.returncode}; see {home / 'server.log'}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"Prefect server not healthy after {timeout_s}s; see {home / 'server.log'}")
