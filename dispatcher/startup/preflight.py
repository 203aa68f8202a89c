"""What ``serve`` (and ``check``) must establish before serving, as one-line errors with exit codes.

A start-up failure is the operator's to fix (a pool missing, credentials refused,
a port taken), so it is reported as :class:`StartupError`: lines without a
traceback and an exit code per class of failure, which supervisors and scripts
can tell apart. Prefect being *unreachable* is the one failure worth waiting for
(it is often starting at the same moment as we are): ``serve`` retries it for
``service.startup_timeout_s``; everything else fails at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable

from prefect.client.schemas.objects import WorkPool
from prefect.exceptions import ObjectNotFound

from dispatcher.config import DispatcherConfig, PoolConfig, WorkspaceConfig
from dispatcher.prefect.api import PrefectApi
from dispatcher.startup.probes import PrefectUnreachable, probe_ledger, probe_prefect
from dispatcher.startup.errors import EXIT_PORT, StartupError, safe_url
from providers import registry

log = logging.getLogger(__name__)

#: uvicorn's default backlog; ``listen`` happens here so the port is ours before anything else starts.
LISTEN_BACKLOG = 2048
#: Seconds between attempts to reach Prefect at start: doubling up to the cap.
FIRST_RETRY_S, MAX_RETRY_S = 0.5, 5.0
#: How long one attempt may take: what is left of the wait, within these bounds.
MIN_ATTEMPT_S, MAX_ATTEMPT_S = 1.0, 10.0


def bind_service_socket(host: str, port: int) -> socket.socket | None:
    """Bind and listen on the service port now (None when port is 0: no HTTP endpoint).

    uvicorn gets the bound socket (``Server.serve(sockets=[sock])``), so a port in
    use is found before any workspace is served, not after, in a background task.
    """
    if not port:
        return None
    where = f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise StartupError(f"service.host: cannot listen on {where}: {exc.strerror}", EXIT_PORT) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts need no wait
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or type(exc).__name__).lower()
        raise StartupError(f"service.port: cannot listen on {where}: {reason}", EXIT_PORT) from None
    return sock


async def ensure_dependencies(config: DispatcherConfig) -> None:
    """The ledger answers and every workspace's Prefect answers and accepts our credentials."""
    await probe_ledger(config.ledger_dsn)
    timeout_s = config.service.startup_timeout_s
    outcomes = await asyncio.gather(
        *(wait_for_prefect(ws, timeout_s) for ws in config.workspaces), return_exceptions=True
    )
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    for failure in failures:
        if not isinstance(failure, StartupError):
            raise failure
    if failures:  # every workspace's problem at once, not one per restart
        raise StartupError([line for failure in failures for line in failure.lines])


async def wait_for_prefect(
    ws: WorkspaceConfig, timeout_s: float,
    probe: Callable[[WorkspaceConfig, float], Awaitable[None]] = probe_prefect,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Retry an unreachable Prefect API until ``timeout_s``; a refusal (401/403, not an API) fails at once."""
    deadline = clock() + timeout_s
    delay = FIRST_RETRY_S
    while True:
        try:
            await probe(ws, min(max(deadline - clock(), MIN_ATTEMPT_S), MAX_ATTEMPT_S))
            return
        except PrefectUnreachable as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                raise PrefectUnreachable(exc.subject, exc.reason, waited_s=timeout_s) from None
            log.warning("%s; retrying for up to %.0f s", exc, remaining)
        await sleep(min(delay, remaining))  # the last attempt is made at the deadline, not before it
        delay = min(delay * 2, MAX_RETRY_S)


async def read_push_pool(api: PrefectApi, ws: WorkspaceConfig, name: str) -> WorkPool:
    """The configured pool as Prefect has it; it must exist and be a push type."""
    subject = f"pool[{ws.name}/{name}]"
    try:
        work_pool = await api.read_pool(name)
    except ObjectNotFound:
        raise StartupError(
            f"{subject} not found on the server {safe_url(ws.api_url)}; create it with "
            f"`dispatcher pool create {name} --type <push type>`"
        ) from None
    try:
        push = registry.is_push_pool_type(work_pool.type)
    except registry.RegistryError as exc:  # the cloud that may declare it cannot be imported here
        raise StartupError(f"{subject} has type {work_pool.type!r}: {exc}") from None
    if not push:
        raise StartupError(
            f"{subject} has type {work_pool.type!r}, not a push type; "
            f"the dispatcher serves {', '.join(registry.push_pool_types())}"
        )
    return work_pool


def served_provider_kind(ws: WorkspaceConfig, pool: PoolConfig, work_pool: WorkPool, managed_provider: str) -> str:
    """The provider that runs this pool; it must have landed and its SDK be installed."""
    subject = f"pool[{ws.name}/{pool.name}]"
    try:
        kind = pool.provider or registry.kind_for_pool_type(work_pool.type, managed_provider)
        registry.provider_class(kind)
    except registry.ProviderNotAvailable as exc:
        raise StartupError(
            f"{subject} has type {work_pool.type}: {exc}; serve can run pools of providers "
            f"{', '.join(registry.servable_kinds())} (pool create works for every type)"
        ) from None
    except registry.RegistryError as exc:  # its SDK is not installed
        raise StartupError(f"{subject} has type {work_pool.type}: {exc}") from None
    return kind
