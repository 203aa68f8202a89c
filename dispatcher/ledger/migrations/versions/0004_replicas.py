"""Replicas share the watching: a membership table, and which replica watches each attempt.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``replicas`` holds one row per live dispatcher replica and workspace; each replica bumps its
``beat`` every membership tick. ``runs.watcher`` names the replica that adopted an attempt;
NULL (every row from before this revision, and every new submission) means "the replica
that submitted it", so runs in flight during the upgrade keep being watched.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("watcher", sa.String(36), nullable=True))
    op.create_table(
        "replicas",
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("replica_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("beat", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "replica_id"),
    )


def downgrade() -> None:
    op.drop_table("replicas")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("watcher")
