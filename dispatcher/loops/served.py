"""What the loops work on: a push pool as served, one attempt of a run, one watched attempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, WorkPool
from prefect.workers.base import BaseJobConfiguration
from pydantic import BaseModel, ConfigDict, Field

from dispatcher.config import PoolConfig
from dispatcher.ledger import AttemptRef
from dispatcher.loops.calls import ProviderCalls
from dispatcher.policy.limits import EffectiveLimits
from providers.base import RunRef
from providers.secrets import RunSecrets


@dataclass
class ServedPool:
    """One pool of one workspace, with the provider that runs it (through its call path) and its caps."""

    config: PoolConfig
    pool_type: str
    provider: ProviderCalls
    limits: EffectiveLimits
    work_pool: WorkPool  # refreshed periodically: its base job template may change

    @property
    def name(self) -> str:
        return self.config.name


class Attempt(BaseModel):
    """One attempt of a flow run: one claim, one infrastructure, one ledger row.

    Its id is the id of the PENDING state our claim set, so every replica finds the same
    id for the same claim; attempts recorded before attempts existed use the flow run id.
    """

    model_config = ConfigDict(frozen=True)

    flow_run_id: UUID = Field(description="The Prefect flow run.")
    attempt_id: UUID = Field(description="The claim's PENDING state id (or the flow run id, for a legacy row).")

    @property
    def idempotency_key(self) -> str:
        """Same attempt -> same key, on every replica and after every restart (41 characters; ECS allows 64)."""
        return f"prefect-{self.attempt_id.hex}"

    @property
    def ledger(self) -> AttemptRef:
        return AttemptRef(flow_run_id=str(self.flow_run_id), attempt_id=str(self.attempt_id))

    def __str__(self) -> str:
        # In full: Prefect's state ids are UUIDv7, whose first digits are a timestamp shared by neighbours.
        attempt = "" if self.attempt_id == self.flow_run_id else f" (attempt {self.attempt_id})"
        return f"flow run {self.flow_run_id}{attempt}"


@dataclass
class TrackedRun:
    """An attempt whose infrastructure the watcher observes, plus what it has already done for it."""

    attempt: Attempt
    pool: ServedPool
    infrastructure_id: str
    configuration: BaseJobConfiguration
    submitted_at: datetime  # wall clock; from the ledger or Prefect after a restart
    max_runtime_s: int
    secrets: RunSecrets = field(default_factory=RunSecrets, repr=False)  # masked in every message built from its output
    watch_slot: UUID | str | None = None  # its watch group (see dispatcher/loops/shards.py); None: the attempt itself
    unobservable_since: float | None = None
    timeout_stop_requested: bool = False
    last_stop_at: float | None = None
    terminal_since: float | None = None
    exited_since: float | None = None  # monotonic time the infrastructure was first seen EXITED
    cancelling_since: float | None = None
    last_started_at: datetime | None = None  # last timestamps seen, in case the infrastructure vanishes
    last_stopped_at: datetime | None = None

    @property
    def flow_run_id(self) -> UUID:
        return self.attempt.flow_run_id

    @property
    def slot(self) -> UUID | str:
        """What replicas divide the watching by: its watch group, else the attempt itself."""
        return self.watch_slot if self.watch_slot is not None else self.attempt.attempt_id

    @property
    def ref(self) -> RunRef:
        return RunRef(flow_run_id=self.attempt.flow_run_id, attempt_id=self.attempt.attempt_id,
                      infrastructure_id=self.infrastructure_id, configuration=self.configuration)

    def superseded_by(self, flow_run: FlowRun) -> bool:
        """Prefect has moved on to another attempt of this run (a retry), so our attempt is over.

        Retried: the run went back to SCHEDULED (but not for one of the engine's own in-process
        retries, which stay on our infrastructure), or a new claim's PENDING state (another id),
        or another attempt's infrastructure is recorded. A legacy attempt (id = flow run id) is
        recognised by its infrastructure id alone.
        """
        state = flow_run.state
        if state is not None and state.type.value == "SCHEDULED":
            return not is_in_process_retry(flow_run)
        if flow_run.infrastructure_pid and flow_run.infrastructure_pid != self.infrastructure_id:
            return True
        legacy = self.attempt.attempt_id == self.attempt.flow_run_id  # its claim's state id is unknown
        return state is not None and state.type.value == "PENDING" and not legacy and state.id != self.attempt.attempt_id


def is_in_process_retry(flow_run: FlowRun) -> bool:
    """SCHEDULED (AwaitingRetry) by the engine itself for a flow's own ``retries=``: the engine on
    the current infrastructure runs it again; no dispatcher may claim it."""
    return getattr(flow_run.empirical_policy, "retry_type", None) == "in_process"
