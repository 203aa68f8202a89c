"""``EcsEmulator``: serves the emulated ECS, Logs and EC2 APIs on 127.0.0.1."""

from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
import uuid
from collections import Counter
from contextlib import suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .backend import Backend, RunDefaults
from .ec2 import Ec2
from .faults import FaultDice, Faults
from .lifecycle import Timings
from .protocol import Protocol
from .query import XML_CONTENT_TYPE, QueryProtocol, is_query_request
from .tasks import Task


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    # One buffered write per response and no Nagle: otherwise every call waits
    # ~40 ms on the client's delayed ACK.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        server: _Server = self.server  # type: ignore[assignment]
        if is_query_request(self.command, self.path, self.headers):  # EC2 (query protocol, XML)
            status, data = server.query.handle(self.command, self.path, self.headers, raw)
            content_type = XML_CONTENT_TYPE
        else:  # ECS and Logs (JSON 1.1)
            status, body = server.protocol.handle(self.command, self.path, self.headers, raw)
            data, content_type = json.dumps(body).encode(), "application/x-amz-json-1.1"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_DELETE = _serve

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)  # type: ignore[attr-defined]
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog of 5 drops SYNs when dozens of clients connect at
    # once; they then wait the 1 s retransmission, which AWS's endpoints never make them do.
    request_queue_size = 256
    protocol: Protocol
    query: QueryProtocol

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def drop_connections(self) -> None:
        """Reset kept-alive client connections, so a stopped emulator is really gone."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class EcsEmulator:
    """An ECS endpoint for boto3/aiobotocore clients: ``endpoint_url=emu.endpoint_url``.

    ``execute=True`` runs each task's essential container command locally
    when the task reaches RUNNING; otherwise a task runs for
    ``default_run_s`` (or its ``EMULATOR_RUN_SECONDS`` env var) and exits with
    ``default_exit_code`` (or ``EMULATOR_EXIT_CODE``).
    """

    def __init__(self, region: str = "us-east-1", account_id: str = "123456789012", execute: bool = False,
                 faults: Faults | None = None, *, provisioning_s: float = 0.05, pending_s: float = 0.05,
                 deprovisioning_s: float = 0.05, default_run_s: float = 0.2, default_exit_code: int = 0,
                 stop_timeout_s: float = 2.0, auto_create_log_groups: bool = True, workdir: str | None = None,
                 validate_responses: bool = True, tick_s: float = 0.01):
        self.region, self.account_id, self.execute = region, account_id, execute
        self._dice = FaultDice(faults if faults is not None else Faults())
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self.errors: list[str] = []
        """Emulator bugs: handler crashes and responses that break the output shape."""
        self.backend = Backend(
            region, account_id, dice=self._dice,
            timings=Timings(provisioning_s, pending_s, deprovisioning_s, stop_timeout_s),
            defaults=RunDefaults(default_run_s, default_exit_code), execute=execute,
            workdir=workdir or os.getcwd(), auto_create_log_groups=auto_create_log_groups,
        )
        self._protocol = Protocol(self.backend, self._dice, self.calls, self._calls_lock, self.errors,
                                  validate_responses)
        self.ec2 = Ec2(region, account_id)
        """EC2 networking on the same endpoint: ``emu.ec2.add_vpc(...)``, ``add_subnet(...)``."""
        self._query = QueryProtocol(self.ec2, region, self._dice, self.calls, self._calls_lock, self.errors,
                                    validate_responses)
        self._tick_s = tick_s
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> EcsEmulator:
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", 0), _HttpHandler)
        self._server.protocol = self._protocol
        self._server.query = self._query
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._tick_forever, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        atexit.register(self.stop)  # never leave executed processes behind
        return self

    def _tick_forever(self) -> None:
        while not self._stopping.wait(self._tick_s):
            try:
                self.backend.tick()
            except Exception as exc:  # keep ticking, but make the bug visible
                self.errors.append(f"ticker: {exc!r}")

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.drop_connections()
            self._server = None
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        self.backend.shutdown()

    def __enter__(self) -> EcsEmulator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("EcsEmulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- knobs and introspection ---------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._dice.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._dice.faults = faults  # re-seeds the RNG

    def reset_calls(self) -> None:
        with self._calls_lock:
            self.calls.clear()

    @property
    def tasks(self) -> dict[str, Task]:
        """Snapshot ``{task ARN: Task}`` of every task ever started."""
        with self.backend.lock:
            return dict(self.backend.tasks)

    def wait_for_task(self, task_arn: str, status: str = "STOPPED", timeout: float = 10.0) -> Task:
        """Block until the task's lastStatus is ``status`` (or later, for STOPPED)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.backend.tick()
            task = self.backend.tasks[task_arn]
            if task.last_status == status:
                return task
            time.sleep(0.01)
        raise TimeoutError(f"{task_arn} is {self.backend.tasks[task_arn].last_status}, not {status}")

    def create_log_group(self, name: str) -> None:
        self.backend.logs.create_group(name)

    def log_messages(self, group: str, stream: str) -> list[str]:
        return self.backend.logs.messages(group, stream)
