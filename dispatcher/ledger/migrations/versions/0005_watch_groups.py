"""Replicas divide the watching in whole status batches: each attempt's watch group.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``runs.watch_key`` is a digest of the provider's status batch (an ECS cluster and credential set,
a Cloud Run location...) and ``runs.watch_group`` the attempt's group in it, filled up to the
batch size before another is opened; replicas own whole groups. NULL (rows from before this
revision, providers that batch nothing): the attempt is its own unit, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("watch_key", sa.String(64), nullable=True))
        runs.add_column(sa.Column("watch_group", sa.Integer(), nullable=True))
    op.create_index("ix_runs_in_flight_watch_groups", "runs", ["workspace", "watch_key", "watch_group"],
                    postgresql_where=sa.text("metered_at IS NULL"), sqlite_where=sa.text("metered_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_runs_in_flight_watch_groups", "runs")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("watch_group")
        runs.drop_column("watch_key")
