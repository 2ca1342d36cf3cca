"""The trail proves the case: tampering with the stored data behind the engine's back is found.

Each test makes an edit the issue reproduced with only the rights the
application's own database role has (or, where the database now refuses the
edit, first removes the refusal as a table owner could), and checks that
``check`` and ``audit verify`` name the case and what differs.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
import sqlite3
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from db import AuditEvent, Case, Timer
from engine import Casework, PermissionDenied, SameActorForbidden, TransitionRefused
from engine.access import four_eyes_facts
from engine.audit import Event, Recorder, load_key, origin
from engine.errors import InputError
from engine.store.tables import EventRow
from tests.integration.test_service import household

WF = "poverty_archive"
KEY = b"k" * 40


def sql(svc: Casework, statement: Any) -> None:
    with svc.engine.begin() as conn:
        conn.execute(statement)


def raw(svc: Casework, *statements: str) -> None:
    with svc.engine.begin() as conn:
        for s in statements:
            conn.exec_driver_sql(s)


def findings(svc: Casework) -> set[tuple[str, str]]:
    """(check, ref) of every violation, after asserting ``check`` and ``audit verify`` both fail."""
    report = svc.check()
    assert not report.ok
    verified = svc.verify_audit()
    assert not verified.ok
    return {(v.check, v.ref) for v in report.violations}


def details(svc: Casework, check: str) -> list[str]:
    return [v.detail for v in svc.check().violations if v.check == check]


def submitted(svc: Casework, **over: Any) -> str:
    ref = svc.create_case(WF, "lin", household(**over)).ref
    svc.fire(ref, "submit", "lin")
    return ref


def drop_refusal(svc: Casework, table: str, verb: str) -> None:
    """What an owner of the tables can do: remove the trigger that refuses ``verb`` on ``table``."""
    if svc.engine.dialect.name == "sqlite":
        raw(svc, f"DROP TRIGGER {table}_no_{verb.lower()}")
    else:
        raw(svc, f"ALTER TABLE {table} DISABLE TRIGGER {table}_kept")


def test_the_engines_own_writes_replay_exactly(svc: Casework) -> None:
    a = submitted(svc)
    svc.update_case(svc.create_case(WF, "lin", household(seed=2)).ref, "lin", {"household_size": 4})
    svc.fire(a, "return", "wu", comment="材料不全")
    svc.update_case(a, "lin", {"materials": ["申请表", "身份证", "户口簿", "收入证明"]})
    assert svc.check().ok, svc.check().violations
    assert svc.verify_audit().ok


def test_rewritten_data_is_named_by_case_and_column(svc: Casework) -> None:
    ref = submitted(svc)
    with svc.engine.connect() as conn:
        data = conn.execute(select(Case.data).where(Case.ref == ref)).scalar_one()
    sql(svc, update(Case).where(Case.ref == ref).values(data={**data, "income_per_capita": 99999}))
    assert ("replay", ref) in findings(svc)
    assert any(d.startswith("data.income_per_capita: stored 99999") for d in details(svc, "replay"))


def test_a_rewritten_id_number_is_found_and_shown_masked(svc: Casework) -> None:
    ref = submitted(svc)
    with svc.engine.connect() as conn:
        data = conn.execute(select(Case.data).where(Case.ref == ref)).scalar_one()
    forged = "350602199001011234"
    sql(svc, update(Case).where(Case.ref == ref).values(data={**data, "id_number": forged}))
    assert ("replay", ref) in findings(svc)
    shown = " ".join(details(svc, "replay"))
    assert "data.id_number" in shown and forged not in shown and data["id_number"] not in shown


def test_clearing_fired_by_is_found_and_does_not_lift_four_eyes(svc: Casework) -> None:
    ref = svc.create_case(WF, "ye", household(materials=["申请表", "身份证", "户口簿", "收入证明"])).ref
    svc.fire(ref, "submit", "ye")
    sql(svc, update(Case).where(Case.ref == ref).values(fired_by={}))
    assert ("replay", ref) in findings(svc)
    # the four-eyes rule reads the trail, not the column: ye still may not pass his own submission
    with pytest.raises((SameActorForbidden, PermissionDenied)):
        svc.fire(ref, "pass_review", "ye")
    assert svc.get_case(ref).state == "review"


def test_a_workflow_source_cannot_be_rewritten_and_a_rewrite_is_found(svc: Casework) -> None:
    submitted(svc)
    weaker = "replace(source, '    not_by: submit\n', '')"
    with pytest.raises(DBAPIError, match="refused"):
        raw(svc, f"UPDATE workflow_versions SET source = {weaker}")
    drop_refusal(svc, "workflow_versions", "UPDATE")
    raw(svc, f"UPDATE workflow_versions SET source = {weaker}")
    assert ("source", "poverty_archive v4") in findings(svc)


def test_a_workflow_source_rewritten_with_its_hash_is_found_through_the_cases(svc: Casework) -> None:
    ref = submitted(svc)
    drop_refusal(svc, "workflow_versions", "UPDATE")
    with svc.engine.connect() as conn:
        source, templates = conn.execute(text("SELECT source, templates FROM workflow_versions")).one()
    from engine.definition.checks import source_hash

    weaker = source.replace("    not_by: submit\n", "")
    assert weaker != source
    sql(
        svc,
        text("UPDATE workflow_versions SET source = :s, source_hash = :h").bindparams(
            s=weaker, h=source_hash(weaker, templates if isinstance(templates, dict) else {})
        ),
    )
    found = findings(svc)
    assert ("replay", ref) in found  # the first event recorded the hash it was opened on
    assert any("workflow.source_hash" in d for d in details(svc, "replay"))


def test_a_notice_cannot_be_rewritten_and_a_rewrite_is_found(svc: Casework) -> None:
    with svc.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO notices (key, number, kind, workflow, scope, title, html, sha256, context, created_at)"
                " VALUES ('k', 'ZZGS-2026-000001', 'list', 'poverty_archive', '芗城区', 't', '<p>名单</p>', :sha,"
                " '{}', :at)"
            ).bindparams(sha=hashlib.sha256("<p>名单</p>".encode()).hexdigest(), at=svc.clock.now())
        )
    assert svc.check().ok or {v.check for v in svc.check().violations} <= {"deleted"}
    with pytest.raises(DBAPIError, match="refused"):
        raw(svc, "UPDATE notices SET html = '<p>改过的名单</p>'")
    drop_refusal(svc, "notices", "UPDATE")
    raw(svc, "UPDATE notices SET html = '<p>改过的名单</p>'")
    assert ("notice", "ZZGS-2026-000001") in findings(svc)


def forge_grant(svc: Casework, ref: str) -> None:
    """Append an event with a correct plain SHA-256 and move the case and its timers to match."""
    with svc.engine.begin() as conn:
        case = conn.execute(select(Case).where(Case.ref == ref)).one()
        last = conn.execute(
            select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq.desc()).limit(1)
        ).one()
        forged = Event(
            ref, last.seq + 1, svc.clock.now(), "su", "approver", "fired", "submit", "apply", "review", None, {},
            last.hash,
        )  # fmt: skip
        conn.execute(insert(AuditEvent).values(forged.row(case.id)))
        trail = [
            EventRow._make(r) for r in conn.execute(select(AuditEvent.__table__).where(AuditEvent.case_id == case.id))
        ]
        fired = four_eyes_facts(trail)  # what the forger makes the row say, so that the replay agrees
        conn.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(
                state="review",
                version=case.version + 1,
                audit_seq=forged.seq,
                audit_head=forged.hash,
                fired_by=fired,
            )
        )
        conn.execute(update(Timer).where(Timer.case_id == case.id).values(status="cancelled"))


def keyed(svc: Casework) -> Casework:
    return Casework(svc.engine, svc.clock, recorder=Recorder(KEY, origin()))


def test_without_a_key_a_consistent_forgery_passes_which_is_why_the_key_exists(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    forge_grant(svc, ref)
    # documented in RELIABILITY.md: without the audit key, whoever can write the database can extend a trail
    assert not any(v.check in {"chain", "replay"} for v in svc.check().violations)
    assert not svc.verify_audit().authenticated


def test_with_the_key_a_forged_event_is_found(svc: Casework) -> None:
    sealed = keyed(svc)
    ref = sealed.create_case(WF, "lin", household()).ref
    other = sealed.create_case(WF, "lin", household(seed=2)).ref
    sealed.fire(other, "submit", "lin")
    assert sealed.check().ok and sealed.verify_audit().ok and sealed.verify_audit().authenticated
    forge_grant(sealed, ref)
    found = findings(sealed)
    assert ("seal", ref) in found and ("seal", other) not in found


def test_a_seal_removed_is_found(svc: Casework) -> None:
    sealed = keyed(svc)
    ref = sealed.create_case(WF, "lin", household()).ref
    sql(sealed, update(Case).where(Case.ref == ref).values(audit_seal=None))
    assert ("seal", ref) in findings(sealed)


def test_a_case_cannot_be_deleted(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    with pytest.raises(DBAPIError, match="refused"):
        raw(svc, f"DELETE FROM cases WHERE ref = '{ref}'")
    assert svc.get_case(ref).ref == ref


def test_sqlite_refuses_the_delete_even_with_foreign_keys_off(svc: Casework, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the sqlite3 shell case")
    ref = svc.create_case(WF, "lin", household()).ref
    svc.engine.dispose()
    path = db_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    with pytest.raises(sqlite3.DatabaseError, match="refused"):
        conn.execute("DELETE FROM cases WHERE id = 1")
    # an owner who drops the trigger first: the case vanishes, but not without a trace
    conn.execute("DROP TRIGGER cases_no_delete")
    conn.execute("DELETE FROM case_keys WHERE case_id = 1")
    conn.execute("DELETE FROM timers WHERE case_id = 1")
    conn.execute("DELETE FROM cases WHERE id = 1")
    conn.commit()
    conn.close()
    found = findings(svc)
    assert ("deleted", "case id 1") in found
    assert ("deleted", "ZZ-2026") in found
    assert any(ref in d for d in details(svc, "deleted"))


def corrupt_an_index(engine: Engine, path: str) -> None:
    with engine.connect() as conn:
        page_size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        root = conn.exec_driver_sql("SELECT rootpage FROM sqlite_master WHERE name = 'ix_cases_deadline'").scalar_one()
    engine.dispose()
    with open(path, "r+b") as f:
        # the index's cells sit at the end of its page: scramble them, leave the page header
        f.seek(root * page_size - 200)
        f.write(bytes(range(200)))


def test_audit_verify_reports_a_failing_integrity_check(svc: Casework, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("PRAGMA integrity_check is SQLite's")
    for seed in range(1, 4):
        svc.create_case(WF, "lin", household(seed=seed))
    corrupt_an_index(svc.engine, db_url.removeprefix("sqlite:///"))
    report = svc.verify_audit()
    assert not report.ok
    assert "storage" in {v.check for v in report.violations}
    assert not svc.check().ok


def test_every_event_records_the_os_user_and_host_and_the_first_the_workflow(svc: Casework) -> None:
    ref = submitted(svc)
    with svc.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).join(Case, Case.id == AuditEvent.case_id).where(Case.ref == ref)).all()
    contexts = [r.context for r in rows]
    assert all(c["origin"] == {"os_user": getpass.getuser(), "host": socket.gethostname()} for c in contexts)
    assert contexts[0]["workflow"]["name"] == WF and contexts[0]["workflow"]["version"] == 4
    # the context is hashed: changing it breaks the chain
    first = EventRow._make(rows[0])
    assert Event.from_row(ref, first._replace(context={"origin": {"os_user": "root"}})).hash != first.hash


def test_events_written_before_provenance_keep_their_hash() -> None:
    import datetime as dt

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    old = Event(
        "ZZ-1", 1, at, "lin", "clerk", "created", None, None, "apply", None, {"county": [None, "芗城区"]}, "0" * 64
    )
    # the hash the engine computed for this event before events carried a context
    assert old.hash == "21d2516933b10a38493308b626cbbd9cc92a02b896f4de043299607199db4de6"


def test_the_key_comes_from_the_environment_or_a_file_and_must_be_long(tmp_path: Any) -> None:
    assert load_key({}) is None
    assert load_key({"CASEWORK_AUDIT_KEY": "x" * 32}) == b"x" * 32
    path = tmp_path / "audit.key"
    path.write_text("y" * 40 + "\n")
    assert load_key({"CASEWORK_AUDIT_KEY_FILE": str(path)}) == b"y" * 40
    with pytest.raises(InputError, match="at least 32"):
        load_key({"CASEWORK_AUDIT_KEY": "short"})
    with pytest.raises(InputError, match="cannot read the audit key"):
        load_key({"CASEWORK_AUDIT_KEY_FILE": str(tmp_path / "missing")})


def test_a_refused_step_leaves_the_trail_as_it_was(svc: Casework) -> None:
    ref = submitted(svc)
    with pytest.raises(TransitionRefused):
        svc.fire(ref, "grant", "su")
    assert svc.check().ok


def cut_back(svc: Casework, ref: str, facts: dict[str, list[str]]) -> None:
    """What only a table owner can do: remove a case's newest event and roll its row back to match."""
    if svc.engine.dialect.name == "sqlite":
        raw(svc, "DROP TRIGGER audit_events_no_delete")
    else:
        raw(svc, "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
    with svc.engine.begin() as conn:
        case = conn.execute(select(Case).where(Case.ref == ref)).one()
        prev = conn.execute(
            select(AuditEvent).where(AuditEvent.case_id == case.id, AuditEvent.seq == case.audit_seq - 1)
        ).one()
        conn.execute(
            AuditEvent.__table__.delete().where(AuditEvent.case_id == case.id, AuditEvent.seq == case.audit_seq)
        )
        conn.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(state=prev.to_state, version=prev.seq, audit_seq=prev.seq, audit_head=prev.hash, fired_by=facts)
        )


