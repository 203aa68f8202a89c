"""Fault knobs every cloud shares, and the seeded dice that apply them.

Every knob is off by default. ``Faults`` is a plain mutable dataclass so a
test can change it while the emulator runs; countdown knobs
(``lost_responses``, ``accept_then_fail``, a cloud's own ``start_failures``...)
count down on the object itself, so a test can read how many are left.
A cloud adds its own knobs by subclassing ``Faults`` (and ``FaultDice`` for
the rules that use them).

The dice speak in *abstract* faults (``THROTTLE``, ``SERVER_ERROR``,
``LOST_RESPONSE``, ``ACCEPT_THEN_FAIL``); a protocol's ``WireErrors`` says how
its cloud answers each one (ECS: 400 ``ThrottlingException``; Cloud Run: 429
``RESOURCE_EXHAUSTED``; ARM: 429 with ``Retry-After``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

THROTTLE = "throttle"
SERVER_ERROR = "server_error"
LOST_RESPONSE = "lost_response"
ACCEPT_THEN_FAIL = "accept_then_fail"


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``burst`` calls at once, refilled at ``per_s`` calls per second."""

    per_s: float
    burst: float = 1.0


@dataclass(kw_only=True)
class Faults:
    throttle_rate: float = 0.0
    """Fraction of calls answered with the protocol's throttling error."""
    server_error_rate: float = 0.0
    """Fraction of calls answered with the protocol's 5xx error (and not carried out)."""
    latency_s: float = 0.0
    """Sleep before answering every call (every operation: ``ops`` does not filter it)."""
    latency_jitter_s: float = 0.0
    """Extra uniform random sleep in [0, jitter] on top of ``latency_s``."""
    rate_limit: RateLimit | None = None
    """Each operation gets its own token bucket of this size; a call finding it empty is throttled."""
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    """Per-operation buckets, overriding ``rate_limit`` (where documented per-API rates go)."""
    rate_groups: dict[str, str] = field(default_factory=dict)
    """Operations sharing one bucket: ``{"GetJob": "Read requests", ...}``; the bucket is
    ``rate_limits[group]``. An operation not listed has its own bucket, ``rate_limits[op]``."""
    lost_responses: int = 0
    """The next N calls are carried out, then answered 5xx as if the response was lost."""
    accept_then_fail: int = 0
    """The next N *mutating* calls (create, run, delete...) are carried out, then answered with the
    protocol's accept-then-fail error (Cloud Run and ARM: 503). Reads do not use it up."""
    ops: set[str] | None = None
    """If set, throttling, rate limits, 5xx, lost responses and accept-then-fail only hit these operations."""
    seed: int | None = 0
    """Seed of the RNG behind the rates, so a test run is repeatable."""


@dataclass(frozen=True)
class WireErrors:
    """How one protocol answers each abstract fault: factories of the exception its ``handle`` turns
    into an error response. Lost responses and accept-then-fail default to the 5xx error."""

    throttle: Callable[[], Exception]
    server_error: Callable[[], Exception]
    lost_response: Callable[[], Exception] | None = None
    accept_then_fail: Callable[[], Exception] | None = None
    rate_limited: Callable[[str], Exception] | None = None
    """The error for a call refused by bucket ``key`` of ``rate_limits`` (a named quota, such as Cloud Run's
    "Read requests"); None: the ``throttle`` error."""

    def error_for(self, fault: str) -> Exception:
        factory = getattr(self, fault)
        return (factory or self.server_error)()


class _TokenBucket:
    def __init__(self, limit: RateLimit, now: float):
        self.limit, self.tokens, self.at = limit, float(limit.burst), now

    def peek(self, now: float) -> float:
        """Refill up to ``now`` and return the tokens held, taking none."""
        self.tokens = min(self.limit.burst, self.tokens + (now - self.at) * self.limit.per_s)
        self.at = now
        return self.tokens

    def take(self, now: float, cost: float = 1) -> bool:
        if self.peek(now) < cost:
            return False  # a refused call takes no token, as on the clouds' front ends
        self.tokens -= cost
        return True


