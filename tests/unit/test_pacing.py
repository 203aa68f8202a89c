"""Adaptive client-side pacing (AIMD over a token bucket) on a clock the test drives."""

from __future__ import annotations

import pytest

from providers.pacing import AdaptivePacer, Pacers, PacerSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def pacer(**settings) -> tuple[AdaptivePacer, Clock]:
    clock = Clock()
    values = {"initial_rate": 2.0, "min_rate": 0.1, "max_rate": 10.0, **settings}
    return AdaptivePacer(PacerSettings(**values), clock=clock, sleep=clock.sleep), clock


async def test_calls_are_spaced_at_the_rate_after_the_burst():
    p, clock = pacer(burst=2)
    start = clock.now
    for _ in range(6):
        await p.acquire()
    assert clock.now - start == pytest.approx(2.0)  # 2 at once, then 4 more at 2/s


async def test_a_throttle_halves_the_rate_and_retry_after_pauses_everything():
    p, clock = pacer()
    p.throttled(retry_after_s=7)
    assert p.rate == pytest.approx(1.0)
    assert p.wait_s() == pytest.approx(7)
    start = clock.now
    await p.acquire()
    assert clock.now - start == pytest.approx(7)
    p.throttled()
    p.throttled()
    assert p.rate == pytest.approx(0.25)
    for _ in range(10):
        p.throttled()
    assert p.rate == pytest.approx(0.1)  # never below min_rate


async def test_success_grows_the_rate_slowly_up_to_the_ceiling():
    p, clock = pacer(increase_per_s=0.5)
    clock.now += 4
    p.succeeded()
    assert p.rate == pytest.approx(4.0)
    clock.now += 100
    p.succeeded()
    assert p.rate == pytest.approx(10.0)


async def test_backlog_counts_those_already_waiting():
    import asyncio

    p, clock = pacer(initial_rate=1.0)
    await p.acquire()  # the burst token
    real_sleep = asyncio.Event()

    async def never(_: float) -> None:
        await real_sleep.wait()

    p._sleep = never  # the waiters stay queued
    waiters = [asyncio.ensure_future(p.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert p.backlog_s() == pytest.approx(1.0 + 3.0)
    for waiter in waiters:
        waiter.cancel()


def test_one_pacer_per_quota_key_and_the_worst_backlog():
    pacers = Pacers(PacerSettings(initial_rate=1, min_rate=0.1, max_rate=5))
    assert pacers("run", "p", "us") is pacers("run", "p", "us")
    assert pacers("run", "p", "eu") is not pacers("run", "p", "us")
    pacers("run", "p", "eu").throttled(retry_after_s=30)
    assert 29 < pacers.backlog_s() <= 30


def test_pause_waits_without_slowing_down():
    p, clock = pacer(initial_rate=2.0, burst=5)
    p.pause(10)
    assert p.wait_s() == pytest.approx(10) and p.rate == pytest.approx(2.0)
    clock.now += 10
    assert p.wait_s() == 0  # the burst is still there


async def test_throttles_in_one_cooldown_window_decrease_once():
    p, clock = pacer(initial_rate=8.0, decrease_cooldown_s=1.0)
    for _ in range(5):  # calls in flight at the old rate bounce together
        p.throttled()
    assert p.rate == pytest.approx(4.0)
    clock.now += 1.0
    p.throttled()
    assert p.rate == pytest.approx(2.0)


def test_cloud_run_pacing_at_a_known_quota_is_the_quota() -> None:
    from providers.cloud_run.config import CloudRunSettings
    from providers.cloud_run.provider import run_pacing

    known = run_pacing(CloudRunSettings(run_quota_per_min=180))
    assert known.initial_rate == known.max_rate == pytest.approx(3.0)
    assert known.burst == 10  # never more at once than run_burst
    adaptive = run_pacing(CloudRunSettings())
    assert adaptive.initial_rate == 1.0 and adaptive.max_rate == 20.0
