"""Dispatcher configuration: workspaces, their pools and limits, ledger, service.

Loaded from YAML (``dispatcher serve --config dispatcher.yaml``). ``${VAR}`` and
``${VAR:-default}`` in the file are replaced from the environment so secrets can
stay out of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from dispatcher.config.file import ConfigError, ConfigSource, Loc, Problem, read_config_file
from dispatcher.config.problems import api_token_problems, duplicate_names, file_order, unknown_keys, validation_problems
from dispatcher.config.usage import ApiConfig, BudgetPolicy, PriceTable
from providers import registry
from providers.paths import STATE_HOME

__all__ = ["ConfigError", "DispatcherConfig", "Limits", "LoopConfig", "PoolConfig", "ServiceConfig",
           "WorkspaceConfig", "load_config"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def default_ledger_dsn() -> str:
    return f"sqlite+aiosqlite:///{STATE_HOME / 'ledger.db'}"


def _known_provider(kind: str) -> str:
    """Provider kinds are checked when the file is read, not when the first run of a pool arrives.

    Only against the registry's lines: whether a kind's provider has landed and its SDK
    is installed is for ``serve`` and ``check`` to say (exit 4), once a pool needs it.
    """
    if kind not in registry.kinds():
        raise ValueError(f"must name a known provider: {', '.join(registry.kinds())}")
    return kind


class Limits(BaseModel):
    """Per-run caps. ``None`` means no cap from this level."""

    model_config = ConfigDict(extra="forbid")

    max_vcpu: float | None = Field(default=None, gt=0, description="Most vCPUs one run may ask for.")
    max_memory_mib: int | None = Field(default=None, gt=0, description="Most memory (MiB) one run may ask for.")
    max_ephemeral_storage_gib: int | None = Field(default=None, gt=0, description="Most ephemeral disk (GiB) per run.")
    max_runtime_s: int | None = Field(
        default=None, gt=0, description="Wall-clock seconds before a run is stopped (TimedOut)."
    )

    def overlay(self, other: Limits | None) -> Limits:
        """Values set in ``other`` win over ours."""
        if other is None:
            return self
        return self.model_copy(update=other.model_dump(exclude_none=True))


#: Prefect Managed's published limits: 4 vCPU, 16 GB, 128 GB disk, 24 h.
MANAGED_LIMITS = Limits(max_vcpu=4, max_memory_mib=16384, max_ephemeral_storage_gib=128, max_runtime_s=24 * 3600)
#: Push pools on Prefect Cloud have no resource caps but the same 24 h runtime cap.
PUSH_LIMITS = Limits(max_runtime_s=24 * 3600)


#: Official Prefect images: the full one and the client-only one (PrefectHQ/prefect-cloud deploys managed
#: runs with prefecthq/prefect-client:3-python3.X), from Docker Hub with or without its registry name.
OFFICIAL_IMAGES = ("prefecthq/prefect:*", "prefecthq/prefect-client:*",
                   "docker.io/prefecthq/prefect:*", "docker.io/prefecthq/prefect-client:*")


class ManagedConfig(BaseModel):
    """What prefect:managed pools may run (their resources are MANAGED_LIMITS, lowered by ``limits:``)."""

    model_config = ConfigDict(extra="forbid")

    allowed_images: list[str] = Field(
        default_factory=lambda: list(OFFICIAL_IMAGES), min_length=1,
        description="Shell-style patterns of the images managed runs may use; a run asking for another image "
        "ends Failed (InvalidJobConfiguration) before anything starts.",
    )


class PoolConfig(BaseModel):
    """One push work pool served by a workspace."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Work pool name on the Prefect server.")
    work_queues: list[str] | None = Field(default=None, description="Only these queues (default: all).")
    limits: Limits | None = Field(default=None, description="Overrides of the workspace limits for this pool.")
    provider: str | None = Field(
        default=None,
        description="Provider kind for a prefect:managed pool (default: the dispatcher's managed_provider).",
    )
    monthly_compute_minutes: int | None = Field(
        default=None, gt=0, description="This pool's own monthly budget, within the workspace's (same policy)."
    )

    @field_validator("provider")
    @classmethod
    def _provider_exists(cls, kind: str | None) -> str | None:
        return None if kind is None else _known_provider(kind)


