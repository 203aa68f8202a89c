"""The service port: liveness, readiness, Prometheus metrics, and the usage API and page.

- ``/livez``: 200 while every loop is still attempting its ticks (failing ones count); 503 when
  one is hung. Restarting helps only then, so orchestrators should restart on this one.
- ``/readyz`` (and ``/healthz``, its older name): 200 when every workspace is served, its
  Prefect API and the ledger answer, and every loop succeeded recently; otherwise 503 with
  which check fails and since when. It recovers by itself when the dependency is back.
- ``/metrics``: open, or only for ``Authorization: Bearer <api.metrics_token>`` when that is set.
- ``/api/v1/...`` (OpenAPI document: ``/api/openapi.json``) and ``/ui/...``: usage, behind bearer tokens.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from dispatcher.health import HealthReport
from dispatcher.web.api import usage_router
from dispatcher.web.context import UsageContext
from dispatcher.web.page import page_router

OPENAPI_URL = "/api/openapi.json"


def build_app(readiness: Callable[[], HealthReport], alive: Callable[[], bool], usage: UsageContext | None = None) -> FastAPI:
    # No /docs or /redoc: they load their scripts from a CDN; the OpenAPI document is enough.
    app = FastAPI(title="prefect-push-dispatcher usage API", version="1", openapi_url=OPENAPI_URL if usage else None,
                  docs_url=None, redoc_url=None)

    async def ready(_: Request) -> Response:
        report = readiness()
        return JSONResponse(report.model_dump(), status_code=200 if report.status == "ready" else 503)

    async def live(_: Request) -> Response:
        ok = alive()
        return JSONResponse({"status": "alive" if ok else "hung"}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        if usage is not None and not usage.tokens.may_scrape(request):
            return PlainTextResponse("a valid bearer token is required", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for path, endpoint in (("/livez", live), ("/readyz", ready), ("/healthz", ready), ("/metrics", metrics)):
        app.add_route(path, endpoint, include_in_schema=False)
    if usage is not None:
        app.include_router(usage_router(usage))
        app.include_router(page_router(usage))
    return app


class HttpService:
    """uvicorn on the service port, stopped by ``stop()`` (never by cancellation, which prints a traceback)."""

    def __init__(self, host: str, port: int, readiness: Callable[[], HealthReport], alive: Callable[[], bool],
                 usage: UsageContext | None = None) -> None:
        config = uvicorn.Config(build_app(readiness, alive, usage), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        # The CLI owns SIGTERM/SIGINT. uvicorn would otherwise swap in its own handlers while it
        # serves and re-raise the signal when it stops, cancelling the dispatcher mid-shutdown.
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]

    async def serve(self, sock: socket.socket | None = None) -> None:
        await self._server.serve(sockets=[sock] if sock is not None else None)

    def stop(self) -> None:
        self._server.should_exit = True
