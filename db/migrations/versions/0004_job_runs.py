"""Scheduled jobs from workflows' ``schedules:``: one row per job and due time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job", sa.String(130), nullable=False),
        sa.Column("fire_time", UTCDateTime, nullable=False),
        sa.Column("ran_at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.UniqueConstraint("job", "fire_time", name="uq_job_runs_job_fire_time"),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
