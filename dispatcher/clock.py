"""The dispatcher's one notion of "now": wall-clock UTC, for timestamps shared with Prefect and the ledger.

Durations measured inside one process (backoff, grace periods) use ``time.monotonic()``
instead, which no clock adjustment can move.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def seconds_since(moment: datetime | None, now: datetime | None = None) -> float:
    """Seconds from ``moment`` to ``now`` (0 when there is no moment)."""
    if moment is None:
        return 0.0
    # total_seconds(): Prefect's datetimes may be pendulum's, whose Interval cannot divide by a timedelta.
    return ((now or utcnow()) - moment).total_seconds()
