"""Pure billing arithmetic: how many minutes a run costs and which month pays.

Kept free of I/O so the rules can be tested exhaustively and reused by
reports without a database.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_ONE_MINUTE_US = 60 * 1_000_000


def require_aware(name: str, value: datetime) -> datetime:
    """Return ``value`` unchanged, or raise if it carries no UTC offset.

    A naive timestamp is ambiguous (local time? UTC?) and would silently shift
    a run into the wrong minute or month, so it is refused outright.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value!r}")
    return value


def billable_minutes(started_at: datetime, stopped_at: datetime) -> int:
    """Minutes billed for infrastructure alive from ``started_at`` to ``stopped_at``.

    Any started minute is billed in full (ceil), so only a zero-length run is
    free. A stop before the start means the provider clocks disagree; that is
    reported as ``ValueError`` instead of being billed as zero.
    """
    duration = _duration(started_at, stopped_at)
    # Integer microseconds avoid float rounding turning 60.000001 s into 1 min.
    micros = _total_microseconds(duration)
    return -(-micros // _ONE_MINUTE_US)


def compute_seconds(started_at: datetime, stopped_at: datetime) -> float:
    """Exact (unrounded) seconds between start and stop, validated like billing."""
    return _duration(started_at, stopped_at).total_seconds()


def usage_month(stopped_at: datetime) -> str:
    """``"YYYY-MM"`` of the UTC month in which the infrastructure stopped.

    The teardown month is used, not the start month, because a run is only
    metered once it has stopped: attributing it to the month it stopped in
    means a month that has closed never receives new minutes afterwards, so
    published monthly totals stay final. A run crossing midnight at the end
    of a month is therefore billed entirely to the following month.
    """
    in_utc = require_aware("stopped_at", stopped_at).astimezone(timezone.utc)
    return f"{in_utc.year:04d}-{in_utc.month:02d}"


def _duration(started_at: datetime, stopped_at: datetime) -> timedelta:
    require_aware("started_at", started_at)
    require_aware("stopped_at", stopped_at)
    duration = stopped_at - started_at
    if duration < timedelta(0):
        raise ValueError(
            f"stopped_at {stopped_at.isoformat()} is before started_at "
            f"{started_at.isoformat()} (clock skew?)"
        )
    return duration


def _total_microseconds(duration: timedelta) -> int:
    return (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds


def elapsed_minutes(since: datetime, now: datetime) -> int:
    """Minutes an attempt still in flight has used so far: at least one, as any started minute is billed."""
    micros = _total_microseconds(max(timedelta(0), require_aware("now", now) - require_aware("since", since)))
    return max(1, -(-micros // _ONE_MINUTE_US))
