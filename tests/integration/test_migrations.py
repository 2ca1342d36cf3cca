"""Upgrading a database that already holds cases keeps them and their audit trail."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from db import current_revision, head_revision, make_engine, upgrade
from engine import Casework, load_definition

# a workflow as the first schema stored it: no templates
V1_WORKFLOW = """
workflow: poverty_archive
version: 1
title: t
roles: {clerk: 经办人}
fields: {county: {type: choice, choices: [芗城区], scope: true}}
states:
  apply: {initial: true}
  done: {final: true}
transitions:
  finish: {from: apply, to: done, by: clerk}
"""


def test_upgrade_from_the_first_schema_with_data(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workflow_versions (name, version, title, source, source_hash, loaded_at) "
                "VALUES ('poverty_archive', 1, 't', :s, 'h', '2026-01-01 00:00:00')"
            ),
            {"s": V1_WORKFLOW},
        )
        conn.execute(
            text(
                "INSERT INTO cases (ref, workflow, workflow_version_id, state, scope, data, fired_by, version, "
                "audit_seq, audit_head, created_by, created_at, updated_at) VALUES ('ZZ-2026-000001', "
                "'poverty_archive', 1, 'apply', '芗城区', '{}', '{}', 1, 1, 'x', 'lin', "
                "'2026-01-01 00:00:00', '2026-01-02 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (case_id, seq, at, actor, role, action, changes, prev_hash, hash) "
                "VALUES (1, 1, '2026-01-01 00:00:00', 'lin', 'clerk', 'created', '{}', 'p', 'x')"
            )
        )
    before, after = upgrade(engine)
    assert (before, after) == ("0001", head_revision())
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 1
        entered = conn.execute(text("SELECT entered_at FROM cases")).scalar()
        assert str(entered).startswith("2026-01-02")
    svc = Casework(engine)
    assert svc.get_case("ZZ-2026-000001").state == "apply"
    assert load_definition(V1_WORKFLOW).name == "poverty_archive"
    engine.dispose()


def test_the_migrations_build_exactly_the_declared_schema(db_url: str) -> None:
    """What `casework init` creates is what db.schema declares: no table, column, index or constraint differs."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from db.schema import metadata

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrading_to_0006_rewrites_each_cases_four_eyes_facts_from_its_trail(tmp_path: Path) -> None:
    """A case written before the facts named who entered the data replays the same after the upgrade."""
    from engine.access import four_eyes_facts
    from engine.store.tables import EventRow

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0005")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO workflow_versions (name, version, title, source, source_hash, templates, loaded_at) "
                "VALUES ('poverty_archive', 1, 't', :s, 'h', '{}', '2026-01-01 00:00:00')"
            ),
            {"s": V1_WORKFLOW},
        )
        conn.execute(
            text(
                "INSERT INTO cases (ref, workflow, workflow_version_id, state, scope, data, fired_by, version, "
                "audit_seq, audit_head, created_by, created_at, updated_at) VALUES ('ZZ-2026-000001', "
                "'poverty_archive', 1, 'done', '芗城区', '{}', :fired, 3, 3, 'x', 'lin', "
                "'2026-01-01 00:00:00', '2026-01-02 00:00:00')"
            ),
            {"fired": '{"finish": ["wu"]}'},
        )
        for seq, actor, action, trigger, changes in (
            (1, "lin", "created", None, '{"county": [null, "芗城区"]}'),
            (2, "ye", "updated", None, '{"county": ["芗城区", "芗城区"]}'),
            (3, "wu", "fired", "finish", "{}"),
        ):
            conn.execute(
                text(
                    "INSERT INTO audit_events (case_id, seq, at, actor, role, action, trigger, changes, prev_hash, "
                    "hash) VALUES (1, :seq, '2026-01-01 00:00:00', :actor, 'clerk', :action, :trigger, :changes, "
                    "'p', 'x')"
                ),
                {"seq": seq, "actor": actor, "action": action, "trigger": trigger, "changes": changes},
            )
    upgrade(engine)
    with engine.connect() as conn:
        fired_by = conn.execute(text("SELECT fired_by FROM cases")).scalar_one()
        rows = [EventRow._make(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY seq"))]
    rows = [r._replace(changes=json.loads(r.changes)) for r in rows]  # read raw: the JSON as text
    engine.dispose()
    expected = {"@": ["lin", "ye"], "@finish": ["lin", "ye"], "finish": ["wu"]}
    assert four_eyes_facts(rows) == expected
    assert json.loads(fired_by) == expected
