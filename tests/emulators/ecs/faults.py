"""Fault injection knobs and the seeded dice that apply them.

Every knob is off by default. ``Faults`` is a plain mutable dataclass so a
test can change it while the emulator runs; counters (``capacity_failures``
and friends) count down on the object itself, so a test can read how many
are left.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Faults:
    throttle_rate: float = 0.0
    """Fraction of calls answered 400 ``ThrottlingException`` "Rate exceeded" (EC2: 503 ``RequestLimitExceeded``)."""
    server_error_rate: float = 0.0
    """Fraction of calls answered 500 ``ServerException`` (EC2: ``InternalError``)."""
    latency_s: float = 0.0
    """Sleep before answering every call."""
    latency_jitter_s: float = 0.0
    """Extra uniform random sleep in [0, jitter] on top of ``latency_s``."""
    capacity_failures: int = 0
    """The next N RunTask calls place no task: HTTP 200 with ``failures``."""
    capacity_failure_rate: float = 0.0
    """Fraction of RunTask calls that fail placement that way."""
    capacity_failure_reason: str = "RESOURCE:MEMORY"
    start_failures: int = 0
    """The next N launched tasks stop in PENDING with stopCode TaskFailedToStart."""
    start_failure_reason: str = (
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): "
        "failed to resolve ref docker.io/library/emulated:latest: not found"
    )
    spot_interruptions: int = 0
    """The next N tasks to reach RUNNING are stopped with stopCode SpotInterruption."""
    spot_after_s: float = 0.05
    """How long an interrupted task runs before the interruption."""
    spot_only: bool = False
    """If True, only FARGATE_SPOT tasks are interrupted (what real ECS does)."""
    lost_responses: int = 0
    """The next N calls are carried out, then answered 500 as if the response was lost."""
    ops: set[str] | None = None
    """If set, throttling, 5xx and lost responses only hit these operation names."""
    seed: int | None = 0
    """Seed of the RNG behind the rates, so a test run is repeatable."""


class FaultDice:
    """Decides, call by call, which faults fire (thread-safe, seeded)."""

    def __init__(self, faults: Faults):
        self._lock = threading.Lock()
        self.faults = faults

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def _targets(self, op: str) -> bool:
        ops = self._faults.ops
        return ops is None or op in ops

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def latency(self) -> float:
        with self._lock:
            f = self._faults
            jitter = self._rng.uniform(0, f.latency_jitter_s) if f.latency_jitter_s > 0 else 0.0
            return max(0.0, f.latency_s + jitter)

    def request_fault(self, op: str) -> str | None:
        """Return "throttle", "server_error" or None for this call."""
        with self._lock:
            if not self._targets(op):
                return None
            if self._roll(self._faults.throttle_rate):
                return "throttle"
            if self._roll(self._faults.server_error_rate):
                return "server_error"
            return None

    def apply(self, op: str, throttled: Callable[[], Exception], server_error: Callable[[], Exception]) -> None:
        """Sleep the injected latency, then raise the protocol's own throttling or 5xx error if rolled."""
        delay = self.latency()
        if delay:
            time.sleep(delay)
        fault = self.request_fault(op)
        if fault == "throttle":
            raise throttled()
        if fault == "server_error":
            raise server_error()

    def take(self, counter: str, op: str | None = None) -> bool:
        """Consume one unit of a countdown knob such as ``start_failures``."""
        with self._lock:
            if op is not None and not self._targets(op):
                return False
            left = getattr(self._faults, counter)
            if left <= 0:
                return False
            setattr(self._faults, counter, left - 1)
            return True

    def capacity_failure(self) -> bool:
        if self.take("capacity_failures"):
            return True
        with self._lock:
            return self._roll(self._faults.capacity_failure_rate)

    def spot_interruption(self, capacity_provider: str | None) -> bool:
        if self._faults.spot_only and capacity_provider != "FARGATE_SPOT":
            return False
        return self.take("spot_interruptions")

    def choice(self, weights: list[float]) -> int:
        with self._lock:
            return self._rng.choices(range(len(weights)), weights=weights)[0]
