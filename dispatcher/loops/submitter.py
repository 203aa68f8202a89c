"""Claim a due flow run, build its job configuration, check limits, start its infrastructure.

The order matters for crash safety: the claim (PENDING) comes first and names the
attempt; the infrastructure id is written to the ledger and Prefect right after the
provider accepted the submission. A dispatcher that dies anywhere in between leaves a
PENDING run without infrastructure id, which recovery re-drives; the provider's
idempotency key (derived from the attempt) makes the second submission return the first
one's infrastructure instead of starting another.
"""

from __future__ import annotations

import logging
from datetime import datetime

from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Cancelled, Crashed, Failed, Pending, Scheduled

from dispatcher import metrics
from dispatcher.clock import seconds_since, utcnow
from dispatcher.config import WorkspaceConfig
from dispatcher.ledger import Ledger, LedgerError, LedgerUnavailable
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import Attempt, ServedPool, TrackedRun, is_in_process_retry
from dispatcher.loops.shards import record_submission
from dispatcher.policy.limits import check_resources, violations_message
from dispatcher.prefect.api import PrefectUnavailable, PrefectApi, Proposal
from dispatcher.prefect.jobconfig import DeploymentGone, ResolvedConfiguration, build_configuration
from dispatcher.prefect.states import set_state, undo_claim
from dispatcher.usage.facts import run_facts
from dispatcher.usage.gate import BudgetGate
from providers.base import RunLimits, SubmitRequest
from providers.errors import InvalidJobConfiguration, ProviderError

log = logging.getLogger(__name__)


class RunRejected(Exception):
    """The run must end before any infrastructure starts; carries the state to set."""

    def __init__(self, state_name: str, message: str, hold: bool = False) -> None:
        super().__init__(message)
        self.state_name = state_name
        self.message = message
        self.hold = hold  # back to Scheduled (a budget in hold mode), not a final state


