"""The engine's tables, and the triggers that make the audit trail append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflow_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=False),
        sa.Column("loaded_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_workflow_versions_name_version"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("roles", JSONType, nullable=False),
        sa.Column("scopes", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ref", sa.String(40), nullable=False, unique=True),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("workflow_version_id", sa.Integer, sa.ForeignKey("workflow_versions.id"), nullable=False),
        sa.Column("state", sa.String(63), nullable=False),
        sa.Column("scope", sa.String(200), nullable=True),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("fired_by", JSONType, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("audit_seq", sa.Integer, nullable=False),
        sa.Column("audit_head", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(63), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_cases_workflow_state", "cases", ["workflow", "state"])
    op.create_index("ix_cases_scope_state", "cases", ["scope", "state"])
    op.create_table(
        "case_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("workflow", sa.String(63), nullable=False),
        sa.Column("field", sa.String(63), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.UniqueConstraint("workflow", "field", "value", name="uq_case_keys_value"),
    )
    op.create_index("ix_case_keys_case_id", "case_keys", ["case_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(63), nullable=False),
        sa.Column("role", sa.String(63), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("trigger", sa.String(63), nullable=True),
        sa.Column("from_state", sa.String(63), nullable=True),
        sa.Column("to_state", sa.String(63), nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("changes", JSONType, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("case_id", "seq", name="uq_audit_events_case_seq"),
    )
    op.create_table(
        "ref_counters",
        sa.Column("prefix", sa.String(10), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("last", sa.Integer, nullable=False),
    )

    # The audit trail is evidence (DESIGN.md core idea 6): the database itself
    # refuses to change or remove an event, whatever the application does.
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                f"BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {verb} refused'); END"
            )
    else:
        op.execute(
            """
            CREATE FUNCTION casework_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP;
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION casework_audit_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION casework_audit_append_only()"
        )


def downgrade() -> None:
    # Dropping the audit trail destroys evidence; refuse rather than comply.
    raise RuntimeError("downgrading below 0001 would delete the audit trail; restore a backup instead")
