"""Dispatcher replicas as processes (``dispatcher serve``), so a kill is a real kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from dispatcher.config import DispatcherConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


class ReplicaProcess:
    def __init__(self, config: DispatcherConfig, workdir: Path) -> None:
        self.config = config
        self.name = config.instance_name or "replica"
        self.port = config.service.port
        self.config_path = workdir / f"{self.name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self.kills = 0
        self._stopping = False

    def start(self) -> ReplicaProcess:
        self._stopping = False
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dispatcher.cli", "serve", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
            )
        return self

    async def live(self, timeout_s: float = 90) -> None:
        """Until its web server answers /livez (start-up done: ledger and Prefect reached)."""
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=2) as http:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited with {self.process.returncode}: {self.tail()}")
                try:
                    if (await http.get("/livez")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not live after {timeout_s}s: {self.tail()}")
                await asyncio.sleep(0.2)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def signal_stop(self) -> None:
        """SIGTERM once (a second one would stop it at once, not gracefully)."""
        if self.running and not self._stopping:
            self._stopping = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL if it does not end within its grace."""
        if not self.running:
            return
        self.signal_stop()
        try:
            self.process.wait(timeout=self.config.loop.shutdown_grace_s + 15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
