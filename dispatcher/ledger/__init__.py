"""Run ledger and compute metering of the dispatcher.

``Ledger`` records each flow run (claim, submission, metering, final state)
in SQLite or PostgreSQL; ``billable_minutes`` / ``usage_month`` are the pure
billing rules it applies.
"""

from .metering import billable_minutes, compute_seconds, usage_month
from .models import AttemptRef, LedgerRun, UsageRow
from .store import Ledger, LedgerError, LedgerUnavailable
from .tables import Base, RunRecord, UTCDateTime

__all__ = [
    "AttemptRef",
    "Base",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "LedgerRun",
    "RunRecord",
    "UTCDateTime",
    "UsageRow",
    "billable_minutes",
    "compute_seconds",
    "usage_month",
]
