"""Everything the dispatcher asks of one Prefect API (one workspace).

A thin layer over Prefect's own ``PrefectClient`` (which already retries 429/503
and connection errors): it names the few calls the dispatcher makes and turns
orchestration answers into plain outcomes.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import ParamSpec, TypeVar
from uuid import UUID

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, State, StateType, WorkPool
from prefect.client.schemas.responses import DeploymentResponse, SetStateStatus
from prefect.context import SettingsContext, get_settings_context
from prefect.exceptions import ObjectNotFound
from prefect.settings import (
    PREFECT_API_AUTH_STRING,
    PREFECT_API_KEY,
    PREFECT_API_URL,
    PREFECT_CLIENT_MAX_RETRIES,
    Settings,
)

from dispatcher.config import WorkspaceConfig
from dispatcher.health import Dependency, DependencyUnavailable, describe_error

#: Runs in these states may have infrastructure we must watch.
ACTIVE_STATES = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)
_PAGE = 200
#: HTTP answers that mean "Prefect cannot serve us now", not "this request is wrong".
_OUTAGE_STATUSES = {401, 403, 408, 429, 500, 502, 503, 504}

P = ParamSpec("P")
T = TypeVar("T")


class PrefectUnavailable(DependencyUnavailable):
    """Prefect could not be reached, or refused us (5xx, 429, 401/403), after its client's own retries."""


def is_prefect_outage(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):  # connection refused/reset, timeouts, protocol errors
        return True
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code in _OUTAGE_STATUSES


