"""The fault proxy's HTTP faults (what the Prefect scenario relies on), against a tiny HTTP server."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.faultproxy import FaultProxy, HttpFaults


class _Counting(BaseHTTPRequestHandler):
    served = 0

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        type(self).served += 1
        self.rfile.read(int(self.headers["content-length"]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - a reset by the proxy is the point
        pass


@pytest.fixture
def proxy():
    _Counting.served = 0
    server = _QuietServer(("127.0.0.1", 0), _Counting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy("127.0.0.1", server.server_address[1]) as fault_proxy:
        yield fault_proxy
    server.shutdown()


def _post(port: int) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{port}/x", json={"a": 1}, timeout=5)


def test_transparent_by_default(proxy):
    assert _post(proxy.port).json() == {"ok": True}
    assert _Counting.served == 1 and proxy.injected == {"unavailable": 0, "lost_response": 0}


def test_503_is_answered_by_the_proxy_and_not_forwarded(proxy):
    proxy.degrade(HttpFaults(unavailable_rate=1.0))
    response = _post(proxy.port)
    assert response.status_code == 503 and "fault proxy" in response.text
    assert _Counting.served == 0 and proxy.injected["unavailable"] == 1


def test_a_lost_response_was_carried_out(proxy):
    proxy.degrade(HttpFaults(lost_response_rate=1.0))
    with pytest.raises(httpx.TransportError):
        _post(proxy.port)
    assert _Counting.served == 1 and proxy.injected["lost_response"] == 1
    proxy.degrade(HttpFaults())  # healed
    assert _post(proxy.port).status_code == 200


def test_cut_and_restore_still_work_with_latency(proxy):
    proxy.degrade(HttpFaults(latency_s=0.05))
    assert _post(proxy.port).status_code == 200
    proxy.cut()
    with pytest.raises(httpx.TransportError):
        _post(proxy.port)
    proxy.restore()
    assert _post(proxy.port).status_code == 200
