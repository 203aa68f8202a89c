"""Usage reporting, budgets and alerts: what each attempt ran, budget locks and monthly overrides, alerts once,
an event outbox.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

New ``runs`` columns are nullable: rows from before this revision keep NULLs there and are
reported as "unknown" (deployment, flow) and unpriced (vCPU, memory). The new tables start empty.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_RUN_COLUMNS = (
    ("admitted_at", sa.DateTime(timezone=True)),
    ("deployment_id", sa.String(36)),
    ("deployment_name", sa.String(255)),
    ("flow_name", sa.String(255)),
    ("flow_run_name", sa.String(255)),
    ("vcpu", sa.Float()),
    ("memory_mib", sa.Integer()),
)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        for name, column_type in _RUN_COLUMNS:
            runs.add_column(sa.Column(name, column_type, nullable=True))
    op.create_table(
        "budget_months",
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("admissions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "month"),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("pool", sa.String(255), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("threshold_pct", sa.Integer(), nullable=False),
        sa.Column("used_minutes", sa.Integer(), nullable=False),
        sa.Column("budget_minutes", sa.Integer(), nullable=False),
        sa.Column("crossed_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "pool", "month", "threshold_pct"),
    )
    op.create_table(
        "budget_overrides",
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("pool", sa.String(255), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(255), nullable=False),
        sa.Column("set_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "pool", "month"),
    )
    op.create_table(
        "outbox_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("delivered_at", _utc(), nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
    )
    op.create_index("ix_outbox_events_pending", "outbox_events", ["workspace", "delivered_at", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_events_pending", table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_table("budget_overrides")
    op.drop_table("budget_alerts")
    op.drop_table("budget_months")
    with op.batch_alter_table("runs") as runs:
        for name, _ in reversed(_RUN_COLUMNS):
            runs.drop_column(name)
