"""A Prefect server that can be restarted on the same port with the same database.

The chaos suite's own server (not the session's shared one), so restarting it never
disturbs other tests. Its database is PostgreSQL when given (a burst of claims from several
replicas locked the SQLite database for seconds on a loaded machine: 503s that measured the
test server, not the dispatcher); it survives restarts. Services the scenarios do not use are
off, to spare the CPU.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from dispatcher.demo.embedded import free_port, server_environment


class PortTaken(RuntimeError):
    pass


class RestartablePrefect:
    def __init__(self, home: Path, database_url: str | None = None) -> None:
        self.home, self.database_url = home, database_url
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.restarts = 0
        self._process: subprocess.Popen | None = None
        home.mkdir(parents=True, exist_ok=True)

    def start(self, timeout_s: float = 120) -> None:
        for _ in range(3):
            try:
                return self._start(timeout_s)
            except PortTaken:
                if self.restarts:  # a restart must keep its port: clients know only that one
                    raise
                self.port = free_port()  # another process took the free port first
                self.api_url = f"http://127.0.0.1:{self.port}/api"
        raise PortTaken(f"no free port for the Prefect server; see {self.home / 'server.log'}")

    def _start(self, timeout_s: float) -> None:
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        self._process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port), "--no-ui"],
            env=self._environment(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self._wait_healthy(timeout_s)

    def _environment(self) -> dict[str, str]:
        env = server_environment(self.home, self.port)
        if self.database_url:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = self.database_url
        for service in ("LATE_RUNS", "TRIGGERS", "PAUSE_EXPIRATIONS", "TASK_RUN_RECORDER", "DB_VACUUM",
                        "EVENT_PERSISTER"):
            env[f"PREFECT_SERVER_SERVICES_{service}_ENABLED"] = "false"
        return env

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                if "is already in use" in (self.home / "server.log").read_text(errors="replace")[-400:]:
                    raise PortTaken(str(self.port))
                raise RuntimeError(f"Prefect server exited with {self._process.returncode}; see {self.home / 'server.log'}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"Prefect server not healthy after {timeout_s}s; see {self.home / 'server.log'}")
