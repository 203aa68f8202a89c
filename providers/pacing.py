"""Adaptive client-side rate limiting, written once for every provider whose SDK has none.

botocore has an adaptive retry mode for AWS; google-cloud-run and azure-mgmt do not. A
provider keeps one ``AdaptivePacer`` per quota it shares with the cloud (say, Cloud Run run
requests per (project, region), ACI creates per subscription) and calls ``acquire()``
before each call of that kind, ``throttled()`` when the cloud answered 429 (with its
``Retry-After`` if any), ``succeeded()`` otherwise.

The rate follows the cloud's answers (AIMD, as TCP and botocore's adaptive mode do): it
grows slowly while calls succeed and halves on each throttle, never below ``min_rate`` and
never above ``max_rate``; a ``Retry-After`` pauses everything until it has passed. So a
storm of 429s slows submissions down instead of failing runs, and ``backlog_s()`` tells
the dispatcher how long a new call would wait, so it does not claim runs it cannot start
soon. Pure timing and state: no I/O, a clock that tests can drive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field


class PacerSettings(BaseModel):
    """How one quota is paced (calls per second)."""

    initial_rate: float = Field(gt=0, description="Calls per second before the cloud has said anything.")
    min_rate: float = Field(gt=0, description="Never slower than this, however often the cloud throttles.")
    max_rate: float = Field(gt=0, description="Never faster than this (a documented quota, or a safe ceiling).")
    burst: float = Field(default=1.0, ge=1, description="Calls that may go at once after a quiet period.")
    increase_per_s: float = Field(default=0.05, ge=0, description="How much the rate grows per second of success.")
    decrease_factor: float = Field(default=0.5, gt=0, lt=1, description="Rate multiplier on each throttle.")
    decrease_cooldown_s: float = Field(
        default=0.0, ge=0,
        description="Throttles within this many seconds of the last decrease count as one: calls already in flight "
        "at the old rate bounce together (TCP decreases once per round trip). 0: every throttle decreases.",
    )


class AdaptivePacer:
    """A token bucket whose rate adapts to the cloud's throttling. Safe for one asyncio loop."""

    def __init__(self, settings: PacerSettings, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.rate = min(max(settings.initial_rate, settings.min_rate), settings.max_rate)
        self._clock, self._sleep = clock, sleep
        self._tokens = settings.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._waiting = 0
        self._last_success = clock()
        self._last_decrease = float("-inf")

    def _refill(self, now: float) -> None:
        self._tokens = min(self.settings.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_s(self) -> float:
        """How long the next call would wait if it asked now (0: it may go)."""
        now = self._clock()
        self._refill(now)
        pause = max(0.0, self._paused_until - now)
        shortfall = max(0.0, 1.0 - self._tokens) / self.rate
        return max(pause, shortfall)

    def backlog_s(self, ahead: int = 0) -> float:
        """How long a call asking now would wait behind those already waiting (and ``ahead`` more callers
        on their way here, e.g. submissions still doing their look-ups), burst tokens counted."""
        now = self._clock()
        self._refill(now)
        pause = max(0.0, self._paused_until - now)
        shortfall = max(0.0, self._waiting + ahead + 1.0 - self._tokens) / self.rate
        return max(pause, shortfall)

    async def acquire(self) -> None:
        """Wait for this call's turn."""
        self._waiting += 1
        try:
            while (delay := self.wait_s()) > 0:
                await self._sleep(delay)
            self._tokens -= 1.0
        finally:
            self._waiting -= 1

    def throttled(self, retry_after_s: float | None = None) -> None:
        """The cloud said "too many": slow down, and pause for its Retry-After."""
        now = self._clock()
        self._refill(now)
        if now - self._last_decrease >= self.settings.decrease_cooldown_s:
            self.rate = max(self.settings.min_rate, self.rate * self.settings.decrease_factor)
            self._last_decrease = now
        self._tokens = min(self._tokens, 0.0)
        if retry_after_s:
            self._paused_until = max(self._paused_until, now + retry_after_s)

    def pause(self, retry_after_s: float) -> None:
        """The cloud said "wait this long" for a limit that is not this quota's (a shared front-end bucket):
        honour the wait, keep the rate and what is left of the burst."""
        now = self._clock()
        self._paused_until = max(self._paused_until, now + retry_after_s)

    def succeeded(self) -> None:
        """A call went through: grow the rate with the time that passed since the last growth."""
        now = self._clock()
        self._refill(now)
        grown = self.rate + (now - self._last_success) * self.settings.increase_per_s
        self.rate = min(self.settings.max_rate, grown)
        self._last_success = now


class Pacers:
    """One pacer per quota key (e.g. ``("run", project, region)``), created on first use."""

    def __init__(self, settings: PacerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._pacers: dict[tuple[str, ...], AdaptivePacer] = {}

    def __call__(self, *key: str) -> AdaptivePacer:
        if key not in self._pacers:
            self._pacers[key] = AdaptivePacer(self.settings, clock=self._clock)
        return self._pacers[key]

    def backlog_s(self) -> float:
        """The longest wait of any quota: what a new submission may face."""
        return max((pacer.backlog_s() for pacer in self._pacers.values()), default=0.0)
