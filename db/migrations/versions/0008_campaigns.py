"""Campaigns on a date a supervisor sets each year: ``campaigns``, one row per (workflow, year).

A workflow's ``campaign:`` (送温暖 before the Spring Festival, whose date moves every year) runs on
the date stored here, once: who set the date and when, whether it is pending, ran or was cancelled
(and by whom), and what it opened. ``year`` is the programme year the campaign belongs to, kept apart from
``on_date``: 送温暖 of 2027 may run in December 2026. The table starts empty: no workflow could declare a campaign
before this revision.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("on_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("set_by", sa.String(63), nullable=False),
        sa.Column("set_at", UTCDateTime, nullable=False),
        sa.Column("cancelled_by", sa.String(63), nullable=True),
        sa.Column("cancelled_at", UTCDateTime, nullable=True),
        sa.Column("ran_at", UTCDateTime, nullable=True),
        sa.Column("opened", sa.Integer, nullable=True),
        sa.Column("skipped", sa.Integer, nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.UniqueConstraint("workflow", "year", name="uq_campaigns_workflow_year"),
    )


def downgrade() -> None:
    op.drop_table("campaigns")
