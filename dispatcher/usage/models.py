"""What the usage API, the usage page and ``dispatcher usage`` show: reports, runs, budgets."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from pydantic import BaseModel, Field

from dispatcher.config.usage import BudgetMode, RunningRuns
from dispatcher.ledger.usage import GroupBy
from dispatcher.policy.budget import BudgetStatus


class UsageFigures(BaseModel):
    """Compute of a month (or of one group of it): billed, in flight, and what it would cost."""

    attempts: int = Field(default=0, description="Attempts metered (a retried flow run counts each attempt).")
    flow_runs: int = Field(default=0, description="Flow runs among them.")
    billed_minutes: int = Field(default=0, description="Billed minutes of metered attempts (any started minute counts).")
    in_flight_attempts: int = Field(default=0, description="Attempts running now (current month only).")
    in_flight_minutes: int = Field(default=0, description="Minutes they have used so far (each at least one).")
    used_minutes: int = Field(default=0, description="billed_minutes + in_flight_minutes: what budgets count.")
    vcpu_hours: float = Field(default=0.0, description="vCPU-hours of the attempts whose vCPUs are on record.")
    memory_gib_hours: float = Field(default=0.0, description="GiB-hours of the attempts whose memory is on record.")
    estimated_cost: Optional[float] = Field(
        default=None, description="vCPU and memory time at the configured prices; null when nothing could be priced."
    )
    unpriced_attempts: int = Field(default=0, description="Attempts without vCPU or memory on record, or of an unpriced provider.")


class UsageGroup(UsageFigures):
    """One row of a grouping (one pool, deployment, flow, provider or day)."""

    key: str = Field(description="Filter value for the runs behind this row (pool name, deployment id, flow name, provider, YYYY-MM-DD), or 'unknown'.")
    label: str = Field(description="What to show (for deployments: flow/deployment).")


class UsageReport(BaseModel):
    """A workspace's usage in one month, grouped one way."""

    workspace: str = Field(description="The workspace.")
    month: str = Field(description="UTC month, YYYY-MM (of the infrastructure's teardown).")
    group_by: GroupBy = Field(description="How the groups are formed.")
    currency: str = Field(description="Currency of the estimated costs.")
    total: UsageFigures = Field(description="The whole month.")
    groups: list[UsageGroup] = Field(description="One row per group, largest use first.")
    generated_at: datetime = Field(description="When this report was computed (UTC); in-flight minutes are as of then.")


class RunRow(BaseModel):
    """One attempt behind a figure."""

    flow_run_id: str = Field(description="Prefect flow run id.")
    flow_run_name: Optional[str] = Field(default=None, description="The flow run's name, if recorded.")
    attempt: int = Field(description="1, 2, 3... within the flow run.")
    attempt_id: str = Field(description="The attempt's id.")
    pool: str = Field(description="Work pool.")
    provider: str = Field(description="Provider kind.")
    deployment_id: Optional[str] = Field(default=None, description="Deployment id, if any.")
    deployment_name: Optional[str] = Field(default=None, description="Deployment name, if recorded.")
    flow_name: Optional[str] = Field(default=None, description="Flow name, if recorded.")
    infrastructure_id: Optional[str] = Field(default=None, description="The provider's handle (task ARN, PID...).")
    started_at: Optional[datetime] = Field(default=None, description="Infrastructure start (the cloud's clock).")
    stopped_at: Optional[datetime] = Field(default=None, description="Infrastructure teardown; null while in flight.")
    minutes: int = Field(description="Billed minutes, or for an attempt in flight the minutes used so far.")
    in_flight: bool = Field(description="True while the attempt runs.")
    final_state: Optional[str] = Field(default=None, description="Final Prefect state name, once known.")
    vcpu: Optional[float] = Field(default=None, description="vCPUs asked for.")
    memory_mib: Optional[int] = Field(default=None, description="Memory asked for, MiB.")
    estimated_cost: Optional[float] = Field(default=None, description="At the configured prices; null if unpriced.")
    ui_url: str = Field(description="The flow run in Prefect's UI.")


class RunPage(BaseModel):
    """A page of attempts, newest teardown first."""

    items: list[RunRow] = Field(description="The attempts of this page.")
    page: int = Field(description="This page's number, from 1.")
    page_size: int = Field(description="Attempts per page.")
    total: int = Field(description="Attempts matching, on all pages.")
    pages: int = Field(description="Number of pages.")


class BudgetView(BaseModel):
    """One budget in one month."""

    pool: Optional[str] = Field(default=None, description="The pool, for a pool's budget; null for the workspace's.")
    budget_minutes: int = Field(description="The budget (a month's override when one was set through the API).")
    used_minutes: int = Field(description="Billed plus in flight.")
    ratio: float = Field(description="used / budget.")
    status: BudgetStatus = Field(description="ok, warning (80 % or more), exceeded (all used).")
    alerted_pct: list[int] = Field(description="Thresholds whose alert was sent this month.")
    overridden: bool = Field(default=False, description="True when this month's figure was set through the API.")


class BudgetReport(BaseModel):
    """A workspace's budgets and their policy."""

    workspace: str = Field(description="The workspace.")
    month: str = Field(description="UTC month, YYYY-MM.")
    mode: BudgetMode = Field(description="reject or hold: what new runs get once a budget is used up.")
    running_runs: RunningRuns = Field(description="finish or stop: what running runs get then.")
    alert_thresholds_pct: list[int] = Field(description="Thresholds that emit a Prefect event once per month.")
    budgets: list[BudgetView] = Field(description="The workspace's budget, then its pools'.")


class BudgetChange(BaseModel):
    """A month's budget set through the API (admin tokens)."""

    monthly_compute_minutes: int = Field(gt=0, le=10**9, description="The month's budget in compute minutes.")
    pool: Optional[str] = Field(default=None, max_length=255, description="A pool of the workspace; null for the workspace's budget.")


class WorkspaceSummary(BaseModel):
    """A workspace the token may read."""

    name: str = Field(description="Workspace name.")
    ui_url: str = Field(description="Its Prefect UI.")
    pools: list[str] = Field(description="Its push pools.")
    monthly_compute_minutes: Optional[int] = Field(default=None, description="Its configured monthly budget.")
