"""The inbox's indexes: cases by (version, state[, scope]) in deadline order.

``waiting_for`` reads one index range per (workflow version, state, scope)
the user may act on, already sorted by ``deadline_at`` then ``id``, and takes
only the first rows of each, so a page costs the same at a thousand cases or
a million. ``id`` is part of the key because PostgreSQL breaks ties by
physical row position, not by id (SQLite's implicit rowid would do).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_inbox", "cases", ["workflow_version_id", "state", "paused_at", "deadline_at", "id"])
    op.create_index(
        "ix_cases_inbox_scope", "cases", ["workflow_version_id", "state", "scope", "paused_at", "deadline_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_cases_inbox_scope", "cases")
    op.drop_index("ix_cases_inbox", "cases")
