"""One row per attempt: a retried flow run gets a row (and infrastructure, and metering) per attempt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

Existing rows become attempt 1 of their flow run with ``attempt_id = flow_run_id``. That
is deliberate: every key derived from the attempt id (the providers' idempotency keys,
ECS ``startedBy``, the local provider's run directory) then equals the one the row's
infrastructure was started with, so runs in flight during the upgrade are found, watched
and metered as before. The primary key changes, so the table is rebuilt (copy, drop,
rename), the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    "workspace", "pool", "provider", "infrastructure_id", "claimed_at", "submitted_at", "started_at", "stopped_at",
    "exit_code", "reason", "compute_seconds", "billed_minutes", "usage_month", "metered_at", "final_state", "updated_at",
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _runs_table(name: str, key: str) -> None:
    """The runs table keyed by ``key`` (attempt_id now, flow_run_id before)."""
    extra = [sa.Column("flow_run_id", sa.String(36), nullable=False), sa.Column("attempt", sa.Integer(), nullable=False)]
    op.create_table(
        name,
        sa.Column(key, sa.String(36), primary_key=True),
        *(extra if key == "attempt_id" else []),
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("pool", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("infrastructure_id", sa.String(1024), nullable=True),
        sa.Column("claimed_at", _utc(), nullable=False),
        sa.Column("submitted_at", _utc(), nullable=True),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("stopped_at", _utc(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("compute_seconds", sa.Float(), nullable=True),
        sa.Column("billed_minutes", sa.Integer(), nullable=True),
        sa.Column("usage_month", sa.String(7), nullable=True),
        sa.Column("metered_at", _utc(), nullable=True),
        sa.Column("final_state", sa.String(64), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
    )


def _drop_indexes() -> None:
    op.drop_index("ix_runs_workspace_usage_month", table_name="runs")
    op.drop_index("ix_runs_workspace", table_name="runs")


def upgrade() -> None:
    _runs_table("runs_by_attempt", "attempt_id")
    columns = ", ".join(_COLUMNS)
    op.execute(
        f"INSERT INTO runs_by_attempt (attempt_id, flow_run_id, attempt, {columns}) "
        f"SELECT flow_run_id, flow_run_id, 1, {columns} FROM runs"
    )
    _drop_indexes()
    op.drop_table("runs")
    op.rename_table("runs_by_attempt", "runs")
    op.create_index("ix_runs_workspace", "runs", ["workspace"])
    op.create_index("ix_runs_workspace_usage_month", "runs", ["workspace", "usage_month"])
    op.create_index("ix_runs_flow_run_id", "runs", ["flow_run_id"])


def downgrade() -> None:
    """Back to one row per flow run: only each flow run's first attempt survives."""
    _runs_table("runs_by_flow_run", "flow_run_id")
    columns = ", ".join(_COLUMNS)
    op.execute(f"INSERT INTO runs_by_flow_run (flow_run_id, {columns}) SELECT flow_run_id, {columns} FROM runs WHERE attempt = 1")
    op.drop_index("ix_runs_flow_run_id", table_name="runs")
    _drop_indexes()
    op.drop_table("runs")
    op.rename_table("runs_by_flow_run", "runs")
    op.create_index("ix_runs_workspace", "runs", ["workspace"])
    op.create_index("ix_runs_workspace_usage_month", "runs", ["workspace", "usage_month"])
