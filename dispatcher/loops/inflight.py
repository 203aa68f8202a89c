"""The one owner of a workspace's in-flight runs on this replica, from the poll to metering.

Two stages, one place: *dispatching* (polled or re-driven, maybe claimed, not yet recorded
as submitted: an asyncio task per flow run) and *watched* (an attempt with infrastructure,
observed by the watcher until it is metered). Recovery asks here what is already handled
instead of reaching into the loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from uuid import UUID

from dispatcher import metrics
from dispatcher.loops.configs import SharedConfigurations
from dispatcher.loops.served import TrackedRun


class InFlight:
    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self._dispatching: dict[UUID, asyncio.Task] = {}  # by flow run id
        self._claimed: set[UUID] = set()  # dispatching flow runs whose claim Prefect accepted
        self._watched: dict[UUID, TrackedRun] = {}  # by attempt id
        # (flow run id, infrastructure id) -> attempt ids: recovery asks once per active run per pass,
        # and a scan of every watched run there made a pass quadratic in the runs in flight.
        self._by_infrastructure: dict[tuple[UUID, str], set[UUID]] = {}
        # Watched runs keep a shared, slim configuration.
        self._configurations = SharedConfigurations(lambda: (run.configuration for run in self._watched.values()))

    # -- dispatching -----------------------------------------------------------------------

    def dispatching(self, flow_run_id: UUID) -> bool:
        return flow_run_id in self._dispatching

    def dispatch(self, flow_run_id: UUID, work: Awaitable[None], claimed: bool = False) -> bool:
        """Start ``work`` for a flow run unless it is already being dispatched; True if started."""
        if flow_run_id in self._dispatching:
            if asyncio.iscoroutine(work):
                work.close()
            return False
        task = asyncio.ensure_future(work)
        self._dispatching[flow_run_id] = task
        if claimed:
            self._claimed.add(flow_run_id)
        task.add_done_callback(lambda _: self._dispatched(flow_run_id))
        return True

    def claimed(self, flow_run_id: UUID) -> None:
        """Prefect accepted our claim: from now on the run must be submitted, or handed to recovery."""
        self._claimed.add(flow_run_id)

    def _dispatched(self, flow_run_id: UUID) -> None:
        self._dispatching.pop(flow_run_id, None)
        self._claimed.discard(flow_run_id)

    async def drain(self, grace_s: float) -> int:
        """Cancel what is not claimed yet; give claimed submissions ``grace_s``; cancel the rest.

        Returns how many claimed submissions were cut short (recovery re-drives them).
        """
        for run_id, task in list(self._dispatching.items()):
            if run_id not in self._claimed:
                task.cancel()
        submitting = [task for run_id, task in self._dispatching.items() if run_id in self._claimed]
        if not submitting:
            return 0
        _, unfinished = await asyncio.wait(submitting, timeout=grace_s)
        for task in unfinished:
            task.cancel()
        return len(unfinished)

    def submitting(self) -> int:
        return len(self._claimed)

    # -- watched ------------------------------------------------------------------------------

    def watch(self, run: TrackedRun) -> None:
        run.configuration = self._configurations.shared(run.configuration)
        if self._watched.setdefault(run.attempt.attempt_id, run) is run:
            self._by_infrastructure.setdefault((run.flow_run_id, run.infrastructure_id), set()).add(run.attempt.attempt_id)
        self._count()

    def forget(self, run: TrackedRun) -> None:
        watched = self._watched.pop(run.attempt.attempt_id, None)
        if watched is not None:
            key = (watched.flow_run_id, watched.infrastructure_id)
            attempts = self._by_infrastructure.get(key, set())
            attempts.discard(watched.attempt.attempt_id)
            if not attempts:
                self._by_infrastructure.pop(key, None)
        self._count()

    def watched(self) -> list[TrackedRun]:
        return list(self._watched.values())

    def is_watched(self, attempt_id: UUID) -> bool:
        return attempt_id in self._watched

    def watching_infrastructure(self, flow_run_id: UUID, infrastructure_id: str) -> bool:
        return (flow_run_id, infrastructure_id) in self._by_infrastructure

    def _count(self) -> None:
        metrics.INFLIGHT.labels(self.workspace).set(len(self._watched))
