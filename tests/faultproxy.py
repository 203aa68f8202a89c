"""A TCP proxy that can be cut and restored: an outage of Prefect or the ledger, on demand.

``cut()`` resets every open connection and stops listening, so new connections are
refused, exactly what a client sees when a server or the network goes away;
``restore()`` listens again on the same port. It runs its own event loop in a thread,
so it keeps working whatever the test's loop is doing.

``faults`` (off by default) degrades a proxied HTTP/1.1 service without cutting it:
latency on every chunk, a request answered 503 by the proxy (not forwarded, as a load
balancer does), or a response lost (the request was carried out, then the connection is
reset before its answer reaches the client). Seeded, so a run can be replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from dataclasses import dataclass

#: How a client's HTTP/1.1 request starts: the proxy answers 503 only at a request's first bytes.
_METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ", b"HEAD ", b"OPTIONS ")
_BODY = b'{"detail": "injected by the fault proxy"}'
_UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_BODY), _BODY))


@dataclass
class HttpFaults:
    """Faults of a proxied HTTP/1.1 service; every rate is a fraction in [0, 1]."""

    latency_s: float = 0.0
    """Delay before each chunk is forwarded, in both directions."""
    unavailable_rate: float = 0.0
    """Fraction of requests answered 503 by the proxy and not forwarded."""
    lost_response_rate: float = 0.0
    """Fraction of responses dropped: the connection is reset after the server has answered."""
    seed: int = 0


class _Connection:
    """Both sides of one proxied connection, so a fault can reset the pair."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server

    def reset(self) -> None:
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="fault-proxy")
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.faults = HttpFaults()
        self.injected = {"unavailable": 0, "lost_response": 0}
        self._rng = random.Random(0)

    def degrade(self, faults: HttpFaults) -> None:
        """Apply ``faults`` to every chunk from now on (``HttpFaults()`` heals)."""
        self._rng = random.Random(faults.seed)
        self.faults = faults

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def cut(self) -> None:
        """Reset open connections and refuse new ones."""
        self._call(self._close())

    def restore(self) -> None:
        self._call(self._listen())

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro) -> None:  # noqa: ANN001
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()  # RST, like a dead server or a cut cable
        self._writers.clear()

    async def _pipe(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update({client_writer, server_writer})
        pair = _Connection(client_writer, server_writer)
        await asyncio.gather(self._copy(client_reader, server_writer, pair, upstream=True),
                             self._copy(server_reader, client_writer, pair, upstream=False))
        self._writers.difference_update({client_writer, server_writer})

    async def _copy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: _Connection,
                    *, upstream: bool) -> None:
        try:
            while data := await reader.read(65536):
                if self.faults.latency_s > 0:
                    await asyncio.sleep(self.faults.latency_s)
                if upstream and data.startswith(_METHODS) and self._roll(self.faults.unavailable_rate):
                    self.injected["unavailable"] += 1
                    # The answer, then a clean close to the client (a reset could discard the answer).
                    pair.server.transport.abort()
                    pair.client.write(_UNAVAILABLE)
                    with contextlib.suppress(Exception):
                        await pair.client.drain()
                    return
                if not upstream and self._roll(self.faults.lost_response_rate):
                    self.injected["lost_response"] += 1
                    pair.reset()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
