"""Budget decisions (pure): admission in reject and hold mode, statuses, thresholds, what stops running runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatcher.config.usage import BudgetMode
from dispatcher.ledger.metering import elapsed_minutes
from dispatcher.policy.budget import (
    BudgetStatus,
    BudgetUse,
    admission_decision,
    budget_status,
    crossed_thresholds,
    exhausted,
    stop_message,
)


def use(used: int, budget: int = 100, pool: str | None = None) -> BudgetUse:
    return BudgetUse(workspace="acme", pool=pool, month="2026-11", budget_minutes=budget, used_minutes=used)


def test_a_run_is_admitted_while_its_first_minute_fits_under_every_budget():
    assert admission_decision([], BudgetMode.REJECT).allowed
    assert admission_decision([use(99), use(0, 10, "p")], BudgetMode.REJECT).allowed
    refused = admission_decision([use(50), use(10, 10, "p")], BudgetMode.REJECT)
    assert (refused.allowed, refused.hold, refused.state_name) == (False, False, "ComputeLimitReached")
    assert refused.message == "Run not started: pool 'p' of workspace 'acme' used 10 of its 10 compute minutes in 2026-11."


def test_hold_mode_names_the_scheduled_state_for_the_reason():
    held = admission_decision([use(100)], BudgetMode.HOLD)
    assert (held.allowed, held.hold, held.state_name) == (False, True, "AwaitingComputeBudget")
    assert held.message.startswith("Waiting for compute budget: workspace 'acme' used 100 of its 100")
    assert "starts by itself when the month rolls over or the budget is raised" in held.message


@pytest.mark.parametrize(("used", "status"), [(0, BudgetStatus.OK), (79, BudgetStatus.OK), (80, BudgetStatus.WARNING),
                                              (99, BudgetStatus.WARNING), (100, BudgetStatus.EXCEEDED),
                                              (250, BudgetStatus.EXCEEDED)])
def test_status_is_a_warning_from_80_percent_and_exceeded_at_100(used, status):
    assert budget_status(used, 100) == status
    assert budget_status(used, None) == BudgetStatus.OK


def test_thresholds_crossed_and_the_budget_that_stops_running_runs():
    assert crossed_thresholds(use(79), [80, 100]) == []
    assert crossed_thresholds(use(80), [80, 100]) == [80]
    assert crossed_thresholds(use(130), [50, 80, 100, 150]) == [50, 80, 100]
    assert exhausted([use(99), use(5, 10, "p")]) is None
    over = exhausted([use(99), use(10, 10, "p")])
    assert over is not None and over.pool == "p"
    assert "budget.running_runs is 'stop'" in stop_message(over)


def test_elapsed_minutes_of_a_run_in_flight_count_every_started_minute_and_at_least_one():
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert elapsed_minutes(start, start) == 1
    assert elapsed_minutes(start, start + timedelta(seconds=60)) == 1
    assert elapsed_minutes(start, start + timedelta(seconds=61)) == 2
    assert elapsed_minutes(start, start - timedelta(seconds=5)) == 1  # clocks apart: never negative
