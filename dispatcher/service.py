"""The dispatcher process: providers, ledger, one WorkspaceDispatcher per workspace, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from contextlib import AsyncExitStack

from dispatcher.config import DispatcherConfig, LoopConfig
from dispatcher.health import HealthReport
from dispatcher.loops.housekeeping import keep_house
from dispatcher.web.app import HttpService
from dispatcher.web.context import UsageContext
from dispatcher.ledger import Ledger
from dispatcher.loops.calls import ProviderCalls
from dispatcher.loops.workspace import WorkspaceDispatcher
from providers import registry

log = logging.getLogger(__name__)


class ProviderSet:
    """One provider instance per kind, shared by all workspaces and pools (clients are cached inside),
    each behind the one call path (deadlines, retries, metrics)."""

    def __init__(self, settings: dict[str, dict], loop: LoopConfig) -> None:
        self._settings = settings
        self._loop = loop
        self._instances: dict[str, ProviderCalls] = {}

    def get(self, kind: str) -> ProviderCalls:
        if kind not in self._instances:
            cls = registry.provider_class(kind)
            raw = self._settings.get(kind, {})
            model = cls.settings_model
            provider = cls(model.model_validate(raw)) if model else cls()  # type: ignore[call-arg]
            self._instances[kind] = ProviderCalls(provider, self._loop)
        return self._instances[kind]

    def instances(self) -> list[ProviderCalls]:
        return list(self._instances.values())

    async def aclose(self) -> None:
        for provider in self._instances.values():
            await provider.aclose()


def default_worker_name() -> str:
    return f"push-dispatcher-{socket.gethostname()}-{os.getpid()}"


class Dispatcher:
    def __init__(self, config: DispatcherConfig, http_socket: socket.socket | None = None) -> None:
        self.config = config
        self.http_socket = http_socket  # bound by the CLI before start, so a taken port fails early
        self.providers = ProviderSet(config.providers, config.loop)
        self.workspaces: list[WorkspaceDispatcher] = []
        self.ledger: Ledger | None = None
        self._stop_requested = asyncio.Event()

    def healthy(self) -> bool:
        """Every workspace has started serving (start-up is over)."""
        return bool(self.workspaces) and all(ws.ready.is_set() for ws in self.workspaces)

    def readiness(self) -> HealthReport:
        if not self.healthy():
            return HealthReport(status="starting")
        workspaces = {ws.workspace.name: ws.health() for ws in self.workspaces}
        ready = all(h.ready for h in workspaces.values())
        return HealthReport(status="ready" if ready else "not ready", workspaces=workspaces)

    def alive(self) -> bool:
        return all(ws.alive() for ws in self.workspaces)

    @property
    def stopping(self) -> bool:
        return self._stop_requested.is_set()

    def request_stop(self) -> None:
        """Stop claiming, finish or hand over submissions, exit (SIGTERM)."""
        self._stop_requested.set()

    async def run(self) -> None:
        """Serve every workspace until ``request_stop()`` (graceful) or cancellation (immediate)."""
        async with AsyncExitStack() as stack:
            self.ledger = await Ledger.open(self.config.ledger_dsn)
            stack.push_async_callback(self.ledger.close)
            stack.push_async_callback(self.providers.aclose)
            worker_name = self.config.instance_name or default_worker_name()
            self.workspaces = [
                WorkspaceDispatcher(self.config, ws, self.ledger, self.providers.get, worker_name)
                for ws in self.config.workspaces
            ]
            serving = [asyncio.create_task(ws.run(), name=f"workspace {ws.workspace.name}") for ws in self.workspaces]
            housekeeping = asyncio.create_task(keep_house(self.providers.instances), name="housekeeping")
            http = self._http_service()
            http_task = asyncio.create_task(http.serve(self.http_socket), name="http") if http else None
            log.info("dispatcher %s serving %d workspace(s)", worker_name, len(self.workspaces))
            try:
                await self._until_stop_or_failure(serving)
                await self._shut_down(serving)
            finally:
                await _cancel_all([*serving, housekeeping])
                if http is not None and http_task is not None:
                    http.stop()
                    with contextlib.suppress(asyncio.CancelledError):
                        await http_task

    def _http_service(self) -> HttpService | None:
        service = self.config.service
        if not service.port and self.http_socket is None:
            return None
        usage = UsageContext(self.config, self.ledger) if self.ledger is not None else None
        return HttpService(service.host, service.port, self.readiness, self.alive, usage)

    async def _until_stop_or_failure(self, serving: list[asyncio.Task]) -> None:
        stop = asyncio.create_task(self._stop_requested.wait())
        try:
            done, _ = await asyncio.wait([*serving, stop], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        for task in done:
            if task is not stop:
                task.result()  # a workspace that ended on its own failed to start: raise why

    async def _shut_down(self, serving: list[asyncio.Task]) -> None:
        grace = self.config.loop.shutdown_grace_s
        log.info("stopping: no new claims; submissions in flight get up to %.0f s", grace)
        await asyncio.gather(*(ws.shutdown(grace) for ws in self.workspaces))
        # Loops end after their current tick; cancelling them mid-call could leave a half-closed connection.
        _, unfinished = await asyncio.wait(serving, timeout=grace)
        await _cancel_all(list(unfinished))
        log.info("stopped")


async def _cancel_all(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