class WorkspaceConfig(BaseModel):
    """A Prefect API (self-hosted server or Cloud workspace) with its push pools."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Name used in the ledger, metrics and logs.")
    api_url: str = Field(description="Prefect API URL, e.g. http://prefect:4200/api.")
    api_key: SecretStr | None = Field(default=None, description="Prefect Cloud API key (Bearer).")
    auth_string: SecretStr | None = Field(default=None, description="Self-hosted basic auth 'user:password'.")
    pools: list[PoolConfig] = Field(description="Push pools to serve.")
    limits: Limits | None = Field(default=None, description="Caps for every pool of this workspace.")
    monthly_compute_minutes: int | None = Field(
        default=None, gt=0, description="Stop starting runs once this many minutes are used in the current month."
    )
    budget: BudgetPolicy = Field(
        default_factory=BudgetPolicy, description="How this workspace's budgets are enforced and alerted on."
    )
    ui_url: str | None = Field(
        default=None, description="Prefect UI base URL for links to runs (default: derived from api_url)."
    )

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https") or not rest.strip("/"):
            raise ValueError("must be an http:// or https:// URL of the Prefect API, e.g. http://prefect:4200/api")
        return url

    @field_validator("ui_url")
    @classmethod
    def _http_ui_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL of the Prefect UI, e.g. http://prefect:4200")
        return url

    @field_validator("pools")
    @classmethod
    def _some_pools(cls, pools: list[PoolConfig]) -> list[PoolConfig]:
        # Unique names are checked by load_config on the file's data, with every other problem.
        if not pools:
            raise ValueError("must list at least one pool (a workspace without pools serves nothing)")
        return pools

    @model_validator(mode="after")
    def _one_auth(self) -> WorkspaceConfig:
        if self.api_key and self.auth_string:
            raise ValueError("set api_key or auth_string, not both")
        return self


class ServiceConfig(BaseModel):
    """HTTP endpoints and logging."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", description="Address for /healthz and /metrics.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port for /healthz and /metrics (0: do not serve).")
    log_json: bool = Field(default=False, description="Log one JSON object per line.")
    log_level: str = Field(default="INFO", description="Python log level: DEBUG, INFO, WARNING, ERROR, CRITICAL.")
    startup_timeout_s: float = Field(
        default=60.0, gt=0,
        description="How long `serve` waits for an unreachable Prefect API at start before it exits (code 4).",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (any case)")
        return level.upper()


class LoopConfig(BaseModel):
    """Timing of the dispatch loop. Defaults are tuned for sub-second claims."""

    model_config = ConfigDict(extra="forbid")

    poll_interval_s: float = Field(default=0.5, gt=0, description="How often each pool is asked for due runs.")
    listen_for_events: bool = Field(
        default=True, description="Wake pollers from Prefect's events websocket when runs are created (a speed-up)."
    )
    prefetch_s: float = Field(
        default=10.0, ge=0, description="Runs due within this window are fetched and claimed on time."
    )
    heartbeat_interval_s: float = Field(default=30.0, gt=0, description="Pool heartbeat period (pool shows READY).")
    watch_interval_s: float = Field(default=2.0, gt=0, description="How often in-flight runs are observed.")
    prefect_sweep_every_ticks: int = Field(
        default=15, ge=1,
        description="Every this many watch ticks, every watched run is read from Prefect. On the other ticks only "
        "runs that may need an action are: infrastructure not steadily running, a state other than Running at the "
        "last read, past the runtime cap, or CANCELLING now (one filtered query). 1: every run, every tick.",
    )
    max_concurrent_submissions: int = Field(default=32, ge=1, description="Submissions in flight per workspace.")
    submit_deadline_s: float = Field(
        default=900.0, gt=0, description="How long throttling/capacity errors may delay a submission before it fails."
    )
    watch_error_deadline_s: float = Field(
        default=600.0, gt=0, description="How long a run may stay unobservable before it is marked Crashed."
    )
    pending_grace_s: float = Field(
        default=30.0, gt=0, description="A PENDING run with no infrastructure id older than this is re-driven."
    )
    stop_timeout_s: float = Field(
        default=120.0, gt=0,
        description="After asking infrastructure to stop, how long to wait before forcing the state.",
    )
    claim_horizon_s: float = Field(
        default=30.0, gt=0,
        description="A run is claimed only if its provider could submit it within this many seconds (quota pacing); "
        "later ones stay Scheduled, free for another replica.",
    )
    provider_call_deadline_s: float = Field(
        default=60.0, gt=0, description="Deadline of one provider stop or lookup, retries included."
    )
    shutdown_grace_s: float = Field(
        default=20.0, ge=0, description="On SIGTERM, how long submissions already claimed may take before recovery takes them over."
    )
    prefect_client_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of one Prefect API call by Prefect's client (2**n s apart) before the loop backs off."
    )
    budget_interval_s: float = Field(
        default=15.0, gt=0,
        description="How often budgets are read from the ledger: gauges, alerts, stopping runs (running_runs: stop).",
    )
    event_interval_s: float = Field(default=5.0, gt=0, description="How often queued Prefect events are delivered.")
    health_stale_after_s: float = Field(
        default=60.0, gt=0, description="A loop without a successful tick for this long (and three of its periods) is not ready."
    )
    membership_interval_s: float = Field(
        default=3.0, gt=0, description="How often a replica beats in the ledger and reads which replicas are live."
    )
    member_ttl_s: float = Field(
        default=15.0, gt=0,
        description="A replica whose beat has not moved for this long is dead; its runs are taken over by the others "
        "(takeover within this plus one recovery pass).",
    )

    @model_validator(mode="after")
    def _ttl_spans_beats(self) -> "LoopConfig":
        if self.member_ttl_s < 2 * self.membership_interval_s:
            raise ValueError("member_ttl_s must be at least twice membership_interval_s (one late beat is not a death)")
        return self