class Submitter:
    """Takes one attempt of a run from SCHEDULED to submitted infrastructure, for one workspace."""

    def __init__(self, prefect: PrefectApi, workspace: WorkspaceConfig, ledger: Ledger, inflight: InFlight) -> None:
        self.prefect = prefect
        self.workspace = workspace
        self.ledger = ledger
        self.inflight = inflight
        self.budgets = BudgetGate(ledger, workspace)

    async def claim(self, flow_run: FlowRun, pool: ServedPool) -> Attempt | None:
        """Propose PENDING; the accepted state's id names the attempt. None: not ours (refused, too early,
        or no longer SCHEDULED, or held back by a used-up budget in hold mode: then it stays Scheduled,
        named for the reason).

        Prefect refuses a second claim only while a run is PENDING, RUNNING or CANCELLING: a run that
        finished since the poll saw it would accept it and run again. So the run is read again first,
        and a claim that still lands on a finished run (the read and the claim raced) is undone: an
        accepted PENDING from SCHEDULED carries the scheduled time Prefect copies over; one without it
        came from another state.
        """
        labels = {"workspace": self.workspace.name, "pool": pool.name}
        current = await self.prefect.read_run(flow_run.id)
        if (current is None or current.state is None or current.state.type != StateType.SCHEDULED
                or is_in_process_retry(current)):
            metrics.CLAIMS_REFUSED.labels(**labels).inc()
            return None
        held = await self.budgets.hold(pool.name)
        if held is not None:
            await self._mark_held(current, pool, held.state_name, held.message)
            return None
        result = await self.prefect.propose(flow_run.id, Pending())
        if result.outcome != Proposal.ACCEPTED or result.state is None:
            if result.outcome == Proposal.REFUSED:
                metrics.CLAIMS_REFUSED.labels(**labels).inc()
                log.debug("claim of %s refused: %s", flow_run.id, result.reason)
            return None
        if result.state.state_details.scheduled_time is None:
            metrics.CLAIMS_REFUSED.labels(**labels).inc()
            await undo_claim(self.prefect, flow_run.id, result.state)
            return None
        attempt = Attempt(flow_run_id=flow_run.id, attempt_id=result.state.id)
        self.inflight.claimed(flow_run.id)
        metrics.RUNS_CLAIMED.labels(**labels).inc()
        metrics.CLAIM_LATENCY.labels(self.workspace.name).observe(max(0.0, seconds_since(_scheduled_time(flow_run))))
        await self.ledger.record_claim(attempt.ledger, self.workspace.name, pool.name, pool.provider.kind, utcnow())
        return attempt

    async def submit_claimed(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt, redrive: bool = False) -> None:
        """Everything after the claim. Per-run problems become final states; only an unavailable
        Prefect or ledger is raised (the run stays claimed and recovery re-drives it, ``redrive=True``)."""
        try:
            resolved = await self._configuration(flow_run, pool, attempt)
        except RunRejected as rejected:
            await self._end_run(attempt, pool, rejected)
            return
        try:
            await self._submit(flow_run, pool, attempt, resolved, redrive)
        except (PrefectUnavailable, LedgerUnavailable):
            raise
        except ProviderError as exc:
            await self._crash_unsubmitted(attempt, pool, resolved, str(exc))
        except Exception as exc:  # a bug must end this run plainly, not re-drive it forever
            log.exception("submitting %s failed unexpectedly", attempt)
            metrics.RUN_ERRORS.labels(self.workspace.name, "submit").inc()
            await self._crash_unsubmitted(attempt, pool, resolved, f"internal error in the dispatcher ({type(exc).__name__})")

    async def _configuration(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt) -> ResolvedConfiguration:
        provider = pool.provider
        resolved = None
        try:
            resolved = await build_configuration(self.prefect, provider.job_configuration, flow_run, pool.work_pool)
            provider.validate(resolved.configuration)
            request = provider.resources(resolved.configuration)
        except InvalidJobConfiguration as exc:  # its message shows the value, which may embed a secret
            raise RunRejected("InvalidJobConfiguration", _redact(resolved, f"Run not started: {exc.message}.")) from None
        except DeploymentGone as exc:
            raise RunRejected("Cancelled", str(exc)) from None
        violations = check_resources(request, pool.limits, f"pool {pool.name!r}")
        if violations:
            raise RunRejected("LimitExceeded", violations_message(violations))
        # The last check before submission: admission records what the run is and asks for, under the budget lock.
        budget = await self.budgets.admit(attempt.ledger, pool.name, provider.kind, run_facts(flow_run, resolved.configuration, request))
        if not budget.allowed:
            self.budgets.forget_readings()
            raise RunRejected(budget.state_name, budget.message, hold=budget.hold)
        return resolved

    def request_for(self, attempt: Attempt, pool: ServedPool, resolved: ResolvedConfiguration,
                    redrive: bool = False) -> SubmitRequest:
        return SubmitRequest(
            flow_run_id=attempt.flow_run_id,
            attempt_id=attempt.attempt_id,
            idempotency_key=attempt.idempotency_key,
            workspace=self.workspace.name,
            pool=pool.name,
            configuration=resolved.configuration,
            limits=RunLimits(max_runtime_s=pool.limits.max_runtime_s),
            redrive=redrive,
            secrets=resolved.secrets,
        )

    async def _submit(self, flow_run: FlowRun, pool: ServedPool, attempt: Attempt, resolved: ResolvedConfiguration,
                      redrive: bool = False) -> None:
        submission = await pool.provider.submit(self.request_for(attempt, pool, resolved, redrive))
        await self.record(attempt, pool, resolved, submission.infrastructure_id)
        metrics.SUBMIT_LATENCY.labels(self.workspace.name).observe(max(0.0, seconds_since(_scheduled_time(flow_run))))

    async def record(self, attempt: Attempt, pool: ServedPool, resolved: ResolvedConfiguration, infrastructure_id: str,
                     tell_prefect: bool = True) -> None:
        """Write the infrastructure id to the ledger and Prefect, and start watching the attempt.

        ``tell_prefect=False`` for an earlier attempt found late: Prefect's infrastructure_pid is
        the current attempt's, not to be overwritten."""
        submitted_at = utcnow()
        # Ledger first: it is what metering and recovery read; Prefect's copy can be re-derived from it.
        tracked = TrackedRun(
            attempt=attempt, pool=pool, infrastructure_id=infrastructure_id, configuration=resolved.configuration,
            submitted_at=submitted_at, max_runtime_s=pool.limits.max_runtime_s, secrets=resolved.secrets,
        )
        tracked.watch_slot = await record_submission(
            self.ledger, attempt.ledger, infrastructure_id, submitted_at, workspace=self.workspace.name,
            pool=pool.name, provider=pool.provider.kind, batch=pool.provider.watch_batch(tracked.ref))
        if tell_prefect:
            await self.prefect.set_infrastructure_pid(attempt.flow_run_id, infrastructure_id)
        metrics.RUNS_SUBMITTED.labels(self.workspace.name, pool.name, pool.provider.kind).inc()
        log.info("%s submitted to %s as %s", attempt, pool.provider.kind, infrastructure_id)
        self.inflight.watch(tracked)

    async def _crash_unsubmitted(self, attempt: Attempt, pool: ServedPool, resolved: ResolvedConfiguration, why: str) -> None:
        metrics.RUNS_REJECTED.labels(self.workspace.name, pool.name, "submit_failed").inc()
        message = _redact(resolved, f"Failed to submit flow run to infrastructure: {why}")
        await self._end(attempt, Crashed(message=message))

    async def _end_run(self, attempt: Attempt, pool: ServedPool, rejected: RunRejected) -> None:
        if rejected.hold:  # this attempt ends; the run waits Scheduled for budget, a later claim is a new attempt
            metrics.RUNS_HELD.labels(self.workspace.name, pool.name).inc()
            await self._end(attempt, Scheduled(name=rejected.state_name, message=rejected.message))
            return
        metrics.RUNS_REJECTED.labels(self.workspace.name, pool.name, rejected.state_name).inc()
        log.warning("%s not started: %s", attempt, rejected.message)
        if rejected.state_name == "Cancelled":
            state = Cancelled(message=rejected.message)
        else:
            state = Failed(name=rejected.state_name, message=rejected.message)
        await self._end(attempt, state)

    async def _mark_held(self, flow_run: FlowRun, pool: ServedPool, state_name: str, message: str) -> None:
        """Name a held run's Scheduled state for the reason, once (its scheduled time is kept)."""
        if flow_run.state is not None and flow_run.state.name == state_name:
            return
        metrics.RUNS_HELD.labels(self.workspace.name, pool.name).inc()
        log.info("flow run %s held: %s", flow_run.id, message)
        await set_state(self.prefect, flow_run.id, Scheduled(name=state_name, message=message,
                                                             scheduled_time=_scheduled_time(flow_run)))

    async def _end(self, attempt: Attempt, state: State) -> None:
        await set_state(self.prefect, attempt.flow_run_id, state)
        try:
            await self.ledger.set_final_state(str(attempt.attempt_id), state.name)
        except LedgerError:  # the claim was never recorded (the ledger was down then): nothing to close
            log.debug("%s has no ledger row to close", attempt)


def _redact(resolved: ResolvedConfiguration | None, message: str) -> str:
    return message if resolved is None else resolved.secrets.redact(message)


def _scheduled_time(flow_run: FlowRun) -> datetime | None:
    return flow_run.next_scheduled_start_time or flow_run.expected_start_time
