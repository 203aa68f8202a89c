"""The dispatcher process: providers, ledger, one WorkspaceDispatcher per workspace, HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import AsyncExitStack

from dispatcher.config import DispatcherConfig
from dispatcher.housekeeping import keep_house
from dispatcher.http import serve_http
from dispatcher.ledger import Ledger
from dispatcher.workspace import WorkspaceDispatcher
from providers import provider_class
from providers.base import Provider

log = logging.getLogger(__name__)


class ProviderSet:
    """One provider instance per kind, shared by all workspaces and pools (clients are cached inside)."""

    def __init__(self, settings: dict[str, dict]) -> None:
        self._settings = settings
        self._instances: dict[str, Provider] = {}

    def get(self, kind: str) -> Provider:
        if kind not in self._instances:
            cls = provider_class(kind)
            raw = self._settings.get(kind, {})
            model = cls.settings_model
            self._instances[kind] = cls(model.model_validate(raw)) if model else cls()  # type: ignore[call-arg]
        return self._instances[kind]

    def instances(self) -> list[Provider]:
        return list(self._instances.values())

    async def aclose(self) -> None:
        for provider in self._instances.values():
            await provider.aclose()


def default_worker_name() -> str:
    return f"push-dispatcher-{socket.gethostname()}-{os.getpid()}"


class Dispatcher:
    def __init__(self, config: DispatcherConfig) -> None:
        self.config = config
        self.providers = ProviderSet(config.providers)
        self.workspaces: list[WorkspaceDispatcher] = []
        self.ledger: Ledger | None = None

    def healthy(self) -> bool:
        return bool(self.workspaces) and all(ws.ready.is_set() for ws in self.workspaces)

    async def run(self) -> None:
        """Serve every workspace until cancelled."""
        async with AsyncExitStack() as stack:
            self.ledger = await Ledger.open(self.config.ledger_dsn)
            stack.push_async_callback(self.ledger.close)
            stack.push_async_callback(self.providers.aclose)
            worker_name = self.config.instance_name or default_worker_name()
            self.workspaces = [
                WorkspaceDispatcher(self.config, ws, self.ledger, self.providers.get, worker_name)
                for ws in self.config.workspaces
            ]
            tasks = [ws.run() for ws in self.workspaces]
            tasks.append(keep_house(self.providers.instances))
            if self.config.service.port:
                tasks.append(serve_http(self.config.service.host, self.config.service.port, self.healthy))
            log.info("dispatcher %s serving %d workspace(s)", worker_name, len(self.workspaces))
            await asyncio.gather(*tasks)