class DispatcherConfig(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid")

    workspaces: list[WorkspaceConfig] = Field(description="Workspaces to serve.")
    ledger_dsn: str = Field(
        default_factory=default_ledger_dsn,
        description="SQLAlchemy async DSN of the usage ledger (sqlite+aiosqlite:/// or postgresql+asyncpg://).",
    )
    managed_provider: str = Field(default="local", description="Provider that runs prefect:managed pools.")
    managed: ManagedConfig = Field(default_factory=ManagedConfig, description="Images prefect:managed pools may run.")
    providers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Settings per provider kind, validated by that provider's settings model."
    )
    limits: Limits | None = Field(default=None, description="Caps for every workspace.")
    loop: LoopConfig = Field(default_factory=LoopConfig, description="Dispatch loop timing.")
    service: ServiceConfig = Field(default_factory=ServiceConfig, description="HTTP and logging.")
    instance_name: str | None = Field(default=None, description="Worker name shown in Prefect (default: host:pid).")
    api: ApiConfig = Field(default_factory=ApiConfig, description="Bearer tokens of the usage API and /metrics.")
    prices: PriceTable = Field(default_factory=PriceTable, description="Compute prices for cost estimates.")

    @field_validator("workspaces")
    @classmethod
    def _some_workspaces(cls, workspaces: list[WorkspaceConfig]) -> list[WorkspaceConfig]:
        if not workspaces:
            raise ValueError("must list at least one workspace (with none, serve would start and serve nothing)")
        return workspaces

    @field_validator("ledger_dsn")
    @classmethod
    def _supported_ledger(cls, dsn: str) -> str:
        from dispatcher.ledger.engine import ledger_url  # sqlalchemy: only once a file is validated

        try:
            ledger_url(dsn)
        except Exception as exc:  # noqa: BLE001 - parse errors quote parts of the DSN, which may hold a password
            unsupported = str(exc).startswith("unsupported")
            what = str(exc).split(";")[0] if unsupported else "is not a database URL"
            raise ValueError(f"{what}; use sqlite+aiosqlite:///path or postgresql+asyncpg://...") from None
        return dsn

    @field_validator("managed_provider")
    @classmethod
    def _managed_provider_exists(cls, kind: str) -> str:
        return _known_provider(kind)


def load_config(path: Path) -> DispatcherConfig:
    """Read and validate a YAML configuration file.

    Raises ConfigError listing every problem of the file, one line each (file, key
    path, what is wrong, what is allowed); values that may be secrets are not shown.
    """
    source = read_config_file(path)
    data = source.data if isinstance(source.data, dict) else {}
    problems = list(source.problems)
    problems += _validated(DispatcherConfig, source.data, (), source)
    problems += duplicate_names(data.get("workspaces"), ("workspaces",), "workspace")
    for i, workspace in enumerate(data.get("workspaces") or []):
        if isinstance(workspace, dict):
            problems += duplicate_names(workspace.get("pools"), ("workspaces", i, "pools"), "pool")
    if isinstance(data.get("providers"), dict):
        problems += _provider_section_problems(data["providers"], source)
    problems += api_token_problems(data, source.from_env)
    if problems:
        problems.sort(key=lambda problem: file_order(source.data, problem.loc))
        raise ConfigError([problem.render(source.name) for problem in problems])
    return DispatcherConfig.model_validate(source.data)


def _validated(model: type[BaseModel], data: Any, loc: Loc, source: ConfigSource) -> list[Problem]:
    """Unknown keys at any depth, then pydantic's errors (an unknown key it also found is not repeated)."""
    unknown = unknown_keys(model, data, loc)
    try:
        model.model_validate(data)
    except ValidationError as exc:
        reported = source.unset | {problem.loc for problem in unknown}
        return unknown + validation_problems(exc, model, prefix=loc, hidden=source.from_env, skip=reported)
    return unknown


def _provider_section_problems(sections: dict[Any, Any], source: ConfigSource) -> list[Problem]:
    """Validate each ``providers.<kind>`` section with that provider's own settings model."""
    problems: list[Problem] = []
    for kind, section in sections.items():
        loc = ("providers", kind)
        if kind not in registry.kinds():
            problems.append(Problem(loc, f"unknown provider {kind!r}; known: {', '.join(registry.kinds())}"))
            continue
        try:
            model = registry.provider_class(kind).settings_model
        except registry.RegistryError as exc:  # its SDK is not installed, or only its pool template has landed
            problems.append(Problem(loc, str(exc)))
            continue
        if model is None:
            if section:
                problems.append(Problem(loc, f"the {kind} provider takes no settings"))
            continue
        if not isinstance(section, dict):
            continue  # DispatcherConfig already says it must be a mapping
        problems += _validated(model, section, loc, source)
    return problems

