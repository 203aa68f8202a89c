"""Observe every in-flight run of a workspace in batches and act on what is seen.

Each tick: one ``status_many`` per provider (providers batch per cloud call),
then one Prefect read for the states of all tracked runs, read *after* the
infrastructure so Prefect's view is never older than the cloud's. ``decide``
turns each pair into an action. Nothing here is per-cloud.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, StateType
from prefect.states import Cancelled, Crashed, Failed

from dispatcher import metrics
from dispatcher.config import LoopConfig, WorkspaceConfig
from dispatcher.loops.decisions import TERMINAL, Action, Decision, Observation, decide, over_runtime_cap
from dispatcher.health import QuietErrors
from dispatcher.ledger import Ledger, LedgerError, LedgerUnavailable
from dispatcher.loops.served import TrackedRun
from dispatcher.prefect.api import PrefectUnavailable, PrefectWorkspace, Proposal, seconds_since, utcnow
from dispatcher.loops.retry import call_with_retries
from providers.base import InfraPhase, InfraStatus, Provider, RunRef
from providers.errors import ProviderError
from providers.secrets import RunSecrets

log = logging.getLogger(__name__)


class Watcher:
    """The in-flight set of one workspace and what happens to it."""

    def __init__(
        self, workspace: PrefectWorkspace, ws: WorkspaceConfig, ledger: Ledger, loop: LoopConfig, errors: QuietErrors
    ) -> None:
        self.workspace = workspace
        self.ws = ws
        self.ledger = ledger
        self.loop = loop
        self.errors = errors
        self.tracked: dict[UUID, TrackedRun] = {}
        self._ledger_failed_this_tick = False

    def track(self, run: TrackedRun) -> None:
        self.tracked.setdefault(run.flow_run_id, run)
        metrics.INFLIGHT.labels(self.ws.name).set(len(self.tracked))

    def forget(self, flow_run_id: UUID) -> None:
        self.tracked.pop(flow_run_id, None)
        metrics.INFLIGHT.labels(self.ws.name).set(len(self.tracked))

    async def tick(self) -> None:
        """Observe all tracked runs once and act on each, each on its own.

        Prefect down: runs past their cap are stopped anyway (their TimedOut state follows
        when Prefect is back), the rest waits. Ledger down: runs that only need metering wait
        in the set; cancellations and caps of the others go on.
        """
        if not self.tracked:
            return
        statuses = await self._observe_infrastructure(list(self.tracked.values()))
        try:
            runs = await self.workspace.read_runs(list(statuses))
        except PrefectUnavailable:
            await self._enforce_caps_without_prefect(statuses)
            raise
        self._ledger_failed_this_tick = False
        for flow_run_id, status in statuses.items():
            tracked = self.tracked.get(flow_run_id)
            if tracked is not None:
                await self._handle_isolated(tracked, runs.get(flow_run_id), status)

    async def _handle_isolated(self, tracked: TrackedRun, flow_run: FlowRun | None, status: InfraStatus | None) -> None:
        subject = f"flow run {tracked.flow_run_id}"
        try:
            await self._handle(tracked, flow_run, status)
        except PrefectUnavailable:
            raise  # every other run needs Prefect too: end the tick, the loop backs off
        except LedgerUnavailable:
            self._ledger_failed_this_tick = True  # metering waits; the next tick tries again
        except ProviderError as exc:
            log.warning("acting on flow run %s failed: %s", tracked.flow_run_id, exc)
        except Exception as exc:  # noqa: BLE001 - one run's trouble must not stop the others'
            self.errors.report("watch", subject, exc)
        else:
            self.errors.cleared(subject)

    async def _enforce_caps_without_prefect(self, statuses: dict[UUID, InfraStatus | None]) -> None:
        for flow_run_id, status in statuses.items():
            tracked = self.tracked.get(flow_run_id)
            if tracked is None or status is None or tracked.timeout_stop_requested:
                continue
            if over_runtime_cap(status, seconds_since(tracked.submitted_at), tracked.max_runtime_s):
                log.warning("flow run %s is over its runtime cap and Prefect is unreachable: stopping it now, "
                            "its TimedOut state follows when Prefect is back", flow_run_id)
                tracked.timeout_stop_requested = True
                with contextlib.suppress(ProviderError):
                    await self._stop(tracked, "runtime cap exceeded")

    async def _observe_infrastructure(self, tracked: list[TrackedRun]) -> dict[UUID, InfraStatus | None]:
        """Status per run; None where the provider could not be reached this tick."""
        by_provider: dict[str, list[TrackedRun]] = defaultdict(list)
        for run in tracked:
            by_provider[run.pool.provider.kind].append(run)
        statuses: dict[UUID, InfraStatus | None] = {}
        for runs in by_provider.values():
            provider = runs[0].pool.provider
            refs = [_ref(run) for run in runs]
            try:
                metrics.PROVIDER_CALLS.labels(provider.kind, "status_many").inc()
                observed = await call_with_retries(
                    provider.kind, "status_many", lambda: provider.status_many(refs), deadline_s=self.loop.watch_interval_s * 2
                )
            except ProviderError as exc:
                metrics.PROVIDER_ERRORS.labels(provider.kind, "status_many", type(exc).__name__).inc()
                log.warning("could not observe %d runs on %s: %s", len(runs), provider.kind, exc)
                observed = [None] * len(runs)
            statuses.update({run.flow_run_id: status for run, status in zip(runs, observed)})
        return statuses

    async def _handle(self, tracked: TrackedRun, flow_run: FlowRun | None, status: InfraStatus | None) -> None:
        if flow_run is None:  # deleted from Prefect: stop what it left behind, meter it, forget it
            await self._stop(tracked, "flow run was deleted")
            await self._finish(tracked, status, "Deleted")
            return
        tracked.flow_run = flow_run
        if status is None or status.phase == InfraPhase.UNKNOWN:
            await self._unobservable(tracked, flow_run, status)
            return
        tracked.unobservable_since = None
        _remember_timestamps(tracked, status)
        state_type = flow_run.state.type if flow_run.state else StateType.SCHEDULED
        now = time.monotonic()
        if state_type in TERMINAL:
            tracked.terminal_since = tracked.terminal_since or now
        if status.phase == InfraPhase.EXITED:
            tracked.exited_since = tracked.exited_since or now
        decision = decide(
            Observation(
                run_state=state_type,
                run_state_name=flow_run.state.name if flow_run.state else "",
                infra=status,
                elapsed_s=seconds_since(tracked.submitted_at),
                max_runtime_s=tracked.max_runtime_s,
                terminal_for_s=now - tracked.terminal_since if tracked.terminal_since else 0.0,
                exited_for_s=now - tracked.exited_since if tracked.exited_since else 0.0,
                stop_requested=tracked.timeout_stop_requested,
            )
        )
        await self._act(tracked, flow_run, status, decision)

    async def _act(self, tracked: TrackedRun, flow_run: FlowRun, status: InfraStatus, decision: Decision) -> None:
        action, message = decision.action, decision.message
        if action == Action.WAIT:
            return
        if action == Action.FINISH:
            await self._finish(tracked, status, flow_run.state.name if flow_run.state else "?")
        elif action == Action.CRASH:
            await self._crash(tracked, message)
        elif action == Action.STOP_FOR_CANCEL:
            tracked.cancelling_since = tracked.cancelling_since or time.monotonic()
            if time.monotonic() - tracked.cancelling_since > self.loop.stop_timeout_s:
                await self._propose(tracked, Cancelled(message="Cancelled; the infrastructure did not confirm that it stopped."))
            else:
                await self._stop(tracked, message, rate_limited=True)
        elif action == Action.MARK_CANCELLED:
            await self._propose(tracked, Cancelled(message=message))
        elif action == Action.STOP_FOR_TIMEOUT:
            # Final state first: the engine, when killed, then cannot overwrite it with Crashed.
            await self._propose(tracked, Failed(name="TimedOut", message=message))
            tracked.timeout_stop_requested = True
            await self._stop(tracked, message)
        elif action == Action.MARK_TIMED_OUT:
            await self._propose(tracked, Failed(name="TimedOut", message=message), force=decision.force)
        elif action == Action.STOP_LEFTOVER:
            await self._stop(tracked, message, rate_limited=True)

    async def _unobservable(self, tracked: TrackedRun, flow_run: FlowRun, status: InfraStatus | None) -> None:
        """The cloud did not answer (or answered nonsense): retry, and after a bounded time say so honestly."""
        now = time.monotonic()
        tracked.unobservable_since = tracked.unobservable_since or now
        if status is not None:
            log.warning("flow run %s: infrastructure in unknown state %r", tracked.flow_run_id, status.native_state)
        waited = now - tracked.unobservable_since
        if waited < self.loop.watch_error_deadline_s:
            return
        state_type = flow_run.state.type if flow_run.state else None
        if state_type in TERMINAL:
            await self._finish(tracked, None, flow_run.state.name if flow_run.state else "?")
            return
        what = f"reported unknown state {status.native_state!r}" if status else "could not be observed"
        await self._crash(tracked, f"Flow run infrastructure {what} for {int(waited)}s; it was asked to stop and the run is marked crashed.")
        await self._stop(tracked, "unobservable")

    async def _crash(self, tracked: TrackedRun, message: str) -> None:
        lines = await _safe_log_tail(tracked.pool.provider, _ref(tracked), tracked.secrets)
        if lines:
            message += "\nLast lines of the infrastructure log:\n" + "\n".join(lines)
        # The message is shown in Prefect and logged: the cloud's reason may quote output too.
        await self._propose(tracked, Crashed(message=tracked.secrets.redact(message)))

    async def _finish(self, tracked: TrackedRun, status: InfraStatus | None, state_name: str) -> None:
        if self._ledger_failed_this_tick:  # one failed ledger call per tick, not one per ended run
            raise LedgerUnavailable("ledger: failed earlier in this tick", self.ledger.health)
        started = status.started_at if status and status.started_at else tracked.last_started_at
        stopped = status.stopped_at if status and status.stopped_at else tracked.last_stopped_at
        if started is not None and stopped is None:
            stopped = utcnow()  # the infrastructure vanished before reporting teardown: our clock, documented
        try:
            metered = await self.ledger.meter(
                str(tracked.flow_run_id), started, stopped,
                exit_code=status.exit_code if status else None,
                reason=tracked.secrets.redact(status.reason) if status and status.reason else None,
            )
            await self.ledger.set_final_state(str(tracked.flow_run_id), state_name)
        except LedgerError as exc:  # not ours to meter (the ledger never saw it): stop watching
            log.error("cannot meter flow run %s: %s", tracked.flow_run_id, exc)
            self.forget(tracked.flow_run_id)
            return
        if metered:
            row = await self.ledger.get(str(tracked.flow_run_id))
            minutes = row.billed_minutes if row and row.billed_minutes else 0
            metrics.COMPUTE_MINUTES.labels(self.ws.name, tracked.pool.name).inc(minutes)
            metrics.RUNS_FINISHED.labels(self.ws.name, tracked.pool.name, state_name).inc()
        self.forget(tracked.flow_run_id)

    async def _stop(self, tracked: TrackedRun, reason: str, rate_limited: bool = False) -> None:
        now = time.monotonic()
        if rate_limited and tracked.last_stop_at and now - tracked.last_stop_at < max(5.0, self.loop.watch_interval_s * 5):
            return
        tracked.last_stop_at = now
        provider = tracked.pool.provider
        metrics.PROVIDER_CALLS.labels(provider.kind, "stop").inc()
        await call_with_retries(provider.kind, "stop", lambda: provider.stop(_ref(tracked), reason), deadline_s=30)

    async def _propose(self, tracked: TrackedRun, state: object, force: bool = False) -> None:
        result = await self.workspace.propose(tracked.flow_run_id, state, force=force)  # type: ignore[arg-type]
        name = getattr(state, "name", "?")
        if result.outcome == Proposal.ACCEPTED:
            metrics.STATE_CHANGES.labels(self.ws.name, name).inc()
            log.info("flow run %s -> %s: %s", tracked.flow_run_id, name, getattr(state, "message", ""))
        else:
            log.info("flow run %s: %s not accepted (%s)", tracked.flow_run_id, name, result.reason)


def _ref(run: TrackedRun) -> RunRef:
    return RunRef(flow_run_id=run.flow_run_id, infrastructure_id=run.infrastructure_id, configuration=run.configuration)


def _remember_timestamps(tracked: TrackedRun, status: InfraStatus) -> None:
    tracked.last_started_at = status.started_at or tracked.last_started_at
    tracked.last_stopped_at = status.stopped_at or tracked.last_stopped_at


async def _safe_log_tail(provider: Provider, ref: RunRef, secrets: RunSecrets) -> list[str]:
    """The run's last output lines with its secrets masked: redacted whole first (a secret may
    span lines), truncated after (a cut secret would no longer match)."""
    try:
        lines = await provider.last_log_lines(ref, limit=10)
    except ProviderError:
        return []
    return [line[:500] for line in secrets.redact("\n".join(lines)).split("\n")] if lines else []

