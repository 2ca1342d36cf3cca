"""``Casework.check`` / ``casework check``: the invariants every stored case satisfies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from db import AuditEvent, Case, CaseKey, OutboxMessage, Timer
from engine import Casework
from tests.e2e.runner import Result, casework
from tests.integration.test_service import file_through, household

WF = "poverty_archive"


def life(svc: Casework) -> dict[str, str]:
    """Cases in every kind of place: waiting with timers, in publicity (notice), filed, withdrawn."""
    refs = {}
    for n, until in enumerate(("apply", "review", "publicise", "approve", "filed")):
        ref = svc.create_case(WF, "lin", household(seed=n + 1)).ref
        file_through(svc, ref, until)
        refs[until] = ref
    gone = svc.create_case(WF, "lin", household(seed=9)).ref
    svc.fire(gone, "withdraw", "lin", comment="申请人撤回")
    refs["withdrawn"] = gone
    return refs


def case_id(svc: Casework, ref: str) -> int:
    with svc.engine.connect() as conn:
        return conn.execute(select(Case.id).where(Case.ref == ref)).scalar_one()


def sql(svc: Casework, statement: Any) -> None:
    with svc.engine.begin() as conn:
        conn.execute(statement)


def found(svc: Casework) -> set[tuple[str, str]]:
    report = svc.check()
    assert not report.ok
    return {(v.check, v.ref) for v in report.violations}


def test_a_database_written_only_by_the_engine_passes(svc: Casework) -> None:
    life(svc)
    report = svc.check()
    assert report.ok, report.violations
    assert report.cases == 6 and report.events > 6


def test_a_state_changed_behind_the_engines_back_is_found(svc: Casework) -> None:
    refs = life(svc)
    sql(svc, update(Case).where(Case.ref == refs["review"]).values(state="approve"))
    assert ("state", refs["review"]) in found(svc)


def test_an_event_appended_out_of_sequence_is_found(svc: Casework) -> None:
    refs = life(svc)
    cid = case_id(svc, refs["apply"])
    with svc.engine.connect() as conn:
        first = conn.execute(select(AuditEvent).where(AuditEvent.case_id == cid)).first()
    row = {k: v for k, v in first._mapping.items() if k != "id"}
    sql(svc, insert(AuditEvent).values({**row, "seq": 3}))  # a gap: 1, 3
    assert {("sequence", refs["apply"]), ("state", refs["apply"])} <= found(svc)


def test_missing_and_stale_timers_are_found(svc: Casework) -> None:
    refs = life(svc)
    sql(svc, delete(Timer).where(Timer.case_id == case_id(svc, refs["review"])))
    filed = case_id(svc, refs["filed"])
    with svc.engine.connect() as conn:
        old = conn.execute(select(Timer.id).where(Timer.case_id == filed)).scalars().first()
    sql(svc, update(Timer).where(Timer.id == old).values(status="pending"))
    assert {("timers", refs["review"]), ("timers", refs["filed"])} <= found(svc)


def test_outbox_rows_without_an_event_and_events_without_their_rows_are_found(svc: Casework) -> None:
    refs = life(svc)
    waiting = case_id(svc, refs["review"])
    with svc.engine.connect() as conn:
        message = conn.execute(select(OutboxMessage).where(OutboxMessage.case_id == waiting)).first()
    sql(svc, delete(OutboxMessage).where(OutboxMessage.id == message.id))
    ghost = {k: v for k, v in message._mapping.items() if k != "id"}
    sql(svc, insert(OutboxMessage).values({**ghost, "key": "ghost", "event_seq": 99}))
    assert ("outbox", refs["review"]) in found(svc)
    assert sum(1 for v in svc.check().violations if v.ref == refs["review"]) == 2  # the gap and the ghost


def test_unclaimed_and_void_keys_are_found(svc: Casework) -> None:
    refs = life(svc)
    sql(svc, delete(CaseKey).where(CaseKey.case_id == case_id(svc, refs["approve"])))
    gone = refs["withdrawn"]
    with svc.engine.connect() as conn:
        data = conn.execute(select(Case.data).where(Case.ref == gone)).scalar_one()
    sql(
        svc,
        insert(CaseKey).values(workflow=WF, field="id_number", value=data["id_number"], case_id=case_id(svc, gone)),
    )
    assert {("keys", refs["approve"]), ("keys", gone)} <= found(svc)


def test_the_command_exits_1_with_a_precise_report(svc: Casework, db_url: str) -> None:
    refs = life(svc)

    def run() -> Result:
        return casework(db_url, "check")  # in this process: what is tested is the report, not start-up

    good = run()
    assert good.rc == 0 and "all invariants hold: 6 cases" in good.out, good
    sql(svc, update(Case).where(Case.ref == refs["review"]).values(state="approve"))
    bad = run()
    assert bad.rc == 1 and bad.out == "", bad
    assert f"VIOLATED state: {refs['review']}: the case is in approve, its last event moved it to review" in bad.err
    assert f"VIOLATED replay: {refs['review']}: state: stored 'approve', the trail says 'review'" in bad.err
    assert "invariants violated in 6 cases: 1 replay, 1 state, 3 timers" in bad.err


def test_a_state_with_a_bare_deadline_needs_no_timers(svc: Casework) -> None:
    """annual_review's states have a deadline and nothing else: no timer rows, and check must not ask for any."""
    from engine import load_definition_file
    from tests.conftest import ROOT

    svc.load_workflow(load_definition_file(ROOT / "workflows" / "annual_review.yaml"))
    svc.create_case("annual_review", "lin", {"archive_ref": "ZZ-2026-000001", "county": "芗城区"})
    report = svc.check()
    assert report.ok, report.violations
