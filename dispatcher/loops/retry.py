"""Retries, written once: every provider call the dispatcher makes goes through here.

Transient provider errors (throttling, capacity, 5xx, timeouts) are retried with
exponential backoff and full jitter until a deadline; permanent errors are not
retried. Throttling therefore slows submission down instead of failing runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_random_exponential,
)

from dispatcher import metrics
from providers.errors import ProviderError

T = TypeVar("T")
log = logging.getLogger(__name__)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def _log_retry(provider: str, operation: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        metrics.PROVIDER_RETRIES.labels(provider=provider, operation=operation, error=type(exc).__name__).inc()
        log.info(
            "%s %s failed (%s), attempt %d, retrying in %.1fs",
            provider, operation, exc, state.attempt_number, state.upcoming_sleep,
        )

    return before_sleep


async def call_with_retries(
    provider: str,
    operation: str,
    call: Callable[[], Awaitable[T]],
    *,
    deadline_s: float,
    initial_wait_s: float = 0.5,
    max_wait_s: float = 30.0,
) -> T:
    """Run ``call`` until it succeeds, raises a permanent error, or ``deadline_s`` passes.

    The last transient error is re-raised when the deadline is reached.
    """
    retrying = AsyncRetrying(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_delay(deadline_s),
        wait=wait_random_exponential(multiplier=initial_wait_s, max=max_wait_s),
        before_sleep=_log_retry(provider, operation),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or raises")