def test_a_checkpoint_proves_a_trail_was_not_cut_back(svc: Casework) -> None:
    sealed = keyed(svc)
    ref = sealed.create_case(WF, "lin", household()).ref
    sealed.fire(ref, "submit", "lin")
    kept = json.dumps(sealed.checkpoint())
    assert sealed.verify_audit(checkpoint=kept).ok
    # roll the case back to before its submission, seal and all: consistent, so only the checkpoint can tell
    with sealed.engine.connect() as conn:
        old_seal = conn.execute(select(Case.audit_seal).where(Case.ref == ref)).scalar_one()
    assert old_seal is not None
    cut_back(sealed, ref, {"@": ["lin"]})
    sql(sealed, update(Case).where(Case.ref == ref).values(audit_seal=Recorder(KEY).seal(ref, 1, _head(sealed, ref))))
    assert sealed.verify_audit().ok  # the trail alone cannot show it
    report = sealed.verify_audit(checkpoint=kept)
    assert not report.ok and ("checkpoint", ref) in {(v.check, v.ref) for v in report.violations}


def _head(svc: Casework, ref: str) -> str:
    with svc.engine.connect() as conn:
        return conn.execute(select(Case.audit_head).where(Case.ref == ref)).scalar_one()


def test_a_checkpoint_changed_after_it_was_made_is_refused(svc: Casework) -> None:
    sealed = keyed(svc)
    sealed.create_case(WF, "lin", household())
    kept = sealed.checkpoint()
    kept["cases"]["ZZ-2026-000001"][0] = 7
    with pytest.raises(InputError, match="MAC does not match"):
        sealed.verify_audit(checkpoint=json.dumps(kept))
    with pytest.raises(InputError, match="not one `casework audit checkpoint` wrote"):
        sealed.verify_audit(checkpoint="{}")


