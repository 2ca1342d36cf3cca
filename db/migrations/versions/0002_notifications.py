"""Notifications: outbox, in-app inbox, public notices, objections; user email; workflow templates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode): on SQLite, batch mode would copy and
    # drop the cases table, which the audit trail's foreign keys forbid.
    op.add_column("users", sa.Column("email", sa.String(254), nullable=True))
    op.add_column("workflow_versions", sa.Column("templates", JSONType, nullable=False, server_default="{}"))
    # when the case entered its current state; the engine always sets it
    op.add_column("cases", sa.Column("entered_at", UTCDateTime, nullable=True))
    op.execute("UPDATE cases SET entered_at = updated_at")
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=True),
        sa.Column("event_seq", sa.Integer, nullable=True),
        sa.Column("workflow_version_id", sa.Integer, sa.ForeignKey("workflow_versions.id"), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("template", sa.String(63), nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("outbox_id", sa.Integer, sa.ForeignKey("outbox.id"), nullable=False, unique=True),
        sa.Column("username", sa.String(63), nullable=False),
        sa.Column("case_ref", sa.String(40), nullable=True),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("read_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_inbox_user", "inbox_messages", ["username", "read_at"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("number", sa.String(60), nullable=False, unique=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("scope", sa.String(200), nullable=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("period_start", sa.Date, nullable=True),
        sa.Column("period_end", sa.Date, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "notice_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("notice_id", sa.Integer, sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.UniqueConstraint("notice_id", "case_id", name="uq_notice_cases_notice_case"),
    )
    op.create_index("ix_notice_cases_notice_id", "notice_cases", ["notice_id"])
    op.create_table(
        "objections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_by", sa.String(63), nullable=False),
        sa.Column("received_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("resolved_by", sa.String(63), nullable=True),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
    )
    op.create_index("ix_objections_case_status", "objections", ["case_id", "status"])


def downgrade() -> None:
    for table in ("objections", "notice_cases", "notices", "inbox_messages", "outbox"):
        op.drop_table(table)
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("entered_at")
    with op.batch_alter_table("workflow_versions") as batch:
        batch.drop_column("templates")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("email")
