"""The HTTP side every emulator shares: ``Request`` in, ``Response`` out, one threaded server.

The server knows nothing about any cloud. It reads a request, hands it to one
*wire protocol* (anything with ``handle(request) -> Response``) and writes the
answer back with the protocol's status, headers and body. A protocol that
lets an exception escape is an emulator bug: it is recorded in ``errors`` and
the client gets a bare 500 rather than a dropped connection.

Tuned for many concurrent SDK clients on one machine: HTTP/1.1 keep-alive
(what botocore's, google-api-core's and azure-core's connection pools expect),
one buffered write per response with Nagle off, a deep listen backlog, and
kept-alive connections reset on ``stop()`` so a stopped emulator is really gone.
"""

from __future__ import annotations

import atexit
import json
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Request:
    """One HTTP request as a protocol sees it."""

    method: str
    path: str
    """The path without the query string, e.g. ``/v2/projects/p/locations/l/jobs``."""
    query: str
    """The raw query string (no ``?``), e.g. ``api-version=2023-05-01``."""
    headers: Mapping[str, str]
    """Case-insensitive (``email.message.Message`` when served over HTTP)."""
    body: bytes = b""

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        return self.query_params.get(name, [default])[0]

    @property
    def target(self) -> str:
        """Path and query as they appeared on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path


@dataclass
class Response:
    """What a protocol answers; the server adds ``Content-Length`` (and ``Date``/``Server``)."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, content_type: str = "application/json",
             headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": content_type, **(headers or {})})


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """What ``Authorization: Bearer <token>`` carries: None without the header, ``""`` for one that
    is no usable bearer token (another scheme, no token), else the token. For the clouds that
    authenticate with OAuth tokens (Google, ARM); each decides which of these it refuses and how."""
    header = headers.get("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme == "Bearer" else ""


class WireProtocol(Protocol):
    """One cloud's wire format: parse, check, fault, dispatch, answer."""

    def handle(self, request: Request) -> Response: ...


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs' connection pools expect
    # One buffered write per response and no Nagle: otherwise every call waits
    # ~40 ms on the client's delayed ACK.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        response = self.server.answer(Request(self.command, path, query, self.headers, body))
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.track(self.connection, open_=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog of 5 drops SYNs when dozens of clients connect at
    # once; they then wait the 1 s retransmission, which no cloud endpoint makes them do.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], protocol: WireProtocol, errors: list[str]):
        super().__init__(address, _HttpHandler)
        self._protocol, self._errors = protocol, errors
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def answer(self, request: Request) -> Response:
        try:
            return self._protocol.handle(request)
        except Exception:  # a protocol bug: make it loud, but still answer
            self._errors.append(f"{request.method} {request.target}: {traceback.format_exc()}")
            return Response(500, b"Emulator internal error", {"Content-Type": "text/plain"})

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


class HttpServer:
    """Serves ``protocol`` on 127.0.0.1 (a free port) and runs ``ticker`` every ``tick_s``.

    ``ticker`` is a backend's ``tick()``: it moves simulated time on (task
    phases, long-running operations) even when no client is asking. An
    exception from it is recorded in ``errors`` and the ticking goes on.
    Restartable: ``start()`` after ``stop()`` serves again on a new port.
    """

    def __init__(self, protocol: WireProtocol, *, errors: list[str] | None = None,
                 ticker: Callable[[], None] | None = None, tick_s: float = 0.01, host: str = "127.0.0.1"):
        self.protocol = protocol
        self.errors: list[str] = errors if errors is not None else []
        self._ticker, self._tick_s, self._host = ticker, tick_s, host
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> HttpServer:
        if self._server is not None:
            return self
        self._server = _Server((self._host, 0), self.protocol, self.errors)
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                          daemon=True)]
        if self._ticker is not None:
            self._threads.append(threading.Thread(target=self._tick_forever, daemon=True))
        for thread in self._threads:
            thread.start()
        atexit.register(self.stop)  # a forgotten server must not keep the interpreter from exiting
        return self

    def _tick_forever(self) -> None:
        assert self._ticker is not None
        while not self._stopping.wait(self._tick_s):
            try:
                self._ticker()
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

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"
