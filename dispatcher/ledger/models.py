"""Pydantic views of ledger data handed to the rest of the dispatcher."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field


class AttemptRef(BaseModel):
    """Which attempt of which flow run a ledger row is about."""

    model_config = ConfigDict(frozen=True)

    flow_run_id: str = Field(description="Prefect flow run id (UUID string).")
    attempt_id: str = Field(description="The attempt's id (UUID string): the claim's PENDING state id, or for rows "
                            "from before attempts existed, the flow run id.")


class LedgerRun(BaseModel):
    """Read-only snapshot of one ``runs`` row: one attempt of a flow run."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    attempt_id: str = Field(description="The attempt (UUID string; the claim's PENDING state id); primary key.")
    flow_run_id: str = Field(description="Prefect flow run id (UUID string).")
    attempt: int = Field(description="1, 2, 3... within the flow run, in claim order.")
    workspace: str = Field(description="Workspace the run is billed to.")
    pool: str = Field(description="Work pool the run was taken from.")
    provider: str = Field(description="Infrastructure provider (ecs, cloud-run, aci, process).")
    infrastructure_id: Optional[str] = Field(
        default=None, description="Provider handle of the started infrastructure; null until submitted."
    )
    claimed_at: datetime = Field(description="When a dispatcher claimed the run (UTC).")
    submitted_at: Optional[datetime] = Field(
        default=None, description="When the infrastructure was submitted to the provider (UTC)."
    )
    started_at: Optional[datetime] = Field(
        default=None, description="Provider-reported infrastructure start (UTC); null if it never started."
    )
    stopped_at: Optional[datetime] = Field(
        default=None, description="Provider-reported infrastructure teardown (UTC)."
    )
    exit_code: Optional[int] = Field(default=None, description="Exit code of the flow run process, if known.")
    reason: Optional[str] = Field(default=None, description="Provider's stop reason or error text.")
    compute_seconds: Optional[float] = Field(
        default=None, description="Exact seconds between start and stop; null until metered."
    )
    billed_minutes: Optional[int] = Field(
        default=None, description="Compute minutes billed (rounded up); null until metered."
    )
    usage_month: Optional[str] = Field(
        default=None, description="UTC month (YYYY-MM) of the teardown the minutes are billed to."
    )
    metered_at: Optional[datetime] = Field(
        default=None, description="When the run was metered (UTC); null while in flight."
    )
    final_state: Optional[str] = Field(default=None, description="Final Prefect state name, if recorded.")
    updated_at: datetime = Field(description="Last time the row changed (UTC).")
    admitted_at: Optional[datetime] = Field(default=None, description="When its budgets admitted it (UTC), just before submission.")
    deployment_id: Optional[str] = Field(default=None, description="Its deployment's id; null for ad-hoc runs and old rows.")
    deployment_name: Optional[str] = Field(default=None, description="Its deployment's name when it was submitted.")
    flow_name: Optional[str] = Field(default=None, description="Its flow's name.")
    flow_run_name: Optional[str] = Field(default=None, description="The flow run's name.")
    vcpu: Optional[float] = Field(default=None, description="vCPUs its job configuration asked for, if it said.")
    memory_mib: Optional[int] = Field(default=None, description="Memory (MiB) its job configuration asked for, if it said.")
    watch_key: Optional[str] = Field(default=None, description="Digest of its provider's status batch (cluster, location...); "
                                     "null when its provider batches nothing or the row is from before 0005.")
    watch_group: Optional[int] = Field(default=None, description="Its watch group within ``watch_key``: replicas divide "
                                       "the watching by group (see dispatcher/loops/shards.py).")

    @property
    def in_flight(self) -> bool:
        """Admitted or submitted, not yet metered nor closed: it uses compute now."""
        started = self.admitted_at is not None or self.infrastructure_id is not None
        return started and self.metered_at is None and self.final_state is None


class RunFacts(BaseModel):
    """What an attempt runs and asks for, recorded at admission for usage reports."""

    model_config = ConfigDict(frozen=True)

    deployment_id: Optional[str] = Field(default=None, description="The run's deployment id, if it has one.")
    deployment_name: Optional[str] = Field(default=None, description="From the label prefect.io/deployment-name.")
    flow_name: Optional[str] = Field(default=None, description="From the label prefect.io/flow-name.")
    flow_run_name: Optional[str] = Field(default=None, description="From the label prefect.io/flow-run-name.")
    vcpu: Optional[float] = Field(default=None, description="vCPUs asked for (provider.resources); None: the cloud's default.")
    memory_mib: Optional[int] = Field(default=None, description="Memory asked for in MiB; None: the cloud's default.")


class BudgetLimit(BaseModel):
    """A budget that applies to a run: its workspace's (pool None) or its pool's."""

    model_config = ConfigDict(frozen=True)

    pool: Optional[str] = Field(default=None, description="None: the workspace's own budget.")
    minutes: int = Field(description="Compute minutes per month.")


class UsageRow(BaseModel):
    """Metered compute of one workspace in one month."""

    model_config = ConfigDict(frozen=True)

    workspace: str = Field(description="Workspace the usage is billed to.")
    month: str = Field(description="UTC month of infrastructure teardown, YYYY-MM.")
    flow_runs: int = Field(description="Number of flow runs with a metered attempt.")
    attempts: int = Field(description="Number of metered attempts (a retried run counts each attempt).")
    billed_minutes: int = Field(description="Sum of billed (rounded-up) minutes.")
    compute_seconds: float = Field(description="Sum of exact compute seconds.")