def prefect_call(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Report the call's outcome to the workspace's ``prefect`` dependency; outages become PrefectUnavailable."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        self = args[0]
        with self.guard():  # type: ignore[attr-defined]
            return await method(*args, **kwargs)

    return guarded


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


class PrefectApi:
    """One workspace's Prefect API, used from one event loop."""

    def __init__(self, config: WorkspaceConfig, worker_name: str, client_retries: int = 2) -> None:
        self.config = config
        self.worker_name = worker_name
        self.health = Dependency("prefect", config.name)
        # Prefect's client retries 5 times with 2**n s backoff (a minute per call in an outage);
        # the dispatcher's loops back off themselves, so fewer retries keep every loop responsive.
        self._settings = self._workspace_settings(config)
        self._call_settings = self._settings.copy_with_update(updates={PREFECT_CLIENT_MAX_RETRIES: client_retries})
        self._profile = get_settings_context().profile
        self._client = PrefectClient(
            api=config.api_url,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            auth_string=config.auth_string.get_secret_value() if config.auth_string else None,
        )

    @property
    def client(self) -> PrefectClient:
        return self._client

    async def __aenter__(self) -> PrefectApi:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)

    @contextmanager
    def guard(self, for_flow_run: bool = False) -> Iterator[None]:
        """Around any use of the client: outages are counted once and raised as PrefectUnavailable.

        ``for_flow_run``: under the settings a flow run inherits (building its job configuration
        copies the current settings into its env), without the dispatcher's own client retries.
        """
        try:
            with self.settings() if for_flow_run else self._calls():
                yield
        except Exception as exc:
            if not is_prefect_outage(exc):
                self.health.succeeded()  # it answered, even if the answer is an error
                raise
            self.health.failed(exc)
            message = f"Prefect API of workspace {self.config.name!r}: {describe_error(exc)}"
            raise PrefectUnavailable(message, self.health) from exc
        self.health.succeeded()

    @contextmanager
    def settings(self) -> Iterator[None]:
        """Prefect settings as a worker of this workspace would have them.

        Job configurations take the flow run's PREFECT_API_URL and auth from the
        current settings; contextvars keep this local to the calling task. The settings
        object is built once: Prefect's ``temporary_settings`` copies every setting
        (about 25 ms here), entering a prepared context costs microseconds.
        """
        with SettingsContext(profile=self._profile, settings=self._settings):
            yield

    @contextmanager
    def _calls(self) -> Iterator[None]:
        with SettingsContext(profile=self._profile, settings=self._call_settings):
            yield

    @staticmethod
    def _workspace_settings(config: WorkspaceConfig) -> Settings:
        updates = {
            PREFECT_API_URL: config.api_url,
            PREFECT_API_KEY: config.api_key.get_secret_value() if config.api_key else None,
            PREFECT_API_AUTH_STRING: config.auth_string.get_secret_value() if config.auth_string else None,
        }
        current = get_settings_context().settings
        return current.copy_with_update(
            updates={k: v for k, v in updates.items() if v is not None},
            restore_defaults={k for k, v in updates.items() if v is None},
        )

    @prefect_call
    async def read_pool(self, name: str) -> WorkPool:
        return await self._client.read_work_pool(name)

    @prefect_call
    async def heartbeat(self, pool: str, interval_s: float) -> None:
        await self._client.send_worker_heartbeat(pool, self.worker_name, heartbeat_interval_seconds=interval_s)

    @prefect_call
    async def due_runs(self, pool: str, queues: list[str] | None, before: datetime) -> list[FlowRun]:
        """Scheduled runs due before ``before``; Prefect applies pause and concurrency limits."""
        responses = await self._client.get_scheduled_flow_runs_for_work_pool(pool, queues, before)
        return [r.flow_run for r in responses]

    @prefect_call
    async def read_run(self, flow_run_id: UUID) -> FlowRun | None:
        try:
            return await self._client.read_flow_run(flow_run_id)
        except ObjectNotFound:
            return None

    async def active_run_pages(self, pools: list[str]) -> AsyncIterator[list[FlowRun]]:
        """Every PENDING/RUNNING/CANCELLING run of these pools, a page at a time: at 10,000 runs in
        flight, all of them at once were the largest thing in the dispatcher's memory."""
        offset = 0
        while True:
            page = await self._runs_page(pools, list(ACTIVE_STATES), offset)
            if page:
                yield page
            if len(page) < _PAGE:
                return
            offset += len(page)

    async def runs_in_states(self, pools: list[str], states: list[StateType]) -> list[FlowRun]:
        """Every run of these pools whose state is one of ``states`` (paginated)."""
        runs: list[FlowRun] = []
        while True:
            page = await self._runs_page(pools, states, len(runs))
            runs.extend(page)
            if len(page) < _PAGE:
                return runs

    @prefect_call
    async def _runs_page(self, pools: list[str], states: list[StateType], offset: int) -> list[FlowRun]:
        flow_run_filter = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=states)))
        pool_filter = WorkPoolFilter(name=WorkPoolFilterName(any_=pools))
        return await self._client.read_flow_runs(
            flow_run_filter=flow_run_filter, work_pool_filter=pool_filter, limit=_PAGE, offset=offset
        )

    @prefect_call
    async def propose(self, flow_run_id: UUID, state: State, force: bool = False) -> ProposalResult:
        result = await self._client.set_flow_run_state(flow_run_id, state, force=force)
        reason = getattr(result.details, "reason", "") or ""
        if result.status == SetStateStatus.ACCEPT:
            return ProposalResult(Proposal.ACCEPTED, result.state)
        if result.status == SetStateStatus.WAIT:
            return ProposalResult(Proposal.WAIT, result.state, getattr(result.details, "delay_seconds", 1.0), reason)
        return ProposalResult(Proposal.REFUSED, result.state, reason=reason)

    @prefect_call
    async def set_infrastructure_pid(self, flow_run_id: UUID, infrastructure_id: str) -> None:
        await self._client.update_flow_run(flow_run_id, infrastructure_pid=infrastructure_id)

    @prefect_call
    async def read_runs(self, ids: list[UUID]) -> dict[UUID, FlowRun]:
        """The runs with these ids that still exist (deleted ones are absent)."""
        runs: dict[UUID, FlowRun] = {}
        for start in range(0, len(ids), _PAGE):
            chunk = ids[start : start + _PAGE]
            page = await self._client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=chunk)), limit=len(chunk))
            runs.update({run.id: run for run in page})
        return runs

    @prefect_call
    async def read_states(self, flow_run_id: UUID) -> list[State]:
        """The run's state history, oldest first."""
        return sorted(await self._client.read_flow_run_states(flow_run_id), key=lambda state: state.timestamp)

    @prefect_call
    async def latest_claim_id(self, flow_run_id: UUID) -> UUID | None:
        """The id of the run's latest PENDING state: the attempt its infrastructure belongs to."""
        states = await self._client.read_flow_run_states(flow_run_id)
        pending = [state for state in states if state.type == StateType.PENDING]
        return max(pending, key=lambda state: state.timestamp).id if pending else None

    @prefect_call
    async def read_deployment(self, deployment_id: UUID) -> DeploymentResponse | None:
        try:
            return await self._client.read_deployment(deployment_id)
        except ObjectNotFound:
            return None