class FaultDice:
    """Decides, call by call, which faults fire (thread-safe, seeded).

    A protocol calls ``before_call`` once it knows the operation (sleeps the
    latency, may raise throttling or a 5xx: the call is *not* carried out)
    and ``after_call`` once the operation is done (may raise a lost response
    or accept-then-fail: the call *was* carried out). ``clock`` and ``sleep``
    are injectable so a scaled-time mode can drive them.
    """

    def __init__(self, faults: Faults, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep
        self.faults = faults

    @property
    def faults(self) -> Faults:
        return self._faults

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Drive the buckets by ``clock`` from now on (realistic mode's injectable clock); refills them."""
        with self._lock:
            self._clock = clock
            self._buckets = {}

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self._buckets: dict[str, _TokenBucket] = {}

    def targets(self, op: str) -> bool:
        ops = self._faults.ops
        return ops is None or op in ops

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``, from the seeded RNG."""
        with self._lock:
            return self._roll(rate)

    def choice(self, weights: list[float]) -> int:
        """A seeded weighted pick: the index into ``weights``."""
        with self._lock:
            return self._rng.choices(range(len(weights)), weights=weights)[0]

    def latency(self) -> float:
        with self._lock:
            f = self._faults
            jitter = self._rng.uniform(0, f.latency_jitter_s) if f.latency_jitter_s > 0 else 0.0
            return max(0.0, f.latency_s + jitter)

    def admit(self, key: str, limit: RateLimit | None, cost: float = 1) -> bool:
        """Take ``cost`` tokens from the bucket named ``key`` (True if it had them, or no ``limit``).

        Operations use their own name as ``key``; a backend can keep other
        buckets, such as a per-account task launch rate (``"launch:FARGATE"``,
        ``cost`` = the tasks one RunTask launches). A refused call takes nothing.
        """
        with self._lock:
            return self._admit(key, limit, cost)

    def admit_all(self, limits: dict[str, RateLimit]) -> str | None:
        """Take one token from every bucket in ``limits``, or none at all.

        Returns None if every bucket had a token, else the key of the first
        empty one (and no bucket is charged): a quota made of several windows,
        such as "100 per 5 minutes and 300 per hour", refuses a call whole.
        """
        with self._lock:
            now = self._clock()
            buckets = {key: self._bucket(key, limit, now) for key, limit in limits.items()}
            for key, bucket in buckets.items():
                if bucket.peek(now) < 1:
                    return key
            for bucket in buckets.values():
                bucket.take(now)
            return None

    def tokens(self, key: str, limit: RateLimit) -> float:
        """Tokens left in bucket ``key`` now (a full bucket if it was never used): for headers
        such as ARM's ``x-ms-ratelimit-remaining-subscription-reads``."""
        with self._lock:
            now = self._clock()
            return self._bucket(key, limit, now).peek(now)

    def wait_s(self, key: str, limit: RateLimit) -> float:
        """Seconds until bucket ``key`` holds a whole token again (0 if it does): a Retry-After."""
        with self._lock:
            now = self._clock()
            missing = 1 - self._bucket(key, limit, now).peek(now)
            return max(0.0, missing / limit.per_s) if limit.per_s > 0 else float("inf")

    def _bucket(self, key: str, limit: RateLimit, now: float) -> _TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None or bucket.limit != limit:  # first call, or the test changed the knob
            bucket = self._buckets[key] = _TokenBucket(limit, now)
        return bucket

    def _admit(self, key: str, limit: RateLimit | None, cost: float = 1) -> bool:
        if limit is None:
            return True
        now = self._clock()
        return self._bucket(key, limit, now).take(now, cost)

    def request_fault(self, op: str) -> str | None:
        """``THROTTLE``, ``SERVER_ERROR`` or None for this call (no sleeping)."""
        return self._request_fault(op)[0]

    def _request_fault(self, op: str) -> tuple[str | None, str | None]:
        """The fault and, for a call an empty bucket refused, that bucket's key."""
        with self._lock:
            if not self.targets(op):
                return None, None
            key = self._faults.rate_groups.get(op, op)
            limit = self._faults.rate_limits.get(key, self._faults.rate_limit)
            if not self._admit(key, limit):
                return THROTTLE, key
            if self._roll(self._faults.throttle_rate):
                return THROTTLE, None
            if self._roll(self._faults.server_error_rate):
                return SERVER_ERROR, None
            return None, None

    def response_fault(self, op: str, *, mutating: bool = False) -> str | None:
        """``LOST_RESPONSE``, ``ACCEPT_THEN_FAIL`` or None for a call already carried out."""
        if self.take("lost_responses", op):
            return LOST_RESPONSE
        if mutating and self.take("accept_then_fail", op):
            return ACCEPT_THEN_FAIL
        return None

    def before_call(self, op: str, wire: WireErrors) -> None:
        """Sleep the injected latency, then raise the protocol's throttling or 5xx error if rolled."""
        delay = self.latency()
        if delay:
            self._sleep(delay)
        fault, bucket = self._request_fault(op)
        if bucket is not None and wire.rate_limited is not None:
            raise wire.rate_limited(bucket)
        if fault is not None:
            raise wire.error_for(fault)

    def after_call(self, op: str, wire: WireErrors, *, mutating: bool = False) -> None:
        """Raise the protocol's lost-response or accept-then-fail error if one is due."""
        fault = self.response_fault(op, mutating=mutating)
        if fault is not None:
            raise wire.error_for(fault)

    def take(self, counter: str, op: str | None = None) -> bool:
        """Consume one unit of the countdown knob ``counter`` (only for targeted ``op``, if given)."""
        with self._lock:
            if op is not None and not self.targets(op):
                return False
            left = getattr(self._faults, counter)
            if left <= 0:
                return False
            setattr(self._faults, counter, left - 1)
            return True
