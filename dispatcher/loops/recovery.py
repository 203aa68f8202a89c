"""Rebuild the in-flight set from Prefect and the ledger; re-drive orphaned claims.

Runs at start and then periodically, so a replica also adopts what a dead replica left.
Replicas share the work: each acts only on the attempts it owns (:mod:`dispatcher.loops.shards`),
and records in the ledger that it adopted one, so the replica that had it lets go.
- a claim (PENDING, no infrastructure id) older than ``pending_grace_s``: its claimer died
  before submission (Prefect's own bug #20485) -> submit the same attempt again, idempotently;
  likewise RUNNING runs the ledger shows we claimed but never recorded as submitted;
- an infrastructure id in the ledger but not in Prefect -> copy it to Prefect, watch it;
- any active run with an infrastructure id nobody watches here -> watch it;
- ledger attempts submitted but not metered (the run may be final, or retried) -> watch them
  until their infrastructure is gone, then meter;
- claims that ended without a recorded submission -> ask the provider what it started;
- CANCELLING with no infrastructure id past the grace -> Cancelled (nothing to stop).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Cancelled

from dispatcher import metrics
from dispatcher.clock import seconds_since, utcnow
from dispatcher.config import LoopConfig
from dispatcher.health import DependencyUnavailable, QuietErrors
from dispatcher.ledger import Ledger, LedgerRun
from dispatcher.loops.decisions import TERMINAL
from dispatcher.loops.dispatching import Dispatching
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import Attempt, ServedPool, TrackedRun
from dispatcher.loops.shards import Shards, slot_of_row
from dispatcher.loops.submitter import Submitter
from dispatcher.prefect.api import PrefectApi
from dispatcher.prefect.jobconfig import DeploymentGone, ResolvedConfiguration, build_configuration, build_from_pool_template
from dispatcher.prefect.states import ended_after, restore_end, set_state
from providers.errors import InvalidJobConfiguration, ProviderError

log = logging.getLogger(__name__)


class Recovery:
    def __init__(
        self, *, prefect: PrefectApi, ledger: Ledger, inflight: InFlight, dispatching: Dispatching,
        submitter: Submitter, pools: Mapping[str, ServedPool], loop: LoopConfig, errors: QuietErrors, shards: Shards,
    ) -> None:
        self.prefect = prefect
        self.ledger = ledger
        self.inflight = inflight
        self.dispatching = dispatching
        self.submitter = submitter
        self.pools = pools  # filled by the workspace as it loads them
        self.loop = loop
        self.errors = errors
        self.shards = shards
        self.workspace = prefect.config.name

    async def run_once(self) -> None:
        """One pass. Each run is handled on its own: one that fails is reported and retried next
        pass, and never blocks the others; a dependency going down ends the pass (it is down for all)."""
        with metrics.RECOVERY_PASS_SECONDS.labels(self.workspace).time():
            await self._pass()

    async def _pass(self) -> None:
        unmetered = await self.ledger.unmetered(self.workspace)
        submitted = {(row.flow_run_id, row.infrastructure_id): row for row in unmetered if row.infrastructure_id}
        async for page in self.prefect.active_run_pages(list(self.pools)):
            for flow_run in page:
                pool = self.pools.get(flow_run.work_pool_name or "")
                if pool is not None and not self._someone_elses(flow_run, submitted):
                    await self._isolated(f"flow run {flow_run.id}", self._recover_active(flow_run, pool))
        # Rows of active runs were adopted above; the rest are read one by one, and only when they need an action.
        for row in unmetered:
            await self._isolated(f"attempt {row.attempt_id}", self._recover_unmetered(row))
        for row in await self.ledger.unsubmitted(self.workspace):
            await self._isolated(f"attempt {row.attempt_id}", self._recover_unsubmitted(row))

    def _someone_elses(self, flow_run: FlowRun, submitted: Mapping[tuple[str, str | None], LedgerRun]) -> bool:
        """A run whose infrastructure the ledger knows, owned by another replica: nothing to do here (no reads)."""
        row = submitted.get((str(flow_run.id), flow_run.infrastructure_pid))
        return row is not None and not self.shards.owns(slot_of_row(row))

    async def _isolated(self, subject: str, step: Awaitable[None]) -> None:
        try:
            await step
        except DependencyUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad row must not block the rows after it
            self.errors.report("recover", subject, exc)
        else:
            self.errors.cleared(subject)

    # -- active runs ------------------------------------------------------------------------------

    async def _recover_active(self, flow_run: FlowRun, pool: ServedPool) -> None:
        if self.inflight.dispatching(flow_run.id):
            return
        pid = flow_run.infrastructure_pid
        if pid:
            if await self._unrecorded_claim(flow_run, pool):
                return
            if not self.inflight.watching_infrastructure(flow_run.id, pid):
                attempt, row = await self._attempt_of_infrastructure(flow_run, pid)
                await self._adopt(flow_run, pool, attempt, pid, row)
            return
        rows = await self.ledger.attempts(str(flow_run.id))
        attempt, row = _current_attempt(flow_run, rows)
        if attempt is not None and row is not None and row.infrastructure_id:
            # Killed between the ledger write and Prefect's: Prefect gets its copy now.
            await self.prefect.set_infrastructure_pid(flow_run.id, row.infrastructure_id)
            if not self.inflight.is_watched(attempt.attempt_id):
                await self._adopt(flow_run, pool, attempt, row.infrastructure_id, row)
            return
        state = flow_run.state
        age = seconds_since(state.timestamp if state else None)
        if state is None or age <= self.loop.pending_grace_s:
            return
        if attempt is not None and not self.shards.owns(attempt.attempt_id):
            return  # its owner re-drives it
        if attempt is not None and (state.type == StateType.PENDING or (row is not None and state.type == StateType.RUNNING)):
            # Claimed (by us or a dead replica) and never recorded as submitted: submit the same attempt
            # again. The provider's idempotency key returns its infrastructure if it did start.
            if row is not None and not await self.ledger.take_redrive(
                    row.attempt_id, self.shards.replica_id, utcnow(), self.loop.pending_grace_s):
                return  # another replica is re-driving it (or it was just submitted)
            log.warning("%s was claimed %ds ago but never recorded as submitted; re-driving it", attempt, age)
            self.dispatching.redrive(flow_run, pool, attempt)
        elif state.type == StateType.CANCELLING:
            # Nothing recorded as started. (Had the dispatcher died in the instant between the
            # provider accepting and the ledger write, the engine inside sees CANCELLING and exits.)
            await set_state(self.prefect, flow_run.id, Cancelled(message="Cancelled before any infrastructure was started."))

    async def _unrecorded_claim(self, flow_run: FlowRun, pool: ServedPool) -> bool:
        """A PENDING claim past the grace that no ledger row records, on a run whose infrastructure id is an
        earlier attempt's: its claimer lost it (an answer lost, killed before the ledger write). Without this
        the run would wait in PENDING for good: the earlier attempt's infrastructure hides it from the
        unsubmitted-claim path below. If the run ended after the last attempt the ledger records, the claim
        came late and that end is restored (the claim's own timestamp can sort before that attempt's states:
        seen in a 50-run two-replica burst); otherwise it is re-driven as its own attempt (its id is the
        claim's). True: handled (here, or by the claim's owner)."""
        state = flow_run.state
        if state is None or state.type != StateType.PENDING or seconds_since(state.timestamp) <= self.loop.pending_grace_s:
            return False
        rows = await self.ledger.attempts(str(flow_run.id))
        if not rows or any(row.attempt_id in (str(state.id), str(flow_run.id)) for row in rows):
            return False
        if not self.shards.owns(state.id):
            return True
        # Did the run end after the last attempt we recorded? Then the claim came late: restore that end.
        last = max(rows, key=lambda row: row.attempt)
        end = await ended_after(self.prefect, flow_run.id, UUID(last.attempt_id), ignoring=state.id)
        if end is not None:
            await restore_end(self.prefect, flow_run.id, end)
            return True
        attempt = Attempt(flow_run_id=flow_run.id, attempt_id=state.id)
        log.warning("%s was claimed %ds ago and never recorded; re-driving it", attempt, seconds_since(state.timestamp))
        self.dispatching.redrive(flow_run, pool, attempt)
        return True

    async def _attempt_of_infrastructure(self, flow_run: FlowRun, infrastructure_id: str) -> tuple[Attempt, LedgerRun | None]:
        """The attempt that started this infrastructure: from the ledger, else from the run's last claim."""
        for row in await self.ledger.attempts(str(flow_run.id)):
            if row.infrastructure_id == infrastructure_id:
                return Attempt(flow_run_id=flow_run.id, attempt_id=UUID(row.attempt_id)), row
        claim_id = await self.prefect.latest_claim_id(flow_run.id)
        return Attempt(flow_run_id=flow_run.id, attempt_id=claim_id or flow_run.id), None

    async def adopt_fresh(self) -> None:
        """Between passes: adopt what another replica has just submitted into watch groups this one owns.

        The submitter watches such a run until its owner adopts it, and each replica's runs of
        other replicas' groups make one partly filled status batch more; this makes that last a
        watch tick or two instead of a recovery pass. One grouped count per call; rows are read
        only for groups with more runs in flight than are watched here.
        """
        sizes = await self.ledger.watch_group_sizes(self.workspace)
        watched = Counter(run.slot for run in self.inflight.watched())
        behind = [group for group, size in sizes.items()
                  if self.shards.owns(f"{group[0]}/{group[1]}") and watched[f"{group[0]}/{group[1]}"] < size]
        if not behind:
            return
        # Older ones are the passes' business. (submitted_at is the submitter's clock: a skewed host only
        # moves its runs to the next pass.)
        since = utcnow() - timedelta(seconds=self.loop.pending_grace_s)
        for row in await self.ledger.fresh_in_groups(self.workspace, behind, since):
            await self._isolated(f"attempt {row.attempt_id}", self._recover_unmetered(row))

    # -- ledger rows ------------------------------------------------------------------------------

    async def _recover_unmetered(self, row: LedgerRun) -> None:
        pool = self.pools.get(row.pool)
        if pool is None or row.infrastructure_id is None or self.inflight.is_watched(UUID(row.attempt_id)):
            return
        if not self.shards.owns(slot_of_row(row)):
            return
        flow_run_id = UUID(row.flow_run_id)
        flow_run = await self.prefect.read_run(flow_run_id)
        if flow_run is not None:
            attempt = Attempt(flow_run_id=flow_run_id, attempt_id=UUID(row.attempt_id))
            await self._adopt(flow_run, pool, attempt, row.infrastructure_id, row)

    async def _recover_unsubmitted(self, row: LedgerRun) -> None:
        """A claim that ended without a recorded submission: ask the provider what it started.

        The current claim of an active run is re-driven by ``_recover_active``; this handles
        claims of runs that are final or were retried since, where submitting again would be
        wrong but whatever did start must be metered.
        """
        flow_run_id = UUID(row.flow_run_id)
        pool = self.pools.get(row.pool)
        if pool is None or self.inflight.dispatching(flow_run_id) or seconds_since(row.claimed_at) <= self.loop.pending_grace_s:
            return
        if not self.shards.owns(UUID(row.attempt_id)):
            return
        flow_run = await self.prefect.read_run(flow_run_id)
        if flow_run is None:
            await self.ledger.set_final_state(row.attempt_id, "Deleted")
            return
        attempt = Attempt(flow_run_id=flow_run_id, attempt_id=UUID(row.attempt_id))
        current, _ = _current_attempt(flow_run, await self.ledger.attempts(row.flow_run_id))
        if flow_run.state is None or (flow_run.state.type not in TERMINAL and current == attempt):
            return
        await self._settle_unsubmitted(flow_run, pool, attempt)

    async def _settle_unsubmitted(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt) -> None:
        ended_as = flow_run.state.name if flow_run.state and flow_run.state.type in TERMINAL else "Retried"
        try:
            resolved = await self._configuration_for_watching(flow_run, pool)
        except InvalidJobConfiguration:
            # Nothing can have been submitted without a configuration: the attempt ended before it started.
            await self.ledger.set_final_state(str(attempt.attempt_id), ended_as)
            return
        try:
            found = await pool.provider.find(self.submitter.request_for(attempt, pool, resolved))
        except ProviderError as exc:
            log.warning("cannot look up the infrastructure of %s yet: %s", attempt, exc)
            return
        if found is None:
            await self.ledger.set_final_state(str(attempt.attempt_id), ended_as)
            return
        log.warning("%s ended while its submission was unrecorded; metering %s", attempt, found.infrastructure_id)
        await self.submitter.record(attempt, pool, resolved, found.infrastructure_id, tell_prefect=False)

    # -- adopting -----------------------------------------------------------------------------------

    async def _adopt(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt, infrastructure_id: str,
                     row: LedgerRun | None) -> None:
        """Watch infrastructure this replica owns and does not watch yet (``row``: its ledger row, if it has one)."""
        slot = slot_of_row(row) if row is not None else attempt.attempt_id
        if not self.shards.owns(slot):
            return  # its owner adopts it
        try:
            resolved = await self._configuration_for_watching(flow_run, pool)
        except InvalidJobConfiguration as exc:
            # Its inputs changed since submission (a block deleted...): watch it with the pool's
            # defaults rather than not at all; status and stop need little more than the id.
            log.warning("%s: watching with the pool's defaults, its configuration no longer builds: %s", attempt, exc)
            resolved = await build_from_pool_template(self.prefect, pool.provider.job_configuration, flow_run,
                                                      pool.work_pool, with_run_variables=False)
        submitted_at = (row.submitted_at if row else None) or flow_run.start_time or flow_run.expected_start_time
        if submitted_at is not None:
            await self.ledger.record_submission(attempt.ledger, infrastructure_id, submitted_at, workspace=self.workspace,
                                                pool=pool.name, provider=pool.provider.kind)
        log.info("watching %s (%s) again", attempt, infrastructure_id)
        self.inflight.watch(TrackedRun(
            attempt=attempt, pool=pool, infrastructure_id=infrastructure_id, configuration=resolved.configuration,
            submitted_at=submitted_at, max_runtime_s=pool.limits.max_runtime_s, secrets=resolved.secrets, watch_slot=slot,
        ))
        # The replica that watched it until now sees this and lets go (see Watcher.handed_over).
        await self.ledger.set_watcher([str(attempt.attempt_id)], self.shards.replica_id)

    async def _configuration_for_watching(self, flow_run: FlowRun, pool: ServedPool) -> ResolvedConfiguration:
        """The same configuration (and secrets) submission used; if the deployment is gone, the pool template."""
        configuration_class = pool.provider.job_configuration
        try:
            return await build_configuration(self.prefect, configuration_class, flow_run, pool.work_pool)
        except DeploymentGone:
            try:
                return await build_from_pool_template(self.prefect, configuration_class, flow_run, pool.work_pool)
            except InvalidJobConfiguration:
                return await build_from_pool_template(self.prefect, configuration_class, flow_run, pool.work_pool,
                                                      with_run_variables=False)


def _current_attempt(flow_run: FlowRun, rows: list[LedgerRun]) -> tuple[Attempt | None, LedgerRun | None]:
    """The attempt the run's current state belongs to, and its ledger row if there is one (pure).

    PENDING: the claim's state id (or the legacy attempt, id = flow run id, claimed before
    attempts existed). RUNNING or CANCELLING: the latest attempt the ledger has not closed.
    """
    state = flow_run.state
    open_rows = [row for row in rows if row.final_state is None and row.metered_at is None]
    if state is not None and state.type == StateType.PENDING:
        for row in open_rows:
            if row.attempt_id in (str(state.id), str(flow_run.id)):
                return Attempt(flow_run_id=flow_run.id, attempt_id=UUID(row.attempt_id)), row
        return Attempt(flow_run_id=flow_run.id, attempt_id=state.id), None
    if not open_rows:
        return None, None
    latest = max(open_rows, key=lambda row: row.attempt)
    return Attempt(flow_run_id=flow_run.id, attempt_id=UUID(latest.attempt_id)), latest
