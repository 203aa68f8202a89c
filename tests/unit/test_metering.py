"""Billing rules: minute rounding and month attribution."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dispatcher.ledger.metering import billable_minutes, compute_seconds, usage_month

UTC = timezone.utc
START = datetime(2026, 5, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("duration", "minutes"),
    [
        (timedelta(0), 0),
        (timedelta(microseconds=1), 1),
        (timedelta(seconds=1), 1),
        (timedelta(seconds=59, microseconds=999_999), 1),
        (timedelta(seconds=60), 1),
        (timedelta(seconds=60, milliseconds=1), 2),
        (timedelta(seconds=60, microseconds=1), 2),
        (timedelta(minutes=59, seconds=59, milliseconds=900), 60),
        (timedelta(hours=1), 60),
        (timedelta(hours=1, seconds=1), 61),
        (timedelta(hours=5, minutes=30), 330),
        (timedelta(days=2, hours=3), 3060),
    ],
)
def test_billable_minutes_rounds_up_to_whole_minutes(duration: timedelta, minutes: int) -> None:
    assert billable_minutes(START, START + duration) == minutes


def test_billable_minutes_uses_instants_not_wall_clock() -> None:
    started = datetime(2026, 5, 10, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC
    stopped = datetime(2026, 5, 10, 12, 1, 30, tzinfo=UTC)
    assert billable_minutes(started, stopped) == 2
    assert compute_seconds(started, stopped) == 90.0


def test_negative_duration_is_clock_skew_error() -> None:
    with pytest.raises(ValueError, match="before started_at"):
        billable_minutes(START, START - timedelta(microseconds=1))


@pytest.mark.parametrize(
    ("started", "stopped"),
    [
        (START.replace(tzinfo=None), START),
        (START, START.replace(tzinfo=None)),
        (START.replace(tzinfo=None), START.replace(tzinfo=None)),
    ],
)
def test_naive_datetimes_are_rejected(started: datetime, stopped: datetime) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        billable_minutes(started, stopped)


def test_usage_month_of_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        usage_month(datetime(2026, 3, 1))


def test_compute_seconds_is_exact() -> None:
    assert compute_seconds(START, START + timedelta(seconds=61, milliseconds=250)) == 61.25


@pytest.mark.parametrize(
    ("stopped", "month"),
    [
        (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "2026-01"),
        (datetime(2026, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC), "2026-01"),
        (datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "2026-12"),
        (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), "2027-01"),
        (datetime(999, 7, 4, tzinfo=UTC), "0999-07"),
    ],
)
def test_usage_month_formats_utc_month(stopped: datetime, month: str) -> None:
    assert usage_month(stopped) == month


def test_run_crossing_month_end_goes_to_stop_month() -> None:
    started = datetime(2026, 1, 31, 23, 50, tzinfo=UTC)
    stopped = datetime(2026, 2, 1, 0, 10, 0, 1, tzinfo=UTC)
    assert billable_minutes(started, stopped) == 21
    assert usage_month(stopped) == "2026-02"


def test_non_utc_offset_is_converted_before_taking_the_month() -> None:
    # 00:30 on 1 March at UTC+2 is 22:30 on 28 February in UTC.
    stopped = datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert usage_month(stopped) == "2026-02"


def test_negative_offset_can_move_into_next_month() -> None:
    # 20:00 on 31 May at UTC-5 is 01:00 on 1 June in UTC.
    stopped = datetime(2026, 5, 31, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert usage_month(stopped) == "2026-06"


def test_leap_day_is_february() -> None:
    leap_day = datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert usage_month(leap_day) == "2028-02"
    assert usage_month(leap_day + timedelta(seconds=1)) == "2028-03"
    # 29 Feb 01:00 at UTC+3 is still 28 Feb UTC: February either way.
    assert usage_month(datetime(2028, 2, 29, 1, 0, tzinfo=timezone(timedelta(hours=3)))) == "2028-02"


def test_run_over_leap_day_bills_the_extra_day() -> None:
    started = datetime(2028, 2, 28, 12, 0, tzinfo=UTC)
    stopped = datetime(2028, 3, 1, 12, 0, tzinfo=UTC)
    assert billable_minutes(started, stopped) == 2 * 24 * 60
    assert usage_month(stopped) == "2028-03"
