"""Everything the dispatcher asks of one Prefect API (one workspace).

A thin layer over Prefect's own ``PrefectClient`` (which already retries 429/503
and connection errors): it names the few calls the dispatcher makes and turns
orchestration answers into plain outcomes.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from uuid import UUID

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, State, StateType, WorkPool
from prefect.client.schemas.responses import SetStateStatus
from prefect.exceptions import ObjectNotFound
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

from dispatcher.config import WorkspaceConfig

#: Runs in these states may have infrastructure we must watch.
ACTIVE_STATES = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)
_PAGE = 200


class Proposal(str, enum.Enum):
    """What Prefect answered to a proposed state."""

    ACCEPTED = "ACCEPTED"
    REFUSED = "REFUSED"  # ABORT or REJECT: someone else owns the run or it moved on
    WAIT = "WAIT"  # too early (scheduled in the future) or waiting for a concurrency slot


class ProposalResult:
    """Outcome plus the state Prefect ended up with."""

    def __init__(self, outcome: Proposal, state: State | None, delay_s: float = 0.0, reason: str = "") -> None:
        self.outcome = outcome
        self.state = state
        self.delay_s = delay_s
        self.reason = reason


class PrefectWorkspace:
    """One workspace's Prefect API, used from one event loop."""

    def __init__(self, config: WorkspaceConfig, worker_name: str) -> None:
        self.config = config
        self.worker_name = worker_name
        self._client = PrefectClient(
            api=config.api_url,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            auth_string=config.auth_string.get_secret_value() if config.auth_string else None,
        )

    @property
    def client(self) -> PrefectClient:
        return self._client

    async def __aenter__(self) -> PrefectWorkspace:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)

    @contextmanager
    def settings(self) -> Iterator[None]:
        """Prefect settings as a worker of this workspace would have them.

        Job configurations take the flow run's PREFECT_API_URL and auth from the
        current settings; contextvars keep this local to the calling task.
        """
        updates = {
            PREFECT_API_URL: self.config.api_url,
            PREFECT_API_KEY: self.config.api_key.get_secret_value() if self.config.api_key else None,
            PREFECT_API_AUTH_STRING: self.config.auth_string.get_secret_value() if self.config.auth_string else None,
        }
        with temporary_settings(updates={k: v for k, v in updates.items() if v is not None},
                                restore_defaults={k for k, v in updates.items() if v is None}):
            yield

    async def read_pool(self, name: str) -> WorkPool:
        return await self._client.read_work_pool(name)

    async def heartbeat(self, pool: str, interval_s: float) -> None:
        await self._client.send_worker_heartbeat(pool, self.worker_name, heartbeat_interval_seconds=interval_s)

    async def due_runs(self, pool: str, queues: list[str] | None, before: datetime) -> list[FlowRun]:
        """Scheduled runs due before ``before``; Prefect applies pause and concurrency limits."""
        responses = await self._client.get_scheduled_flow_runs_for_work_pool(pool, queues, before)
        return [r.flow_run for r in responses]

    async def read_run(self, flow_run_id: UUID) -> FlowRun | None:
        try:
            return await self._client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return None

    async def active_runs(self, pools: list[str]) -> list[FlowRun]:
        """Every PENDING/RUNNING/CANCELLING run of these pools (paginated)."""
        flow_run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(ACTIVE_STATES))))
        pool_filter = WorkPoolFilter(name=WorkPoolFilterName(any_=pools))
        runs: list[FlowRun] = []
        while True:
            page = await self._client.read_flow_runs(
                flow_run_filter=flow_run_filter, work_pool_filter=pool_filter, limit=_PAGE, offset=len(runs)
            )
            runs.extend(page)
            if len(page) < _PAGE:
                return runs

    async def propose(self, flow_run_id: UUID, state: State, force: bool = False) -> ProposalResult:
        result = await self._client.set_flow_run_state(flow_run_id, state, force=force)
        reason = getattr(result.details, "reason", "") or ""
        if result.status == SetStateStatus.ACCEPT:
            return ProposalResult(Proposal.ACCEPTED, result.state)
        if result.status == SetStateStatus.WAIT:
            return ProposalResult(Proposal.WAIT, result.state, getattr(result.details, "delay_seconds", 1.0), reason)
        return ProposalResult(Proposal.REFUSED, result.state, reason=reason)

    async def set_infrastructure_pid(self, flow_run_id: UUID, infrastructure_id: str) -> None:
        await self._client.update_flow_run(flow_run_id, infrastructure_pid=infrastructure_id)

    async def deployment_exists(self, deployment_id: UUID) -> bool:
        try:
            await self._client.read_deployment(deployment_id)
        except ObjectNotFound:
            return False
        return True


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def seconds_since(moment: datetime | None, now: datetime | None = None) -> float:
    if moment is None:
        return 0.0
    # total_seconds(): Prefect's datetimes may be pendulum's, whose Interval cannot divide by a timedelta.
    return ((now or utcnow()) - moment).total_seconds()
