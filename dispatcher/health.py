"""What the dispatcher knows about its own health: dependencies that are up or down, loops that tick.

A dependency (one workspace's Prefect API, the ledger) is *down* from its first failed
call until its next successful one. The transitions are logged once each ("unreachable",
"back after 54 s"); the calls in between are only counted, so an outage costs two log
lines, not one traceback per tick. Loops report each tick; readiness is "every
dependency up and every loop ticked successfully recently".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from dispatcher import metrics

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a failure: the exception class and, for HTTP, the status."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    name = type(exc).__name__
    return f"{name} (HTTP {status})" if status else name


class DependencyUnavailable(Exception):
    """A call failed because a dependency is down; already counted and logged by ``dependency``."""

    def __init__(self, message: str, dependency: Dependency) -> None:
        super().__init__(message)
        self.dependency = dependency


class Dependency:
    """One thing the dispatcher needs (``prefect`` of a workspace, ``ledger``), up or down."""

    def __init__(self, name: str, workspace: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.workspace = workspace
        self.up = True
        self.since = time.time()
        self._clock = clock
        self._down_at = 0.0  # on ``clock``: when the current outage began
        self.error = ""
        self.failures = 0  # consecutive
        self.label = f"workspace {workspace}: {name}" if workspace else name
        metrics.DEPENDENCY_UP.labels(workspace, name).set(1)

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        metrics.DEPENDENCY_FAILURES.labels(self.workspace, self.name).inc()
        self.error = describe_error(exc)
        if self.up:
            self.up, self.since, self._down_at = False, time.time(), self._clock()
            metrics.DEPENDENCY_UP.labels(self.workspace, self.name).set(0)
            log.warning("%s is unavailable (%s); retrying with backoff", self.label, self.error)

    def succeeded(self) -> None:
        if not self.up:
            down_for = time.time() - self.since
            log.warning("%s is back after %.0f s (%d failed calls)", self.label, down_for, self.failures)
            self.up, self.since, self.error = True, time.time(), ""
            metrics.DEPENDENCY_UP.labels(self.workspace, self.name).set(1)
        self.failures = 0

    def backoff_s(self, base_s: float, max_s: float = MAX_BACKOFF_S) -> float:
        """How long a loop waits after this dependency failed: as long as the outage has lasted so
        far (so the waits double), at least ``base_s``, at most ``max_s``. Not counted in failed
        calls: every loop shares the dependency, and a blip of one second can fail ten calls."""
        if self.up or self.failures == 0:
            return base_s
        return min(max_s, max(base_s, self._clock() - self._down_at))


class QuietErrors:
    """Unexpected errors while handling one run or one loop: counted always, logged with a
    traceback once per (subject, error class), so a run that fails the same way every tick
    costs one traceback, not thousands. Dependency outages are left to their Dependency."""

    def __init__(self, workspace: str, remember: int = 10_000) -> None:
        self.workspace = workspace
        self._seen: dict[str, str] = {}
        self._remember = remember

    def report(self, stage: str, subject: str, exc: BaseException) -> None:
        metrics.RUN_ERRORS.labels(self.workspace, stage).inc()
        if isinstance(exc, DependencyUnavailable):
            return
        signature = type(exc).__name__
        if self._seen.get(subject) == signature:
            log.debug("workspace %s: %s of %s failed again (%s)", self.workspace, stage, subject, signature)
            return
        if len(self._seen) >= self._remember:
            self._seen.pop(next(iter(self._seen)))
        self._seen[subject] = signature
        log.error("workspace %s: %s of %s failed; it is retried, repeats of this error are logged at DEBUG",
                  self.workspace, stage, subject, exc_info=exc)

    def cleared(self, subject: str) -> None:
        self._seen.pop(subject, None)


class LoopHealth:
    """When one loop last ticked, and whether that tick succeeded."""

    def __init__(self, name: str, interval_s: float, stale_after_s: float, workspace: str = "") -> None:
        self.name = name
        self.workspace = workspace
        # A loop is stale when it has not succeeded for three of its periods, and never sooner
        # than the configured floor (a long watch tick is work, not a hang).
        self.stale_after_s = max(3 * interval_s, stale_after_s)
        self.started = time.time()
        self.last_success: float | None = None
        self.last_attempt: float | None = None

    def ticked(self, ok: bool) -> None:
        now = time.time()
        self.last_attempt = now
        if ok:
            self.last_success = now
            if self.workspace:  # "is it heartbeating?" for Prometheus, which cannot read /readyz's body
                metrics.LOOP_LAST_SUCCESS.labels(self.workspace, self.name).set(now)

    def stale_since(self, now: float) -> float | None:
        """When this loop became stale, or None while it is fresh."""
        reference = self.last_success or self.started
        return reference + self.stale_after_s if now - reference > self.stale_after_s else None

    def alive(self, now: float) -> bool:
        """Liveness: the loop is still attempting ticks (failing ones count), not hung."""
        reference = self.last_attempt or self.started
        return now - reference <= self.stale_after_s * 2


class FailingCheck(BaseModel):
    """One readiness check that fails."""

    check: str = Field(description="prefect, ledger, or loop:<name>.")
    since: str = Field(description="UTC time the check started failing (ISO 8601).")
    error: str = Field(default="", description="Exception class (and HTTP status) of the last failure; never a secret.")


class WorkspaceHealth(BaseModel):
    """Readiness of one workspace."""

    ready: bool = Field(description="Every dependency up and every loop fresh.")
    failing: list[FailingCheck] = Field(default_factory=list, description="What fails, and since when.")


class HealthReport(BaseModel):
    """Body of /readyz and /healthz."""

    status: str = Field(description="'ready', 'starting' or 'not ready'.")
    workspaces: dict[str, WorkspaceHealth] = Field(default_factory=dict, description="Per workspace.")


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="seconds")


def workspace_health(dependencies: list[Dependency], loops: list[LoopHealth], now: float) -> WorkspaceHealth:
    failing = [FailingCheck(check=d.name, since=iso(d.since), error=d.error) for d in dependencies if not d.up]
    for loop in loops:
        stale = loop.stale_since(now)
        if stale is not None:
            failing.append(FailingCheck(check=f"loop:{loop.name}", since=iso(stale)))
    return WorkspaceHealth(ready=not failing, failing=failing)
