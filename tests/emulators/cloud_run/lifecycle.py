"""Moves executions and their tasks through Cloud Run's lifecycle on wall-clock time.

PENDING (resources, image import) --pending_s--> RUNNING: up to
``parallelism`` tasks run at once; an attempt ends with its exit code (or at
the task timeout: DEADLINE_EXCEEDED "The configured timeout was reached."), a
failed attempt is retried up to ``maxRetries`` times, after ``retry_delay_s``.
When every task is final the execution is DONE: SUCCEEDED if all succeeded,
else FAILED. A cancel (CANCELLING) cancels pending tasks, stops running ones
and ends CANCELLED. Each transition is stamped with the time it was due, not
when the ticker noticed, so timestamps are exact and ordered. All methods run
under the backend lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..kit import StartFailure
from .executor import Executor
from .resources import (
    CANCELLED,
    CANCELLING,
    DONE,
    EXITED_WITH_ERROR,
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    TASK_FINAL,
    TIMED_OUT,
    AttemptResult,
    Execution,
    Task,
)

SIGTERM_EXIT = 143


@dataclass
class Timings:
    job_ready_s: float = 0.0
    """CreateJob -> Ready (the create operation is done then)."""
    pending_s: float = 0.03
    """Execution created -> started (resources provisioned, image imported)."""
    retry_delay_s: float = 0.01
    cancel_s: float = 0.02
    """CANCELLING -> CANCELLED once no task runs."""
    stop_grace_s: float = 2.0
    """Execute mode: SIGTERM -> SIGKILL on cancel or task timeout (Cloud Run: 10 s)."""


@dataclass
class _Event:
    at: float
    apply: Callable[[float], None]


class Lifecycle:
    def __init__(self, timings: Timings, executor: Executor | None):
        self.timings = timings
        self._executor = executor

    # -- driven by the ticker and every request ----------------------------------------------

    def advance(self, ex: Execution, now: float) -> None:
        """Apply every transition due at ``now``."""
        if ex.phase == PENDING and now >= ex.created_at + self.timings.pending_s:
            self._start(ex, ex.created_at + self.timings.pending_s)
        if ex.phase in (RUNNING, CANCELLING):
            self._run_events(ex, now)
            self._maybe_finish(ex, now)

    def _start(self, ex: Execution, at: float) -> None:
        if ex.start_failure:
            for task in ex.tasks:
                task.state, task.completed_at = FAILED, at
                task.result = AttemptResult("UNKNOWN", ex.start_failure)
            self._finish(ex, FAILED, at)
            return
        ex.phase, ex.started_at, ex.sim_at = RUNNING, at, at
        for task in ex.tasks:
            task.not_before = at

    def _run_events(self, ex: Execution, now: float) -> None:
        while True:
            self._fill_slots(ex)
            event = self._next_event(ex)
            if event is None or event.at > now:
                return
            ex.sim_at = max(ex.sim_at, event.at)
            event.apply(ex.sim_at)

    def _fill_slots(self, ex: Execution) -> None:
        if ex.phase != RUNNING:
            return
        free = ex.parallelism - ex.count(RUNNING)
        for task in ex.tasks:
            if free <= 0:
                return
            if task.state == PENDING and task.not_before <= ex.sim_at:
                self._start_attempt(ex, task, ex.sim_at)
                free -= 1

    def _next_event(self, ex: Execution) -> _Event | None:
        events = []
        for task in ex.tasks:
            if task.state == RUNNING and task.started_at is not None:
                if self._executor is None:
                    end = task.started_at + task.run_s
                    events.append(_Event(end, lambda at, t=task: self.attempt_ended(ex, t, t.exit_code, at)))
                if not task.timed_out:
                    events.append(_Event(task.started_at + ex.timeout_s, lambda at, t=task: self._time_out(ex, t, at)))
            elif task.state == PENDING and ex.phase == RUNNING and ex.count(RUNNING) < ex.parallelism:
                events.append(_Event(task.not_before, lambda at: None))  # a retry becomes startable
        return min(events, key=lambda e: e.at, default=None)

    def _start_attempt(self, ex: Execution, task: Task, at: float) -> None:
        task.state, task.started_at, task.timed_out = RUNNING, at, False
        task.scheduled_at = task.scheduled_at or at
        if self._executor is None:
            return
        try:
            self._executor.start(ex, task)
        except StartFailure as exc:
            self._attempt_failed(ex, task, AttemptResult("UNKNOWN", str(exc)), at)

    def _time_out(self, ex: Execution, task: Task, at: float) -> None:
        task.timed_out = True
        if self._executor is None:
            self.attempt_ended(ex, task, None, at)
        else:
            self._executor.terminate(ex, task, self.timings.stop_grace_s)  # the exit ends the attempt

    # -- attempts end: process exits, simulated exits, timeouts --------------------------------

    def attempt_ended(self, ex: Execution, task: Task, exit_code: int | None, at: float) -> None:
        if task.state != RUNNING:
            return
        task.process = None
        if ex.phase == CANCELLING:
            task.state, task.completed_at = CANCELLED, at
            task.result = AttemptResult("CANCELLED", "The task was cancelled.", exit_code)
        elif task.timed_out:
            self._attempt_failed(ex, task, AttemptResult("DEADLINE_EXCEEDED", TIMED_OUT, exit_code), at)
        elif exit_code == 0:
            task.state, task.completed_at, task.result = SUCCEEDED, at, AttemptResult("OK", "", 0)
        else:
            self._attempt_failed(ex, task, AttemptResult("UNKNOWN", EXITED_WITH_ERROR, exit_code), at)

    def _attempt_failed(self, ex: Execution, task: Task, result: AttemptResult, at: float) -> None:
        task.result = result
        if task.retried < ex.max_retries and ex.phase == RUNNING:
            task.retried += 1
            task.state, task.not_before = PENDING, at + self.timings.retry_delay_s
            return
        task.state, task.completed_at = FAILED, at
        ex.failed_task = ex.failed_task or task

    # -- cancel and finish ---------------------------------------------------------------------

    def cancel(self, ex: Execution, at: float) -> None:
        """CancelExecution: pending tasks are cancelled now, running ones are stopped."""
        if ex.phase in (DONE, CANCELLING):
            return
        ex.phase, ex.cancel_at = CANCELLING, at
        ex.sim_at = max(ex.sim_at, at)
        for task in ex.tasks:
            if task.state == PENDING:
                task.state, task.completed_at = CANCELLED, at
            elif task.state == RUNNING and self._executor is None:
                self.attempt_ended(ex, task, SIGTERM_EXIT, at)
            elif task.state == RUNNING:
                self._executor.terminate(ex, task, self.timings.stop_grace_s)

    def stop_now(self, ex: Execution) -> None:
        """The execution is being deleted: its processes go at once."""
        if self._executor is not None:
            for task in ex.tasks:
                if task.state == RUNNING:
                    self._executor.terminate(ex, task, 0.0)

    def _maybe_finish(self, ex: Execution, now: float) -> None:
        if any(task.state not in TASK_FINAL for task in ex.tasks):
            return
        last = max(task.completed_at or 0.0 for task in ex.tasks)
        if ex.phase == CANCELLING:
            due = max(last, (ex.cancel_at or last) + self.timings.cancel_s)
            if now >= due:
                self._finish(ex, CANCELLED, due)
            return
        self._finish(ex, SUCCEEDED if all(t.state == SUCCEEDED for t in ex.tasks) else FAILED, last)

    @staticmethod
    def _finish(ex: Execution, outcome: str, at: float) -> None:
        ex.phase, ex.outcome, ex.completed_at = DONE, outcome, at
