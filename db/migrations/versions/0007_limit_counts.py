"""Limits across cases: ``limit_counts``, what each case counted toward a workflow's ``limits:``.

One row per (workflow, limit, case), written in the transaction of the limit's step: the SHA-256 of
the key field's value (not the value: an ID number is personal data), the period (the calendar year
the step was fired in, or "all") and the amount counted. The table starts empty: no workflow could
declare a limit before this revision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "limit_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("limit_name", sa.String(63), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("amount", sa.String(40), nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("counted_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("workflow", "limit_name", "case_id", name="uq_limit_counts_case"),
    )
    op.create_index("ix_limit_counts_key", "limit_counts", ["workflow", "limit_name", "key_hash", "period"])


def downgrade() -> None:
    op.drop_index("ix_limit_counts_key", "limit_counts")
    op.drop_table("limit_counts")