def test_a_case_moved_out_of_publicity_behind_the_engines_back_is_named(svc: Casework) -> None:
    """The trail must show the publicity happened: a case taken to 审批 without a published notice is named."""
    ref = svc.create_case(WF, "lin", household(materials=["申请表", "身份证", "户口簿", "收入证明"])).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    # an end_publicity event appended and the row moved to match: chain, replay and (no key) seal all agree
    with svc.engine.begin() as conn:
        case = conn.execute(select(Case).where(Case.ref == ref)).one()
        last = conn.execute(
            select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.seq.desc()).limit(1)
        ).one()
        forged = Event(
            ref, last.seq + 1, svc.clock.now(), "wu", "reviewer", "fired", "end_publicity", "publicise", "approve",
            None, {}, last.hash,
        )  # fmt: skip
        conn.execute(insert(AuditEvent).values(forged.row(case.id)))
        trail = [
            EventRow._make(r) for r in conn.execute(select(AuditEvent.__table__).where(AuditEvent.case_id == case.id))
        ]
        conn.execute(
            update(Case)
            .where(Case.id == case.id)
            .values(
                state="approve",
                version=forged.seq,
                audit_seq=forged.seq,
                audit_head=forged.hash,
                fired_by=four_eyes_facts(trail),
            )
        )
    report = svc.check()
    assert ("publicity", ref) in {(v.check, v.ref) for v in report.violations}
    assert any("never on a published notice" in v.detail for v in report.violations if v.check == "publicity")
