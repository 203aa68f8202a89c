"""Is a dependency there and does it accept us? One call each, nothing written.

Shared by ``serve`` (before it serves) and ``dispatcher check``. Failures are
:class:`StartupError` lines naming the dependency (``prefect[workspace] URL``,
``ledger DSN`` without its password) and the error class, never a secret.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from sqlalchemy import inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from dispatcher.config import WorkspaceConfig
from dispatcher.ledger.engine import is_sqlite, is_sqlite_memory, ledger_url
from dispatcher.startup.errors import StartupError, describe_exception, safe_url

#: Answers that mean "not now" rather than "never": Prefect restarting, a proxy in front of it.
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class PrefectUnreachable(StartupError):
    """No answer, or an answer that may change by itself (5xx): worth retrying at start."""

    def __init__(self, subject: str, reason: str, waited_s: float | None = None) -> None:
        self.subject, self.reason = subject, reason
        how_long = f" for {waited_s:g} s" if waited_s is not None else ""
        super().__init__(f"{subject} unreachable{how_long}: {reason}")


async def probe_prefect(ws: WorkspaceConfig, timeout_s: float = 10.0) -> None:
    """One authenticated call (``/health`` is open even when the server requires auth).

    Raises PrefectUnreachable (connection refused, timeout, 5xx) or StartupError
    (401/403: credentials refused; another 4xx: the URL is not a Prefect API).
    """
    subject = f"prefect[{ws.name}] {safe_url(ws.api_url)}"
    client = PrefectClient(
        api=ws.api_url, httpx_settings={"timeout": httpx.Timeout(timeout_s)},
        api_key=ws.api_key.get_secret_value() if ws.api_key else None,
        auth_string=ws.auth_string.get_secret_value() if ws.auth_string else None,
    )
    _no_connect_retries(client, ws.api_url)
    try:
        # Our own retry loop decides how long to wait; Prefect's would hide the error class meanwhile.
        with temporary_settings(updates={PREFECT_CLIENT_MAX_RETRIES: 0}):
            async with client:
                await asyncio.wait_for(client.request("POST", "/work_pools/filter", json={"limit": 1}), timeout_s)
    except httpx.HTTPStatusError as exc:
        raise _refusal(subject, exc.response.status_code) from None
    except asyncio.TimeoutError:
        raise PrefectUnreachable(subject, f"TimeoutError: no answer within {timeout_s:g} s") from None
    except (httpx.TransportError, OSError) as exc:
        raise PrefectUnreachable(subject, describe_exception(exc)) from None


def _no_connect_retries(client: PrefectClient, api_url: str) -> None:
    """Undo the 3 connection retries Prefect gives its transport (1.5 s per refused attempt).

    Prefect sets them on the connection pool after creating its client; the same
    guarded path is taken back here. Were it to change, probes would only be slower.
    """
    transport_for_url = getattr(client._client, "_transport_for_url", None)  # noqa: SLF001 - see above
    transport = transport_for_url(httpx.URL(api_url)) if callable(transport_for_url) else None
    pool = getattr(transport, "_pool", None)
    if hasattr(pool, "_retries"):
        pool._retries = 0  # noqa: SLF001


def _refusal(subject: str, status: int) -> StartupError:
    if status in (401, 403):
        which = "401 Unauthorized" if status == 401 else "403 Forbidden"
        return StartupError(
            f"{subject} refuses our credentials ({which}); check the workspace's api_key or auth_string"
        )
    if status in _TRANSIENT_STATUS:
        return PrefectUnreachable(subject, f"HTTP {status}")
    return StartupError(
        f"{subject} answered HTTP {status} to an API call; is this the API root (usually ending in /api)?"
    )


async def probe_ledger(dsn: str, timeout_s: float = 10.0) -> str:
    """Reach the ledger without writing to it; returns what was found (schema revision...).

    Raises StartupError naming the DSN (password hidden) and the error class.
    """
    url = ledger_url(dsn)
    subject = f"ledger {url.render_as_string(hide_password=True)}"
    if is_sqlite_memory(url):
        return f"{subject} in memory (private to the process)"
    if is_sqlite(url):
        found = _sqlite_file(url, subject)
        if found is None:
            return f"{subject} does not exist yet; serve creates it"
        url = found
    engine = create_async_engine(url, poolclass=NullPool, connect_args=_connect_timeout(url, timeout_s))
    try:
        async with engine.connect() as connection:
            revision = await asyncio.wait_for(_schema_revision(connection), timeout_s)
    except ImportError as exc:
        raise StartupError(f"{subject} needs a driver that is not installed ({exc}); "
                           "install prefect-push-dispatcher[postgres]") from None
    except (asyncio.TimeoutError, TimeoutError):
        raise StartupError(f"{subject} unreachable: no answer within {timeout_s:g} s") from None
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot use it"; named, not hidden
        raise StartupError(f"{subject} unreachable: {describe_exception(exc)}") from None
    finally:
        await engine.dispose()
    return f"{subject} reachable, {revision}"


def _sqlite_file(url: URL, subject: str) -> URL | None:
    """The file opened read-only (None: not created yet); its directory must take SQLite's -wal file."""
    path = Path(url.database or "").expanduser()
    directory = path.parent if path.exists() else _nearest_existing(path.parent)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StartupError(f"{subject} cannot be written: directory {directory} is not writable")
    if not path.exists():
        return None
    return url.set(database=f"file:{path}?mode=ro", query={"uri": "true"})


def _nearest_existing(directory: Path) -> Path:
    while not directory.exists():
        directory = directory.parent
    return directory


def _connect_timeout(url: URL, timeout_s: float) -> dict[str, float]:
    return {} if is_sqlite(url) else {"timeout": timeout_s}  # asyncpg waits 60 s by default


async def _schema_revision(connection: AsyncConnection) -> str:
    await connection.execute(text("SELECT 1"))
    has_table = await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
    if not has_table:
        return "no schema yet (serve creates it)"
    revision = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    head = _head_revision()
    state = "current" if revision == head else f"serve migrates it to {head}"
    return f"schema revision {revision} ({state})"


def _head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    from dispatcher.ledger.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
