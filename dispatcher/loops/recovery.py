"""Rebuild the in-flight set from Prefect and the ledger; re-drive orphaned claims.

Runs at start and then periodically, so a replica also adopts what a dead
replica left behind:
- PENDING with no infrastructure id, older than ``pending_grace_s``: its claimer
  died before submission (Prefect's own bug #20485) -> submit again, idempotently;
  likewise RUNNING runs the ledger shows we claimed but never recorded as submitted;
- infrastructure id in the ledger but not in Prefect -> copy it to Prefect, watch it;
- any active run with an infrastructure id we do not watch -> watch it;
- ledger rows submitted but not metered (the run may already be final) -> watch
  them until the infrastructure is gone, then meter;
- CANCELLING with no infrastructure id past the grace -> Cancelled (nothing to stop).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Cancelled

from dispatcher.loops.decisions import TERMINAL
from dispatcher.health import DependencyUnavailable
from dispatcher.prefect.jobconfig import DeploymentGone, ResolvedConfiguration, build_configuration, build_from_pool_template
from dispatcher.ledger import LedgerRun
from dispatcher.loops.served import ServedPool, TrackedRun
from dispatcher.prefect.api import seconds_since
from providers.errors import InvalidJobConfiguration, ProviderError

if TYPE_CHECKING:
    from dispatcher.loops.workspace import WorkspaceDispatcher

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, owner: WorkspaceDispatcher) -> None:
        self.owner = owner

    async def run_once(self) -> None:
        """One pass. Each run is handled on its own: one that fails is reported and retried next
        pass, and never blocks the others; a dependency going down ends the pass (it is down for all)."""
        owner = self.owner
        active = await owner.api.active_runs(list(owner.pools))
        for flow_run in active:
            pool = owner.pools.get(flow_run.work_pool_name or "")
            if pool is not None:
                await self._isolated(flow_run.id, self._recover_active(flow_run, pool))
        active_ids = {run.id for run in active}
        for row in await owner.ledger.unmetered(owner.ws.name):
            await self._isolated(row.flow_run_id, self._recover_unmetered(row, active_ids))
        for row in await owner.ledger.unsubmitted(owner.ws.name):
            await self._isolated(row.flow_run_id, self._recover_unsubmitted(row, active_ids))

    async def _isolated(self, flow_run_id: object, step: Awaitable[None]) -> None:
        subject = f"flow run {flow_run_id}"
        try:
            await step
        except DependencyUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the rows after it
            self.owner.errors.report("recover", subject, exc)
        else:
            self.owner.errors.cleared(subject)

    async def _recover_active(self, flow_run: FlowRun, pool: ServedPool) -> None:
        owner = self.owner
        if flow_run.id in owner.watcher.tracked or owner.is_handling(flow_run.id):
            return
        if flow_run.infrastructure_pid:
            await self._adopt(flow_run, pool, flow_run.infrastructure_pid, None)
            return
        row = await owner.ledger.get(str(flow_run.id))
        if row is not None and row.infrastructure_id:
            # Killed between the ledger write and Prefect's: Prefect gets its copy now.
            await owner.api.set_infrastructure_pid(flow_run.id, row.infrastructure_id)
            await self._adopt(flow_run, pool, row.infrastructure_id, row.submitted_at)
            return
        state = flow_run.state
        age = seconds_since(state.timestamp if state else None)
        if age <= owner.loop.pending_grace_s or state is None:
            return
        ours = row is not None and row.final_state is None
        if state.type == StateType.PENDING or (ours and state.type == StateType.RUNNING):
            # Claimed (by us or a dead replica) and never recorded as submitted: submit again.
            # The provider's idempotency key returns the first infrastructure if it did start.
            log.warning("flow run %s was claimed %ds ago but never recorded as submitted; re-driving it", flow_run.id, age)
            owner.redrive(flow_run, pool)
        elif state.type == StateType.CANCELLING:
            # Nothing recorded as started. (Had the dispatcher died in the instant between the
            # provider accepting and the ledger write, the engine inside sees CANCELLING and exits.)
            await owner.api.propose(flow_run.id, Cancelled(message="Cancelled before any infrastructure was started."))

    async def _recover_unmetered(self, row: LedgerRun, active_ids: set[UUID]) -> None:
        owner = self.owner
        pool = owner.pools.get(row.pool)
        if pool is None or row.infrastructure_id is None:
            return
        flow_run_id = UUID(row.flow_run_id)
        if flow_run_id in active_ids or flow_run_id in owner.watcher.tracked:
            return
        flow_run = await owner.api.read_run(flow_run_id)
        if flow_run is not None:
            await self._adopt(flow_run, pool, row.infrastructure_id, row.submitted_at)

    async def _recover_unsubmitted(self, row: LedgerRun, active_ids: set[UUID]) -> None:
        """A claim that ended without a recorded submission: ask the provider what it started.

        Active runs are re-driven by ``_recover_active``; this handles runs that are
        already final, where submitting again would be wrong but compute must be metered.
        """
        owner = self.owner
        flow_run_id = UUID(row.flow_run_id)
        pool = owner.pools.get(row.pool)
        if pool is None or flow_run_id in active_ids or owner.is_handling(flow_run_id):
            return
        if seconds_since(row.claimed_at) <= owner.loop.pending_grace_s:
            return
        flow_run = await owner.api.read_run(flow_run_id)
        if flow_run is None:
            await owner.ledger.set_final_state(row.flow_run_id, "Deleted")
            return
        if flow_run.state is None or flow_run.state.type not in TERMINAL:
            return
        await self._settle_final_unsubmitted(flow_run, pool)

    async def _settle_final_unsubmitted(self, flow_run: FlowRun, pool: ServedPool) -> None:
        owner = self.owner
        try:
            resolved = await _configuration_for_watching(owner, flow_run, pool)
        except InvalidJobConfiguration:
            # Nothing can have been submitted without a configuration: the run ended before it started.
            await owner.ledger.set_final_state(str(flow_run.id), flow_run.state.name)
            return
        request = owner.submitter.request_for(flow_run, pool, resolved)
        try:
            found = await pool.provider.find(request)
        except ProviderError as exc:
            log.warning("cannot look up the infrastructure of flow run %s yet: %s", flow_run.id, exc)
            return
        if found is None:
            await owner.ledger.set_final_state(str(flow_run.id), flow_run.state.name)
            return
        log.warning("flow run %s ended while its submission was unrecorded; metering %s", flow_run.id, found.infrastructure_id)
        await owner.submitter.record(flow_run, pool, resolved, found.infrastructure_id, request.limits.max_runtime_s)

    async def _adopt(self, flow_run: FlowRun, pool: ServedPool, infrastructure_id: str, submitted_at: datetime | None) -> None:
        owner = self.owner
        try:
            resolved = await _configuration_for_watching(owner, flow_run, pool)
        except InvalidJobConfiguration as exc:
            # Its inputs changed since submission (a block deleted...): watch it with the pool's
            # defaults rather than not at all; status and stop need little more than the id.
            log.warning("flow run %s: watching with the pool's defaults, its configuration no longer builds: %s",
                        flow_run.id, exc)
            resolved = await build_from_pool_template(owner.api, pool.provider.job_configuration, flow_run, pool.work_pool,
                                                      with_run_variables=False)
        if submitted_at is None:
            row = await owner.ledger.get(str(flow_run.id))
            submitted_at = (row.submitted_at if row else None) or flow_run.start_time or flow_run.expected_start_time
        if flow_run.infrastructure_pid and submitted_at is not None:
            await owner.ledger.record_submission(
                str(flow_run.id), infrastructure_id, submitted_at,
                workspace=owner.ws.name, pool=pool.name, provider=pool.provider.kind,
            )
        log.info("watching flow run %s (%s) again", flow_run.id, infrastructure_id)
        owner.watcher.track(
            TrackedRun(
                flow_run_id=flow_run.id, pool=pool, infrastructure_id=infrastructure_id,
                configuration=resolved.configuration, submitted_at=submitted_at,
                max_runtime_s=pool.limits.max_runtime_s or 24 * 3600, secrets=resolved.secrets,
            )
        )


async def _configuration_for_watching(owner: WorkspaceDispatcher, flow_run: FlowRun, pool: ServedPool) -> ResolvedConfiguration:
    """The same configuration (and secrets) submission used; if the deployment is gone, the pool template alone."""
    try:
        return await build_configuration(owner.api, pool.provider.job_configuration, flow_run, pool.work_pool)
    except DeploymentGone:
        try:
            return await build_from_pool_template(owner.api, pool.provider.job_configuration, flow_run, pool.work_pool)
        except InvalidJobConfiguration:
            return await build_from_pool_template(owner.api, pool.provider.job_configuration, flow_run, pool.work_pool,
                                                  with_run_variables=False)
