"""The one path from the dispatcher to a provider: deadline, retries and metrics, written once.

Every loop calls a provider through ``ProviderCalls``, never directly, so each operation
gets the configured deadline (a hung SDK call cannot hold a loop), transient errors are
retried with backoff (``retry.py``), and calls, errors, retries and latency are counted by
provider and operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from prefect.workers.base import BaseJobConfiguration

from dispatcher import metrics
from dispatcher.config import LoopConfig
from dispatcher.loops.retry import call_with_retries
from providers.base import (
    InfraStatus,
    Provider,
    ResourceRequest,
    SettingsFinding,
    RunRef,
    Submission,
    SubmitRequest,
    WatchBatch,
)
from providers.errors import ProviderError, TransientProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)
#: Log tails are a courtesy in crash messages: never wait long for them.
LOG_TAIL_DEADLINE_S = 10.0


class ProviderCalls:
    """A provider as the loops see it: the same operations, with deadlines, retries and metrics."""

    def __init__(self, provider: Provider, loop: LoopConfig) -> None:
        self.provider = provider
        self.loop = loop

    @property
    def kind(self) -> str:
        return self.provider.kind

    # -- pure: no I/O, nothing to retry or time --------------------------------------------------

    @property
    def job_configuration(self) -> type[BaseJobConfiguration]:
        return self.provider.job_configuration

    def validate(self, configuration: BaseJobConfiguration) -> None:
        self.provider.validate(configuration)

    def resources(self, configuration: BaseJobConfiguration) -> ResourceRequest:
        return self.provider.resources(configuration)

    def submit_backlog_s(self) -> float:
        return self.provider.submit_backlog_s()

    def start_timeout_s(self, configuration: BaseJobConfiguration) -> float | None:
        return self.provider.start_timeout_s(configuration)

    def watch_batch(self, run: RunRef) -> WatchBatch | None:
        return self.provider.watch_batch(run)

    # -- cloud calls ------------------------------------------------------------------------------

    async def submit(self, request: SubmitRequest) -> Submission:
        """Throttling and capacity errors slow the submission down until ``submit_deadline_s``."""
        return await self._call("submit", lambda: self.provider.submit(request), self.loop.submit_deadline_s)

    async def find(self, request: SubmitRequest) -> Submission | None:
        return await self._call("find", lambda: self.provider.find(request), self.loop.provider_call_deadline_s)

    async def status_many(self, runs: Sequence[RunRef]) -> list[InfraStatus]:
        # Retried within the tick only: the next tick is the next chance anyway.
        return await self._call("status_many", lambda: self.provider.status_many(runs), self.loop.watch_interval_s * 2)

    async def stop(self, run: RunRef, reason: str) -> None:
        await self._call("stop", lambda: self.provider.stop(run, reason), self.loop.provider_call_deadline_s)

    async def last_log_lines(self, run: RunRef, limit: int) -> list[str]:
        """Best effort: [] when the cloud keeps no log or does not answer in time."""
        try:
            return await self._call("last_log_lines", lambda: self.provider.last_log_lines(run, limit), LOG_TAIL_DEADLINE_S)
        except ProviderError:
            return []

    async def release(self, run: RunRef) -> None:
        """Best effort, no retries here: a provider keeps and retries what it could not clean up yet."""
        try:
            await self._call("release", lambda: self.provider.release(run), self.loop.provider_call_deadline_s)
        except ProviderError as exc:
            log.info("%s release of %s failed: %s", self.provider.kind, run.infrastructure_id, exc)

    async def check_settings(self) -> list[SettingsFinding]:
        return await self._call("check_settings", self.provider.check_settings, self.loop.provider_call_deadline_s)

    async def housekeeping(self) -> None:
        await self._call("housekeeping", self.provider.housekeeping, self.loop.provider_call_deadline_s)

    async def _call(self, operation: str, call: Callable[[], Awaitable[T]], deadline_s: float) -> T:
        kind = self.provider.kind
        metrics.PROVIDER_CALLS.labels(kind, operation).inc()
        started = time.perf_counter()
        last_error: list[ProviderError] = []

        async def attempt() -> T:
            try:
                return await call()
            except ProviderError as exc:
                last_error[:] = [exc]
                raise

        try:
            return await asyncio.wait_for(call_with_retries(kind, operation, attempt, deadline_s=deadline_s), deadline_s)
        except asyncio.TimeoutError:
            # A hung call, or a retry still sleeping: the last error says more than "too slow".
            error = last_error[0] if last_error else TransientProviderError(
                f"{kind} {operation} did not finish within {deadline_s:g} s", code="DeadlineExceeded")
            metrics.PROVIDER_ERRORS.labels(kind, operation, type(error).__name__).inc()
            raise error from None
        except ProviderError as exc:
            metrics.PROVIDER_ERRORS.labels(kind, operation, type(exc).__name__).inc()
            raise
        finally:
            metrics.PROVIDER_CALL_SECONDS.labels(kind, operation).observe(time.perf_counter() - started)

    async def aclose(self) -> None:
        await self.provider.aclose()
