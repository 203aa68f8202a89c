"""/healthz and /metrics on the service port."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build_app(healthy: Callable[[], bool]) -> Starlette:
    async def healthz(_: Request) -> Response:
        ok = healthy()
        return JSONResponse({"status": "ok" if ok else "starting"}, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


async def serve_http(host: str, port: int, healthy: Callable[[], bool], sock: socket.socket | None = None) -> None:
    config = uvicorn.Config(build_app(healthy), host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the CLI owns signals
    await server.serve(sockets=[sock] if sock else None)  # a pre-bound socket: port conflicts found at start
