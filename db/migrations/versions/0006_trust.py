"""Trust: authenticated trail heads, event provenance, undeletable cases, accountable operators.

- ``audit_events.context``: where an event was written from (the operating-system user and host of
  the process) and, for a case's first event, the workflow version it was opened on; covered by the
  event's hash, so it is as tamper-evident as the rest of the event.
- ``cases.audit_seal``: an HMAC of the case's trail head under a key the database does not hold
  (``CASEWORK_AUDIT_KEY``/``CASEWORK_AUDIT_KEY_FILE``), so someone who can write the database cannot
  append a forged event and move the head without it being detected.
- ``workflow_versions.loaded_by``/``weakened``: who loaded a version and which weakened controls they
  accepted (``workflow history``).
- ``users.disabled_at``: a disabled user cannot act.
- ``access_log``: reads of full personal data through the operator's console.
- ``cases.fired_by`` recomputed from each trail: the four-eyes facts now also name who entered or
  changed the data (``@``) and who had when each step was taken (``@STEP``), so the replay that
  ``casework check`` compares with the row agrees for cases written before.
- Triggers: a case row cannot be deleted (SQLite's triggers fire even with foreign keys off); stored
  workflow versions, notices and the cases a notice lists cannot be changed or deleted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.types import JSONType, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: table → the statements the database refuses on it
_FROZEN = {
    "cases": ("DELETE",),
    "workflow_versions": ("UPDATE", "DELETE"),
    "notices": ("UPDATE", "DELETE"),
    "notice_cases": ("UPDATE", "DELETE"),
}


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("context", JSONType, nullable=True))
    op.add_column("cases", sa.Column("audit_seal", sa.String(64), nullable=True))
    op.add_column("workflow_versions", sa.Column("loaded_by", sa.String(200), nullable=True))
    op.add_column("workflow_versions", sa.Column("weakened", JSONType, nullable=True))
    op.add_column("users", sa.Column("disabled_at", UTCDateTime, nullable=True))
    op.create_table(
        "access_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("os_user", sa.String(63), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(63), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("detail", JSONType, nullable=False),
    )
    op.create_index("ix_access_log_at", "access_log", ["at"])
    _recompute_four_eyes_facts()

    if op.get_bind().dialect.name == "sqlite":
        for table, verbs in _FROZEN.items():
            for verb in verbs:
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table}: {verb} refused (kept as evidence)'); END"
                )
        return
    op.execute(
        """
        CREATE FUNCTION casework_kept_as_evidence() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION '%: % refused (kept as evidence)', TG_TABLE_NAME, TG_OP;
        END $$
        """
    )
    for table, verbs in _FROZEN.items():
        op.execute(
            f"CREATE TRIGGER {table}_kept BEFORE {' OR '.join(verbs)} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION casework_kept_as_evidence()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION casework_kept_as_evidence()"
        )


#: the audit actions whose ``changes`` are the case's data
_DATA_ACTIONS = ("created", "fired", "updated")


def _recompute_four_eyes_facts() -> None:
    """Rewrite every case's ``fired_by`` as its trail gives it (a frozen copy of engine.access.four_eyes_facts)."""
    events = sa.table(
        "audit_events",
        sa.column("case_id", sa.Integer),
        sa.column("seq", sa.Integer),
        sa.column("actor", sa.String),
        sa.column("action", sa.String),
        sa.column("trigger", sa.String),
        sa.column("changes", JSONType),
    )
    cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("fired_by", JSONType))
    conn = op.get_bind()
    query = (
        sa.select(events.c.case_id, events.c.actor, events.c.action, events.c.trigger, events.c.changes)
        .where(events.c.action.in_(_DATA_ACTIONS))
        .order_by(events.c.case_id, events.c.seq)
    )
    update = sa.update(cases).where(cases.c.id == sa.bindparam("case")).values(fired_by=sa.bindparam("facts"))
    batch: list[dict[str, object]] = []
    current: int | None = None
    facts: dict[str, list[str]] = {}
    # a statement option: on the connection it would stream every later statement, CREATE FUNCTION too
    for case_id, actor, action, trigger, changes in conn.execute(query.execution_options(yield_per=5000)):
        if case_id != current:
            if current is not None:
                batch.append({"case": current, "facts": facts})
            current, facts = case_id, {}
        if action == "fired" and trigger is not None:
            if changes:
                _add(facts, "@", actor)
            for editor in list(facts.get("@", ())):
                _add(facts, "@" + trigger, editor)
            _add(facts, trigger, actor)
        elif action == "created" or changes:
            _add(facts, "@", actor)
        if len(batch) >= 1000:
            conn.execute(update, batch)
            batch = []
    if current is not None:
        batch.append({"case": current, "facts": facts})
    if batch:
        conn.execute(update, batch)


def _add(facts: dict[str, list[str]], key: str, name: str) -> None:
    names = facts.setdefault(key, [])
    if name not in names:
        names.append(name)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, verbs in _FROZEN.items():
            for verb in verbs:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb.lower()}")
    else:
        for table in _FROZEN:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_kept ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute("DROP FUNCTION IF EXISTS casework_kept_as_evidence()")
    op.drop_index("ix_access_log_at", "access_log")
    op.drop_table("access_log")
    for table, columns in (
        ("users", ["disabled_at"]),
        ("workflow_versions", ["weakened", "loaded_by"]),
        ("cases", ["audit_seal"]),
        ("audit_events", ["context"]),
    ):
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_column(column)
