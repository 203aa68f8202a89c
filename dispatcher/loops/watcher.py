"""Observe every in-flight attempt of a workspace in batches and act on what is seen.

Each tick: one ``status_many`` per provider (providers batch per cloud call), then one
Prefect read for the states of all watched runs, read *after* the infrastructure so
Prefect's view is never older than the cloud's. ``decide`` turns each pair into an
action. Nothing here is per-cloud.

Replicas share the watching: each observes the attempts it owns (:mod:`dispatcher.loops.shards`),
and the ones it submitted itself until their owner has adopted them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from uuid import UUID

from prefect.client.schemas.objects import FlowRun, State, StateType
from prefect.states import Cancelled, Crashed, Failed

from dispatcher import metrics
from dispatcher.clock import seconds_since, utcnow
from dispatcher.config import LoopConfig
from dispatcher.health import QuietErrors
from dispatcher.ledger import Ledger, LedgerError, LedgerUnavailable
from dispatcher.loops.decisions import TERMINAL, Action, Decision, Observation, decide, over_runtime_cap
from dispatcher.loops.inflight import InFlight
from dispatcher.loops.served import TrackedRun
from dispatcher.loops.shards import Shards
from dispatcher.prefect.api import PrefectUnavailable, PrefectApi
from dispatcher.prefect.states import set_state
from providers.base import InfraPhase, InfraStatus
from providers.errors import ProviderError
from providers.secrets import RunSecrets

log = logging.getLogger(__name__)
#: Every this many ticks the rows of owned attempts are read again (see Watcher._mark_watched).
REVERIFY_TICKS = 10
#: The state name an attempt's ledger row gets when Prefect moved on to a retry before it ended.
RETRIED = "Retried"
#: Runs read from Prefect and acted on together within a tick.
ACT_CHUNK = 1000


class Watcher:
    """What happens to the attempts ``inflight`` watches."""

    def __init__(self, prefect: PrefectApi, ledger: Ledger, inflight: InFlight, loop: LoopConfig, errors: QuietErrors,
                 shards: Shards) -> None:
        self.prefect = prefect
        self.shards = shards
        self.ledger = ledger
        self.inflight = inflight
        self.loop = loop
        self.errors = errors
        self._ledger_failed_this_tick = False
        self._marked: set[UUID] = set()  # owned attempts whose row names this replica as their watcher
        self._view: tuple[str, ...] = ()  # the live replicas when the marks were last read
        self._ticks = 0
        self._sweeps = 0
        self._steady = SteadyRuns()

    async def tick(self) -> None:
        """Observe all watched attempts once and act on each, each on its own.

        Prefect down: attempts past their cap are stopped anyway (their TimedOut state follows
        when Prefect is back), the rest waits. Ledger down: attempts that only need metering
        wait; cancellations and caps of the others go on.
        """
        watched = await self._watched_here()
        if not watched:
            return
        with metrics.WATCH_TICK_SECONDS.labels(self.prefect.config.name).time():
            await self._observe_and_act(watched)

    async def _observe_and_act(self, watched: list[TrackedRun]) -> None:
        statuses = await self._observe_infrastructure(watched)
        self._ledger_failed_this_tick = False
        try:
            looked_at = await self._needing_prefect(watched, statuses)
        except PrefectUnavailable:
            await self._enforce_caps_without_prefect(watched, statuses)
            raise
        # Read from Prefect and acted on a chunk at a time: a sweep of 10,000 runs read at once
        # held them all in memory together.
        for start in range(0, len(looked_at), ACT_CHUNK):
            chunk = looked_at[start : start + ACT_CHUNK]
            try:
                runs = await self.prefect.read_runs(list({run.flow_run_id for run in chunk}))
            except PrefectUnavailable:
                await self._enforce_caps_without_prefect(watched, statuses)
                raise
            for tracked in chunk:
                flow_run, status = runs.get(tracked.flow_run_id), statuses[tracked.attempt.attempt_id]
                self._steady.note(tracked, flow_run, status)
                await self._handle_isolated(tracked, flow_run, status)

    async def _needing_prefect(self, watched: list[TrackedRun], statuses: dict[UUID, InfraStatus | None]) -> list[TrackedRun]:
        """The runs to read from Prefect and act on this tick: all of them on a sweep tick; otherwise those that
        may need an action (see :class:`SteadyRuns`), plus those CANCELLING now, found by one filtered query."""
        self._sweeps += 1
        if self._sweeps % self.loop.prefect_sweep_every_ticks == 0:
            self._steady.keep_only(watched)
            return watched
        unsteady = {run.attempt.attempt_id for run in watched
                    if not self._steady.is_steady(run, statuses[run.attempt.attempt_id])}
        if len(unsteady) == len(watched):
            return watched
        pools = sorted({run.pool.name for run in watched})
        cancelling = {run.id for run in await self.prefect.runs_in_states(pools, [StateType.CANCELLING])}
        return [run for run in watched if run.attempt.attempt_id in unsteady or run.flow_run_id in cancelling]

    async def _watched_here(self) -> list[TrackedRun]:
        """The attempts this replica owns, and those it holds for another until that one has adopted them."""
        owned: list[TrackedRun] = []
        held: list[TrackedRun] = []
        for run in self.inflight.watched():
            (owned if self.shards.owns(run.slot) else held).append(run)
        await self._mark_watched(owned)
        if not held:
            return owned
        try:
            adopted_by = await self.ledger.watchers([str(run.attempt.attempt_id) for run in held])
        except LedgerUnavailable:
            return owned + held  # cannot tell whether the owner has them yet: keep watching
        kept = []
        for run in held:
            if adopted_by.get(str(run.attempt.attempt_id)) == self.shards.owner(run.slot):
                self.inflight.forget(run)
                metrics.WATCH_HANDOVERS.labels(self.prefect.config.name).inc()
            else:
                kept.append(run)
        return owned + kept

    async def _mark_watched(self, owned: list[TrackedRun]) -> None:
        """Name this replica in the rows of the attempts it owns, however it came to hold them
        (submitted, re-driven, adopted, or ownership moved here), so a replica that also holds one lets go.

        Rows are read again after each membership change and every ``REVERIFY_TICKS`` ticks: a
        replica whose view lagged may have named itself in the meantime.
        """
        owned_ids = {run.attempt.attempt_id for run in owned}
        self._ticks += 1
        try:
            if self.shards.live != self._view or self._ticks % REVERIFY_TICKS == 0:
                self._view = self.shards.live
                named = await self.ledger.watchers([str(attempt_id) for attempt_id in owned_ids])
                self._marked = {a for a in owned_ids if named.get(str(a)) == self.shards.replica_id}
            self._marked &= owned_ids
            unmarked = owned_ids - self._marked
            if unmarked:
                await self.ledger.set_watcher([str(attempt_id) for attempt_id in unmarked], self.shards.replica_id)
                self._marked |= unmarked
        except LedgerUnavailable:
            self._view = ()  # read again once it is back; meanwhile both replicas watch, harmlessly

    async def _observe_infrastructure(self, watched: list[TrackedRun]) -> dict[UUID, InfraStatus | None]:
        """Status per attempt; None where the provider could not be reached this tick."""
        by_provider: dict[str, list[TrackedRun]] = defaultdict(list)
        for run in watched:
            by_provider[run.pool.provider.kind].append(run)
        statuses: dict[UUID, InfraStatus | None] = {}
        for runs in by_provider.values():
            provider = runs[0].pool.provider
            try:
                observed: list[InfraStatus | None] = list(await provider.status_many([run.ref for run in runs]))
            except ProviderError as exc:
                log.warning("could not observe %d runs on %s: %s", len(runs), provider.kind, exc)
                observed = [None] * len(runs)
            statuses.update({run.attempt.attempt_id: status for run, status in zip(runs, observed, strict=True)})
        return statuses

    async def _handle_isolated(self, tracked: TrackedRun, flow_run: FlowRun | None, status: InfraStatus | None) -> None:
        subject = str(tracked.attempt)
        try:
            await self._handle(tracked, flow_run, status)
        except PrefectUnavailable:
            raise  # every other run needs Prefect too: end the tick, the loop backs off
        except LedgerUnavailable:
            self._ledger_failed_this_tick = True  # metering waits; the next tick tries again
        except ProviderError as exc:
            log.warning("acting on %s failed: %s", subject, exc)
        except Exception as exc:  # noqa: BLE001 - one run's trouble must not stop the others'
            self.errors.report("watch", subject, exc)
        else:
            self.errors.cleared(subject)

    async def _enforce_caps_without_prefect(self, watched: list[TrackedRun], statuses: dict[UUID, InfraStatus | None]) -> None:
        for tracked in watched:
            status = statuses.get(tracked.attempt.attempt_id)
            if status is None or tracked.timeout_stop_requested:
                continue
            if over_runtime_cap(status, seconds_since(tracked.submitted_at), tracked.max_runtime_s):
                log.warning("%s is over its runtime cap and Prefect is unreachable: stopping it now, "
                            "its TimedOut state follows when Prefect is back", tracked.attempt)
                tracked.timeout_stop_requested = True
                with contextlib.suppress(ProviderError):
                    await self._stop(tracked, "runtime cap exceeded")

    async def _handle(self, tracked: TrackedRun, flow_run: FlowRun | None, status: InfraStatus | None) -> None:
        if flow_run is None:  # deleted from Prefect: stop what it left behind, meter it, forget it
            await self._stop(tracked, "flow run was deleted")
            await self._finish(tracked, status, "Deleted")
            return
        if status is None or status.phase == InfraPhase.UNKNOWN:
            await self._unobservable(tracked, flow_run, status)
            return
        tracked.unobservable_since = None
        _remember(tracked, status)
        decision = decide(self._observation(tracked, flow_run, status))
        await self._act(tracked, flow_run, status, decision)

    def _observation(self, tracked: TrackedRun, flow_run: FlowRun, status: InfraStatus) -> Observation:
        state_type = flow_run.state.type if flow_run.state else StateType.SCHEDULED
        now = time.monotonic()
        if state_type in TERMINAL:
            tracked.terminal_since = tracked.terminal_since or now
        if status.phase == InfraPhase.EXITED:
            tracked.exited_since = tracked.exited_since or now
        return Observation(
            run_state=state_type,
            run_state_name=flow_run.state.name if flow_run.state else "",
            infra=status,
            elapsed_s=seconds_since(tracked.submitted_at),
            max_runtime_s=tracked.max_runtime_s,
            start_timeout_s=tracked.pool.provider.start_timeout_s(tracked.configuration),
            terminal_for_s=now - tracked.terminal_since if tracked.terminal_since else 0.0,
            exited_for_s=now - tracked.exited_since if tracked.exited_since else 0.0,
            stop_requested=tracked.timeout_stop_requested,
            superseded=tracked.superseded_by(flow_run),
        )

    async def _act(self, tracked: TrackedRun, flow_run: FlowRun, status: InfraStatus, decision: Decision) -> None:
        action, message = decision.action, decision.message
        if action == Action.WAIT:
            return
        if action == Action.FINISH:
            superseded = tracked.superseded_by(flow_run)
            await self._finish(tracked, status, RETRIED if superseded else (flow_run.state.name if flow_run.state else "?"))
        elif action == Action.CRASH:
            await self._crash(tracked, message)
        elif action == Action.STOP_FOR_CANCEL:
            tracked.cancelling_since = tracked.cancelling_since or time.monotonic()
            if time.monotonic() - tracked.cancelling_since > self.loop.stop_timeout_s:
                await self._set(tracked, Cancelled(message="Cancelled; the infrastructure did not confirm that it stopped."))
            else:
                await self._stop(tracked, message, rate_limited=True)
        elif action == Action.MARK_CANCELLED:
            await self._set(tracked, Cancelled(message=message))
        elif action == Action.STOP_FOR_TIMEOUT:
            # Final state first: the engine, when killed, then cannot overwrite it with Crashed.
            await self._set(tracked, Failed(name="TimedOut", message=message))
            tracked.timeout_stop_requested = True
            await self._stop(tracked, message)
        elif action == Action.MARK_TIMED_OUT:
            await self._set(tracked, Failed(name="TimedOut", message=message), force=decision.force)
        elif action == Action.STOP_LEFTOVER:
            await self._stop(tracked, message, rate_limited=True)

    async def _unobservable(self, tracked: TrackedRun, flow_run: FlowRun, status: InfraStatus | None) -> None:
        """The cloud did not answer (or answered nonsense): retry, and after a bounded time say so honestly."""
        now = time.monotonic()
        tracked.unobservable_since = tracked.unobservable_since or now
        if status is not None:
            log.warning("%s: infrastructure in unknown state %r", tracked.attempt, status.native_state)
        waited = now - tracked.unobservable_since
        if waited < self.loop.watch_error_deadline_s:
            return
        if tracked.superseded_by(flow_run) or (flow_run.state and flow_run.state.type in TERMINAL):
            await self._finish(tracked, None, RETRIED if tracked.superseded_by(flow_run) else flow_run.state.name)
            return
        what = f"reported unknown state {status.native_state!r}" if status else "could not be observed"
        await self._crash(tracked, f"Flow run infrastructure {what} for {int(waited)}s; it was asked to stop and the run is marked crashed.")
        await self._stop(tracked, "unobservable")

    async def _crash(self, tracked: TrackedRun, message: str) -> None:
        tail = masked_tail(await tracked.pool.provider.last_log_lines(tracked.ref, limit=10), tracked.secrets)
        if tail:
            message += "\nLast lines of the infrastructure log:\n" + "\n".join(tail)
        # The message is shown in Prefect and logged: the cloud's reason may quote output too.
        await self._set(tracked, Crashed(message=tracked.secrets.redact(message)))

    async def _finish(self, tracked: TrackedRun, status: InfraStatus | None, state_name: str) -> None:
        if self._ledger_failed_this_tick:  # one failed ledger call per tick, not one per ended run
            raise LedgerUnavailable("ledger: failed earlier in this tick", self.ledger.health)
        started = status.started_at if status and status.started_at else tracked.last_started_at
        stopped = status.stopped_at if status and status.stopped_at else tracked.last_stopped_at
        if started is not None and stopped is None:
            stopped = utcnow()  # the infrastructure vanished before reporting teardown: our clock, documented
        attempt_id = str(tracked.attempt.attempt_id)
        reason = tracked.secrets.redact(status.reason) if status and status.reason else None
        try:
            metered = await self.ledger.meter(attempt_id, started, stopped, exit_code=status.exit_code if status else None,
                                              reason=reason)
            await self.ledger.set_final_state(attempt_id, state_name)
        except LedgerError as exc:  # not ours to meter (the ledger never saw it): stop watching
            log.error("cannot meter %s: %s", tracked.attempt, exc)
            self.inflight.forget(tracked)
            return
        if metered:
            row = await self.ledger.get(attempt_id)
            minutes = row.billed_minutes if row and row.billed_minutes else 0
            workspace = self.prefect.config.name
            metrics.COMPUTE_SECONDS.labels(workspace, tracked.pool.name).inc(minutes * 60)
            metrics.RUNS_FINISHED.labels(workspace, tracked.pool.name, metrics.final_state_label(state_name)).inc()
        await tracked.pool.provider.release(tracked.ref)  # recorded: the provider may delete what it kept
        self.inflight.forget(tracked)

    async def _stop(self, tracked: TrackedRun, reason: str, rate_limited: bool = False) -> None:
        now = time.monotonic()
        if rate_limited and tracked.last_stop_at and now - tracked.last_stop_at < max(5.0, self.loop.watch_interval_s * 5):
            return
        tracked.last_stop_at = now
        await tracked.pool.provider.stop(tracked.ref, reason)

    async def _set(self, tracked: TrackedRun, state: State, force: bool = False) -> None:
        await set_state(self.prefect, tracked.flow_run_id, state, force=force)


def masked_tail(lines: list[str], secrets: RunSecrets) -> list[str]:
    """A run's last output lines for a state message: masked whole first (a secret may span
    lines), cut to 500 characters per line after (a cut secret would no longer match)."""
    return [line[:500] for line in secrets.redact("\n".join(lines)).split("\n")] if lines else []


def _remember(tracked: TrackedRun, status: InfraStatus) -> None:
    """The last timestamps seen, in case the infrastructure vanishes before reporting its teardown."""
    tracked.last_started_at = status.started_at or tracked.last_started_at
    tracked.last_stopped_at = status.stopped_at or tracked.last_stopped_at


class SteadyRuns:
    """Attempts that need nothing from Prefect until something changes: at the last read the run was
    Running and its infrastructure running, and it still is, short of its runtime cap. Such a run can only
    need an action if a person cancels it (CANCELLING: a filtered query each tick), sets its state by hand
    or deletes it (seen at the next sweep); everything else shows in the infrastructure first."""

    def __init__(self) -> None:
        self._steady: set[UUID] = set()

    def note(self, tracked: TrackedRun, flow_run: FlowRun | None, status: InfraStatus | None) -> None:
        attempt_id = tracked.attempt.attempt_id
        if (flow_run is not None and flow_run.state is not None and flow_run.state.type == StateType.RUNNING
                and status is not None and status.phase == InfraPhase.RUNNING):
            self._steady.add(attempt_id)
        else:
            self._steady.discard(attempt_id)

    def is_steady(self, tracked: TrackedRun, status: InfraStatus | None) -> bool:
        return (tracked.attempt.attempt_id in self._steady and status is not None
                and status.phase == InfraPhase.RUNNING
                and not over_runtime_cap(status, seconds_since(tracked.submitted_at), tracked.max_runtime_s))

    def keep_only(self, watched: list[TrackedRun]) -> None:
        self._steady &= {run.attempt.attempt_id for run in watched}

