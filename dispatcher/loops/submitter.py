"""Claim a due flow run, build its job configuration, check limits, start its infrastructure.

The order matters for crash safety: the claim (PENDING) comes first, the
infrastructure id is written to Prefect and the ledger right after the provider
accepted the submission. A dispatcher that dies anywhere in between leaves a
PENDING run without infrastructure id, which ``redrive`` picks up again; the
provider's idempotency key (derived from the flow run id) makes the second
submission return the first one's infrastructure instead of starting another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from prefect.client.schemas.objects import FlowRun
from prefect.states import Cancelled, Crashed, Failed, Pending

from dispatcher import metrics
from dispatcher.config import LoopConfig, WorkspaceConfig
from dispatcher.prefect.jobconfig import DeploymentGone, ResolvedConfiguration, build_configuration
from dispatcher.ledger import Ledger, LedgerError, LedgerUnavailable
from dispatcher.policy.limits import check_resources, violations_message
from dispatcher.loops.served import ServedPool, TrackedRun
from dispatcher.prefect.api import PrefectUnavailable, PrefectWorkspace, Proposal, seconds_since, utcnow
from dispatcher.loops.retry import call_with_retries
from providers.base import RunLimits, SubmitRequest
from providers.errors import InvalidJobConfiguration, ProviderError

log = logging.getLogger(__name__)


def idempotency_key(flow_run: FlowRun) -> str:
    """Same run -> same key, on every replica and after every restart (ECS allows 64 chars)."""
    return f"prefect-{flow_run.id.hex}"


class RunRejected(Exception):
    """The run must end before any infrastructure starts; carries the state to set."""

    def __init__(self, state_name: str, message: str) -> None:
        super().__init__(message)
        self.state_name = state_name
        self.message = message


class Submitter:
    """Takes one run from SCHEDULED to submitted infrastructure, for one workspace."""

    def __init__(
        self,
        workspace: PrefectWorkspace,
        workspace_config: WorkspaceConfig,
        ledger: Ledger,
        loop: LoopConfig,
        track: Callable[[TrackedRun], None],
    ) -> None:
        self.workspace = workspace
        self.ws = workspace_config
        self.ledger = ledger
        self.loop = loop
        self.track = track

    async def claim(self, flow_run: FlowRun, pool: ServedPool) -> Proposal:
        """Propose PENDING. REFUSED means another replica or a person owns the run."""
        result = await self.workspace.propose(flow_run.id, Pending())
        labels = {"workspace": self.ws.name, "pool": pool.name}
        if result.outcome == Proposal.ACCEPTED:
            metrics.RUNS_CLAIMED.labels(**labels).inc()
            metrics.CLAIM_LATENCY.labels(self.ws.name).observe(max(0.0, seconds_since(_scheduled_time(flow_run))))
            await self.ledger.record_claim(str(flow_run.id), self.ws.name, pool.name, pool.provider.kind, utcnow())
        elif result.outcome == Proposal.REFUSED:
            metrics.CLAIMS_REFUSED.labels(**labels).inc()
            log.debug("claim of %s refused: %s", flow_run.id, result.reason)
        return result.outcome

    async def submit_claimed(self, flow_run: FlowRun, pool: ServedPool) -> None:
        """Everything after the claim. Per-run problems become final states; only an unavailable
        Prefect or ledger is raised (the run stays claimed and recovery re-drives it)."""
        try:
            resolved = await self._configuration(flow_run, pool)
        except RunRejected as rejected:
            await self._end_run(flow_run, pool, rejected)
            return
        try:
            await self._submit(flow_run, pool, resolved)
        except (PrefectUnavailable, LedgerUnavailable):
            raise
        except ProviderError as exc:
            await self._crash_unsubmitted(flow_run, pool, resolved, str(exc))
        except Exception as exc:  # a bug must end this run plainly, not re-drive it forever
            log.exception("submitting flow run %s failed unexpectedly", flow_run.id)
            metrics.RUN_ERRORS.labels(self.ws.name, "submit").inc()
            await self._crash_unsubmitted(flow_run, pool, resolved, f"internal error in the dispatcher ({type(exc).__name__})")

    async def _crash_unsubmitted(self, flow_run: FlowRun, pool: ServedPool, resolved: ResolvedConfiguration, why: str) -> None:
        metrics.RUNS_REJECTED.labels(self.ws.name, pool.name, "submit_failed").inc()
        message = _redact(resolved, f"Failed to submit flow run to infrastructure: {why}")
        await self._set_state(flow_run, Crashed(message=message))
        await self._set_final_state(flow_run, "Crashed")

    async def _refuse_rerun(self, flow_run: FlowRun) -> None:
        """A finished run set back to Scheduled (the UI's Retry) cannot get fresh infrastructure yet.

        Idempotency keys, the local run directory and the ledger row are per flow run id,
        so a second attempt would be handed the first one's (ended) infrastructure and
        not be metered. Say so plainly instead of reporting the old attempt's outcome.
        """
        row = await self.ledger.get(str(flow_run.id))
        if row is not None and row.infrastructure_id and (row.metered_at or row.final_state):
            raise RunRejected(
                "RerunNotSupported",
                f"Run not started: this flow run already ran on {row.infrastructure_id} (ended {row.final_state or 'metered'}). "
                "Re-running a finished flow run is not supported by the push dispatcher yet; start a new run of the deployment.",
            )

    async def _configuration(self, flow_run: FlowRun, pool: ServedPool) -> ResolvedConfiguration:
        provider = pool.provider
        await self._refuse_rerun(flow_run)
        resolved = None
        try:
            resolved = await build_configuration(self.workspace, provider.job_configuration, flow_run, pool.work_pool)
            provider.validate(resolved.configuration)
            request = provider.resources(resolved.configuration)
        except InvalidJobConfiguration as exc:  # its message shows the value, which may embed a secret
            raise RunRejected("InvalidJobConfiguration", _redact(resolved, f"Run not started: {exc.message}.")) from None
        except DeploymentGone as exc:
            raise RunRejected("Cancelled", str(exc)) from None
        violations = check_resources(request, pool.limits, f"pool {pool.name!r}")
        if violations:
            raise RunRejected("LimitExceeded", violations_message(violations))
        await self._check_monthly_budget()
        return resolved

    async def _check_monthly_budget(self) -> None:
        budget = self.ws.monthly_compute_minutes
        if budget is None:
            return
        used = await self.ledger.month_minutes(self.ws.name, utcnow().strftime("%Y-%m"))
        if used >= budget:
            raise RunRejected(
                "ComputeLimitReached",
                f"Run not started: workspace {self.ws.name!r} used {used} of its {budget} compute minutes this month.",
            )

    def request_for(self, flow_run: FlowRun, pool: ServedPool, resolved: ResolvedConfiguration) -> SubmitRequest:
        return SubmitRequest(
            flow_run_id=flow_run.id,
            idempotency_key=idempotency_key(flow_run),
            workspace=self.ws.name,
            pool=pool.name,
            configuration=resolved.configuration,
            limits=RunLimits(max_runtime_s=pool.limits.max_runtime_s or 24 * 3600),
            secrets=resolved.secrets,
        )

    async def _submit(self, flow_run: FlowRun, pool: ServedPool, resolved: ResolvedConfiguration) -> None:
        provider = pool.provider
        request = self.request_for(flow_run, pool, resolved)
        metrics.PROVIDER_CALLS.labels(provider.kind, "submit").inc()
        submission = await call_with_retries(
            provider.kind, "submit", lambda: provider.submit(request), deadline_s=self.loop.submit_deadline_s
        )
        await self.record(flow_run, pool, resolved, submission.infrastructure_id, request.limits.max_runtime_s)

    async def record(self, flow_run: FlowRun, pool: ServedPool, resolved: ResolvedConfiguration,
                     infrastructure_id: str, max_runtime_s: int) -> None:
        """Write the infrastructure id to the ledger and Prefect, and start watching the run."""
        provider = pool.provider
        submitted_at = utcnow()
        # Ledger first: it is what metering and recovery read; Prefect's copy can be re-derived from it.
        await self.ledger.record_submission(
            str(flow_run.id), infrastructure_id, submitted_at,
            workspace=self.ws.name, pool=pool.name, provider=provider.kind,
        )
        await self.workspace.set_infrastructure_pid(flow_run.id, infrastructure_id)
        metrics.RUNS_SUBMITTED.labels(self.ws.name, pool.name, provider.kind).inc()
        metrics.SUBMIT_LATENCY.labels(self.ws.name).observe(max(0.0, seconds_since(_scheduled_time(flow_run), submitted_at)))
        log.info("flow run %s submitted to %s as %s", flow_run.id, provider.kind, infrastructure_id)
        self.track(
            TrackedRun(
                flow_run_id=flow_run.id,
                pool=pool,
                infrastructure_id=infrastructure_id,
                configuration=resolved.configuration,
                submitted_at=submitted_at,
                max_runtime_s=max_runtime_s,
                secrets=resolved.secrets,
            )
        )

    async def _end_run(self, flow_run: FlowRun, pool: ServedPool, rejected: RunRejected) -> None:
        metrics.RUNS_REJECTED.labels(self.ws.name, pool.name, rejected.state_name).inc()
        log.warning("flow run %s not started: %s", flow_run.id, rejected.message)
        if rejected.state_name == "Cancelled":
            state = Cancelled(message=rejected.message)
        else:
            state = Failed(name=rejected.state_name, message=rejected.message)
        await self._set_state(flow_run, state)
        if rejected.state_name != "RerunNotSupported":  # keep the first attempt's record as it was
            await self._set_final_state(flow_run, rejected.state_name)

    async def _set_final_state(self, flow_run: FlowRun, state_name: str) -> None:
        try:
            await self.ledger.set_final_state(str(flow_run.id), state_name)
        except LedgerError:  # the claim was never recorded (the ledger was down then): nothing to close
            log.debug("flow run %s has no ledger row to close", flow_run.id)

    async def _set_state(self, flow_run: FlowRun, state: object) -> None:
        result = await self.workspace.propose(flow_run.id, state)  # type: ignore[arg-type]
        metrics.STATE_CHANGES.labels(self.ws.name, getattr(state, "name", "?")).inc()
        if result.outcome != Proposal.ACCEPTED:
            log.info("state %s for %s not accepted: %s", getattr(state, "name", state), flow_run.id, result.reason)


def _redact(resolved: ResolvedConfiguration | None, message: str) -> str:
    return message if resolved is None else resolved.secrets.redact(message)


def _scheduled_time(flow_run: FlowRun) -> datetime | None:
    return flow_run.next_scheduled_start_time or flow_run.expected_start_time

