"""Initial ledger schema: the runs table.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written by hand and frozen: later schema changes get new revisions rather
than edits here, so existing ledgers upgrade deterministically.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("flow_run_id", sa.String(36), primary_key=True),
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
    op.create_index("ix_runs_workspace", "runs", ["workspace"])
    op.create_index("ix_runs_workspace_usage_month", "runs", ["workspace", "usage_month"])


def downgrade() -> None:
    op.drop_index("ix_runs_workspace_usage_month", table_name="runs")
    op.drop_index("ix_runs_workspace", table_name="runs")
    op.drop_table("runs")
