"""Dispatcher configuration: workspaces, their pools and limits, ledger, service.

Loaded from YAML (``dispatcher serve --config dispatcher.yaml``). ``${VAR}`` and
``${VAR:-default}`` in the file are replaced from the environment so secrets can
stay out of it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_STATE_DIR = Path(os.environ.get("DISPATCHER_STATE_DIR", "~/.local/state/prefect-push-dispatcher")).expanduser()


class Limits(BaseModel):
    """Per-run caps. ``None`` means no cap from this level."""

    model_config = ConfigDict(extra="forbid")

    max_vcpu: float | None = Field(default=None, description="Most vCPUs one run may ask for.")
    max_memory_mib: int | None = Field(default=None, description="Most memory (MiB) one run may ask for.")
    max_ephemeral_storage_gib: int | None = Field(default=None, description="Most ephemeral disk (GiB) per run.")
    max_runtime_s: int | None = Field(default=None, description="Wall-clock seconds before a run is stopped (TimedOut).")

    def overlay(self, other: Limits | None) -> Limits:
        """Values set in ``other`` win over ours."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_none=True))


#: Prefect Managed's published limits: 4 vCPU, 16 GB, 128 GB disk, 24 h.
MANAGED_LIMITS = Limits(max_vcpu=4, max_memory_mib=16384, max_ephemeral_storage_gib=128, max_runtime_s=24 * 3600)
#: Push pools on Prefect Cloud have no resource caps but the same 24 h runtime cap.
PUSH_LIMITS = Limits(max_runtime_s=24 * 3600)


class PoolConfig(BaseModel):
    """One push work pool served by a workspace."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Work pool name on the Prefect server.")
    work_queues: list[str] | None = Field(default=None, description="Only these queues (default: all).")
    limits: Limits | None = Field(default=None, description="Overrides of the workspace limits for this pool.")
    provider: str | None = Field(
        default=None,
        description="Provider kind for a prefect:managed pool (default: the dispatcher's managed_provider).",
    )


class WorkspaceConfig(BaseModel):
    """A Prefect API (self-hosted server or Cloud workspace) with its push pools."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Name used in the ledger, metrics and logs.")
    api_url: str = Field(description="Prefect API URL, e.g. http://prefect:4200/api.")
    api_key: SecretStr | None = Field(default=None, description="Prefect Cloud API key (Bearer).")
    auth_string: SecretStr | None = Field(default=None, description="Self-hosted basic auth 'user:password'.")
    pools: list[PoolConfig] = Field(description="Push pools to serve.")
    limits: Limits | None = Field(default=None, description="Caps for every pool of this workspace.")
    monthly_compute_minutes: int | None = Field(
        default=None, description="Stop starting runs once this many minutes are metered in the current month."
    )

    @model_validator(mode="after")
    def _one_auth(self) -> WorkspaceConfig:
        if self.api_key and self.auth_string:
            raise ValueError(f"workspace {self.name}: set api_key or auth_string, not both")
        return self


class ServiceConfig(BaseModel):
    """HTTP endpoints and logging."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address for /healthz and /metrics.")
    port: int = Field(default=8080, description="Port for /healthz and /metrics (0: do not serve).")
    log_json: bool = Field(default=False, description="Log one JSON object per line.")
    log_level: str = Field(default="INFO", description="Python log level.")


class LoopConfig(BaseModel):
    """Timing of the dispatch loop. Defaults are tuned for sub-second claims."""

    model_config = ConfigDict(extra="forbid")

    poll_interval_s: float = Field(default=0.5, description="How often each pool is asked for due runs.")
    listen_for_events: bool = Field(
        default=True, description="Wake pollers from Prefect's events websocket when runs are created (a speed-up)."
    )
    prefetch_s: float = Field(default=10.0, description="Runs due within this window are fetched and claimed on time.")
    heartbeat_interval_s: float = Field(default=30.0, description="Pool heartbeat period (pool shows READY).")
    watch_interval_s: float = Field(default=2.0, description="How often in-flight runs are observed.")
    max_concurrent_submissions: int = Field(default=32, description="Submissions in flight per workspace.")
    submit_deadline_s: float = Field(
        default=900.0, description="How long throttling/capacity errors may delay a submission before it fails."
    )
    watch_error_deadline_s: float = Field(
        default=600.0, description="How long a run may stay unobservable before it is marked Crashed."
    )
    pending_grace_s: float = Field(
        default=30.0, description="A PENDING run with no infrastructure id older than this is re-driven."
    )
    stop_timeout_s: float = Field(
        default=120.0, description="After asking infrastructure to stop, how long to wait before forcing the state."
    )
    shutdown_grace_s: float = Field(
        default=20.0, description="On SIGTERM, how long submissions already claimed may take before recovery takes them over."
    )
    prefect_client_retries: int = Field(
        default=2, description="Retries of one Prefect API call by Prefect's client (2**n s apart) before the loop backs off."
    )
    health_stale_after_s: float = Field(
        default=60.0, description="A loop without a successful tick for this long (and three of its periods) is not ready."
    )


class DispatcherConfig(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")

    workspaces: list[WorkspaceConfig] = Field(description="Workspaces to serve.")
    ledger_dsn: str = Field(
        default_factory=lambda: f"sqlite+aiosqlite:///{DEFAULT_STATE_DIR / 'ledger.db'}",
        description="SQLAlchemy async DSN of the usage ledger (sqlite+aiosqlite:/// or postgresql+asyncpg://).",
    )
    managed_provider: str = Field(default="local", description="Provider that runs prefect:managed pools.")
    providers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings per provider kind, validated by that provider's settings model."
    )
    limits: Limits | None = Field(default=None, description="Caps for every workspace.")
    loop: LoopConfig = Field(default_factory=LoopConfig, description="Dispatch loop timing.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="HTTP and logging.")
    instance_name: str | None = Field(default=None, description="Worker name shown in Prefect (default: host:pid).")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str) -> str:
    """Replace ${VAR} / ${VAR:-default}; a missing variable without default is an error."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ValueError(f"configuration refers to ${{{name}}} but it is not set")

    return _ENV_REF.sub(replace, text)


def _expand_values(node: Any) -> Any:
    """Expand ${VAR} in string values only (comments and keys are left alone)."""
    if isinstance(node, str):
        return expand_env(node)
    if isinstance(node, list):
        return [_expand_values(item) for item in node]
    if isinstance(node, dict):
        return {key: _expand_values(value) for key, value in node.items()}
    return node


def load_config(path: Path) -> DispatcherConfig:
    """Read and validate a YAML configuration file."""
    raw = _expand_values(yaml.safe_load(path.read_text()) or {})
    return DispatcherConfig.model_validate(raw)
