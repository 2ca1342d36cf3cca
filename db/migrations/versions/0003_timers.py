"""Durable time: timers, and each case's current deadline and pause.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN: see 0002 on why not batch mode
    op.add_column("cases", sa.Column("deadline_at", UTCDateTime, nullable=True))
    op.add_column("cases", sa.Column("deadline_provisional", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("cases", sa.Column("paused_at", UTCDateTime, nullable=True))
    op.add_column("cases", sa.Column("paused_left", JSONType, nullable=True))
    op.create_index("ix_cases_deadline", "cases", ["deadline_at"])
    op.create_table(
        "timers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("state", sa.String(63), nullable=False),
        sa.Column("entered_at", UTCDateTime, nullable=False),
        sa.Column("due_at", UTCDateTime, nullable=False),
        sa.Column("provisional", sa.Boolean, nullable=False),
        sa.Column("payload", JSONType, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("held_at", UTCDateTime, nullable=True),
        sa.Column("fired_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_timers_due", "timers", ["status", "due_at"])
    op.create_index("ix_timers_case", "timers", ["case_id", "status"])


def downgrade() -> None:
    op.drop_table("timers")
    op.drop_index("ix_cases_deadline", "cases")
    with op.batch_alter_table("cases") as batch:
        for column in ("paused_left", "paused_at", "deadline_provisional", "deadline_at"):
            batch.drop_column(column)
