"""Rebuild the in-flight set from Prefect and the ledger; re-drive orphaned claims.

Runs at start and then periodically, so a replica also adopts what a dead
replica left behind:
- PENDING with no infrastructure id, older than ``pending_grace_s``: its claimer
  died before submission (Prefect's own bug #20485) -> submit again, idempotently;
- any active run with an infrastructure id we do not watch -> watch it;
- ledger rows submitted but not metered (the run may already be final) -> watch
  them until the infrastructure is gone, then meter;
- CANCELLING with no infrastructure id past the grace -> Cancelled (nothing to stop).
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID
from typing import TYPE_CHECKING

from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled

from dispatcher.jobconfig import build_configuration
from dispatcher.pools import ServedPool, TrackedRun
from dispatcher.prefect_api import seconds_since
from providers.errors import ProviderError

if TYPE_CHECKING:
    from dispatcher.workspace import WorkspaceDispatcher

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, owner: WorkspaceDispatcher) -> None:
        self.owner = owner

    async def run_once(self) -> None:
        owner = self.owner
        active = await owner.api.active_runs(list(owner.pools))
        for flow_run in active:
            pool = owner.pools.get(flow_run.work_pool_name or "")
            if pool is not None:
                await self._recover_active(flow_run, pool)
        await self._recover_unmetered({run.id for run in active})

    async def _recover_active(self, flow_run: FlowRun, pool: ServedPool) -> None:
        owner = self.owner
        if flow_run.id in owner.watcher.tracked or owner.is_handling(flow_run.id):
            return
        state = flow_run.state
        age = seconds_since(state.timestamp if state else None)
        if flow_run.infrastructure_pid:
            await self._adopt(flow_run, pool, flow_run.infrastructure_pid, None)
        elif state and state.type == StateType.PENDING and age > owner.loop.pending_grace_s:
            log.warning("flow run %s was claimed %ds ago but never submitted; re-driving it", flow_run.id, age)
            owner.spawn(owner.redrive(flow_run, pool))
        elif state and state.type == StateType.CANCELLING and age > owner.loop.pending_grace_s:
            await owner.api.propose(flow_run.id, Cancelled(message="Cancelled before any infrastructure was started."))

    async def _recover_unmetered(self, active_ids: set) -> None:
        owner = self.owner
        for row in await owner.ledger.unmetered(owner.ws.name):
            pool = owner.pools.get(row.pool)
            if pool is None or row.infrastructure_id is None:
                continue
            flow_run_id = UUID(row.flow_run_id)
            if flow_run_id in active_ids or flow_run_id in owner.watcher.tracked:
                continue
            flow_run = await owner.api.read_run(flow_run_id)
            if flow_run is None:
                continue
            await self._adopt(flow_run, pool, row.infrastructure_id, row.submitted_at)

    async def _adopt(self, flow_run: FlowRun, pool: ServedPool, infrastructure_id: str, submitted_at: datetime | None) -> None:
        owner = self.owner
        try:
            configuration = await _configuration_for_watching(owner, flow_run, pool)
        except (ProviderError, ObjectNotFound) as exc:
            log.error("cannot rebuild the configuration of flow run %s to watch it: %s", flow_run.id, exc)
            return
        if submitted_at is None:
            row = await owner.ledger.get(str(flow_run.id))
            submitted_at = (row.submitted_at if row else None) or flow_run.start_time or flow_run.expected_start_time
        if flow_run.infrastructure_pid:
            await owner.ledger.record_submission(
                str(flow_run.id), infrastructure_id, submitted_at,
                workspace=owner.ws.name, pool=pool.name, provider=pool.provider.kind,
            )
        log.info("watching flow run %s (%s) again", flow_run.id, infrastructure_id)
        owner.watcher.track(
            TrackedRun(
                flow_run_id=flow_run.id, pool=pool, infrastructure_id=infrastructure_id,
                configuration=configuration, submitted_at=submitted_at,
                max_runtime_s=pool.limits.max_runtime_s or 24 * 3600,
            )
        )


async def _configuration_for_watching(owner: WorkspaceDispatcher, flow_run: FlowRun, pool: ServedPool) -> object:
    """The same configuration submission used; if the deployment is gone, the pool template alone."""
    try:
        return await build_configuration(owner.api, pool.provider.job_configuration, flow_run, pool.work_pool)
    except ObjectNotFound:
        with owner.api.settings():
            return await pool.provider.job_configuration.from_template_and_values(
                pool.work_pool.base_job_template, flow_run.job_variables or {}, owner.api.client
            )
