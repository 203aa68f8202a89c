"""The service port: liveness, readiness and Prometheus metrics.

- ``/livez``: 200 while every loop is still attempting its ticks (failing ones count); 503 when
  one is hung. Restarting helps only then, so orchestrators should restart on this one.
- ``/readyz`` (and ``/healthz``, its older name): 200 when every workspace is served, its
  Prefect API and the ledger answer, and every loop succeeded recently; otherwise 503 with
  which check fails and since when. It recovers by itself when the dependency is back.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatcher.health import HealthReport


def build_app(readiness: Callable[[], HealthReport], alive: Callable[[], bool]) -> Starlette:
    async def ready(_: Request) -> Response:
        report = readiness()
        return JSONResponse(report.model_dump(), status_code=200 if report.status == "ready" else 503)

    async def live(_: Request) -> Response:
        ok = alive()
        return JSONResponse({"status": "alive" if ok else "hung"}, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[
        Route("/livez", live), Route("/readyz", ready), Route("/healthz", ready), Route("/metrics", metrics),
    ])


class HttpService:
    """uvicorn on the service port, stopped by ``stop()`` (never by cancellation, which prints a traceback)."""

    def __init__(self, host: str, port: int, readiness: Callable[[], HealthReport], alive: Callable[[], bool]) -> None:
        config = uvicorn.Config(build_app(readiness, alive), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        # The CLI owns SIGTERM/SIGINT. uvicorn would otherwise swap in its own handlers while it
        # serves and re-raise the signal when it stops, cancelling the dispatcher mid-shutdown.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]

    async def serve(self, sock: socket.socket | None = None) -> None:
        await self._server.serve(sockets=[sock] if sock is not None else None)

    def stop(self) -> None:
        self._server.should_exit = True
