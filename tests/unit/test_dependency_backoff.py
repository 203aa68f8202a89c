"""A loop's wait after a dependency failed grows with how long the dependency has been down,
not with how many calls failed: every loop of every pool shares the dependency, so ten calls
can fail within one second of a blip. (Found by tests/chaos/test_ledger_cut.py: after a
3-second ledger cut, claims waited ~50 s to be re-driven, every loop having backed off 30 s.)
"""

from __future__ import annotations

import pytest

from dispatcher.health import Dependency


@pytest.fixture
def clock():
    return [1000.0]


def _ledger(clock) -> Dependency:
    return Dependency("ledger", "", clock=lambda: clock[0])


def test_many_failed_calls_in_a_short_outage_do_not_mean_a_long_wait(clock):
    ledger = _ledger(clock)
    for _ in range(10):  # the poll, watch, recovery, membership... loops all failed at once
        ledger.failed(ConnectionError("refused"))
    clock[0] += 1.0
    assert ledger.backoff_s(5.0, 30.0) == 5.0  # the loop's own interval, not 30 s
    assert ledger.backoff_s(0.5, 30.0) == 1.0


def test_the_wait_grows_with_the_outage_up_to_the_cap(clock):
    ledger = _ledger(clock)
    ledger.failed(ConnectionError("refused"))
    waits = []
    for _ in range(8):
        wait = ledger.backoff_s(1.0, 30.0)
        waits.append(wait)
        clock[0] += wait
        ledger.failed(ConnectionError("refused"))
    assert waits == [1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]  # doubling, as each wait spans the outage so far


def test_up_again_means_the_loop_interval(clock):
    ledger = _ledger(clock)
    ledger.failed(ConnectionError("refused"))
    clock[0] += 100
    ledger.succeeded()
    assert ledger.backoff_s(2.0, 30.0) == 2.0
