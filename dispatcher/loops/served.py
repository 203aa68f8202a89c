"""A push work pool as the dispatcher serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, WorkPool

from dispatcher.config import Limits, PoolConfig
from providers.base import Provider
from providers.secrets import RunSecrets


@dataclass
class ServedPool:
    """One pool of one workspace, with the provider that runs it and its caps."""

    config: PoolConfig
    pool_type: str
    provider: Provider
    limits: Limits
    work_pool: WorkPool  # refreshed periodically: its base job template may change

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class TrackedRun:
    """A run whose infrastructure the watcher observes, plus what it has already done for it."""

    flow_run_id: UUID
    pool: ServedPool
    infrastructure_id: str
    configuration: object  # the provider's job configuration (a BaseJobConfiguration)
    submitted_at: datetime  # wall clock; from the ledger or Prefect after a restart
    max_runtime_s: int
    unobservable_since: float | None = None
    timeout_stop_requested: bool = False
    last_stop_at: float | None = None
    terminal_since: float | None = None
    exited_since: float | None = None  # monotonic time the infrastructure was first seen EXITED
    cancelling_since: float | None = None
    last_started_at: datetime | None = None  # last timestamps seen, in case the infrastructure vanishes
    last_stopped_at: datetime | None = None
    flow_run: FlowRun | None = field(default=None, repr=False)
    secrets: RunSecrets = field(default_factory=RunSecrets, repr=False)  # masked in every message built from its output
