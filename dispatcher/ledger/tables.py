"""SQLAlchemy schema of the ledger: one ``runs`` row per attempt of a flow run.

The schema itself is created by the alembic migrations in ``migrations/``;
this model is what the queries (and future autogenerate) are written against.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

from sqlalchemy import DateTime, Float, Index, Integer, PrimaryKeyConstraint, String, Text, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetime stored as UTC, returned as aware UTC.

    PostgreSQL keeps the offset (``timestamptz``) but SQLite stores the
    wall-clock fields only, so values are converted to UTC before writing and
    naive values read back are known to be UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"refusing to store naive datetime {value!r}; use UTC")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Any, dialect: Dialect) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of the ledger tables (target metadata for alembic)."""


class RunRecord(Base):
    """Lifecycle and metering facts of one attempt of a flow run started by the dispatcher.

    An attempt is one claim: a retry from Prefect (the UI's Retry, ``prefect flow-run retry``)
    is a new attempt with its own infrastructure and its own metering. Its id is the id of
    the PENDING state the claim set; rows from before attempts existed use the flow run id.
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_workspace_usage_month", "workspace", "usage_month"),
        # Only in-flight rows: a key's history grows for ever, its groups are counted on every submission.
        Index("ix_runs_in_flight_watch_groups", "workspace", "watch_key", "watch_group",
              postgresql_where=text("metered_at IS NULL"), sqlite_where=text("metered_at IS NULL")),
    )

    attempt_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow_run_id: Mapped[str] = mapped_column(String(36), index=True)
    # 1, 2, 3... within the flow run, in claim order: for people reading usage.
    attempt: Mapped[int] = mapped_column(Integer)
    workspace: Mapped[str] = mapped_column(String(255), index=True)
    pool: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32))
    # Provider handle (ECS task ARN, Cloud Run execution, ACI group, PID...).
    infrastructure_id: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    # Provider-reported infrastructure start; null when it never started.
    started_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    stopped_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    exit_code: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    reason: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    compute_seconds: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    billed_minutes: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    usage_month: Mapped[Optional[str]] = mapped_column(String(7), nullable=True)
    # Set exactly once, by the single UPDATE that wins the metering race.
    metered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    final_state: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=lambda: datetime.now(timezone.utc)
    )
    # Recorded at admission (just before submission), for usage reports; null on rows from before 0003.
    admitted_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    deployment_id: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    deployment_name: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    flow_name: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    flow_run_name: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)
    vcpu: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    memory_mib: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    # The replica that adopted the attempt for watching; null: the replica that submitted it (0004).
    watcher: Mapped[Optional[str]] = mapped_column(String(36), nullable=True)
    # Its status batch (a digest of the provider's WatchBatch key) and group in it, for dividing the watching (0005).
    watch_key: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    watch_group: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)


class BudgetMonthRecord(Base):
    """One row per workspace and month: the lock every budget admission of that workspace takes.

    Admissions update it first, in the transaction that reads the month's use and marks the
    attempt admitted, so two replicas deciding at once are serialised by the database.
    """

    __tablename__ = "budget_months"
    __table_args__ = (PrimaryKeyConstraint("workspace", "month"),)

    workspace: Mapped[str] = mapped_column(String(255))
    month: Mapped[str] = mapped_column(String(7))
    admissions: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BudgetAlertRecord(Base):
    """A budget threshold crossed in a month; its primary key makes the alert happen once."""

    __tablename__ = "budget_alerts"
    __table_args__ = (PrimaryKeyConstraint("workspace", "pool", "month", "threshold_pct"),)

    workspace: Mapped[str] = mapped_column(String(255))
    pool: Mapped[str] = mapped_column(String(255))  # "" for the workspace's own budget
    month: Mapped[str] = mapped_column(String(7))
    threshold_pct: Mapped[int] = mapped_column(Integer)
    used_minutes: Mapped[int] = mapped_column(Integer)
    budget_minutes: Mapped[int] = mapped_column(Integer)
    crossed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BudgetOverrideRecord(Base):
    """A month's budget set through the usage API (admin); it replaces the configured figure for that month."""

    __tablename__ = "budget_overrides"
    __table_args__ = (PrimaryKeyConstraint("workspace", "pool", "month"),)

    workspace: Mapped[str] = mapped_column(String(255))
    pool: Mapped[str] = mapped_column(String(255))  # "" for the workspace's own budget
    month: Mapped[str] = mapped_column(String(7))
    minutes: Mapped[int] = mapped_column(Integer)
    set_by: Mapped[str] = mapped_column(String(255))  # the token's name
    set_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxEventRecord(Base):
    """A Prefect event waiting to be delivered (written in the transaction that caused it)."""

    __tablename__ = "outbox_events"
    __table_args__ = (Index("ix_outbox_events_pending", "workspace", "delivered_at", "next_attempt_at"),)

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)  # the event as Prefect's JSON
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(String(255), nullable=True)


class ReplicaRecord(Base):
    """A dispatcher replica serving a workspace: alive while another replica sees ``beat`` change.

    Liveness is judged by each reader on its own monotonic clock (did the counter move in
    the last TTL?), so clocks that differ between hosts do not matter; ``beat_at`` is for people.
    """

    __tablename__ = "replicas"
    __table_args__ = (PrimaryKeyConstraint("workspace", "replica_id"),)

    workspace: Mapped[str] = mapped_column(String(255))
    replica_id: Mapped[str] = mapped_column(String(36))
    name: Mapped[str] = mapped_column(String(255))  # the worker name shown in Prefect
    beat: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime())


runs_table = RunRecord.__table__
