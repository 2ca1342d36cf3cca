"""The engine service against real databases (SQLite file and PostgreSQL).

After each step the case is read back from the database and compared, so
what is asserted is what was stored, not what the service returned.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import text

from casework.synthetic import SyntheticPeople
from engine import (
    AlreadyExists,
    CaseNotFound,
    Casework,
    CommentRequired,
    ConflictError,
    DuplicateCase,
    GuardFailed,
    InvalidCaseData,
    InvalidTransition,
    MissingFields,
    PermissionDenied,
    RefusedError,
    SameActorForbidden,
    UserNotFound,
    load_definition,
)
from tests.conftest import BUNDLED
from tests.integration.test_publicity_period import through_publicity

WF = "poverty_archive"
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def household(seed: int = 1, county: str = "芗城区", **over: Any) -> dict[str, Any]:
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    data.update(over)
    return data


def stored(svc: Casework, ref: str) -> dict[str, Any]:
    """Everything a refusal must leave untouched: the case and its trail."""
    return {
        "case": svc.get_case(ref).to_json(),
        "history": [r.to_json() for r in svc.history(ref)],
    }


def file_through(svc: Casework, ref: str, until: str = "filed") -> None:
    steps = [
        ("submit", "lin", "review"),
        ("pass_review", "wu", "publicise"),
        ("end_publicity", "wu", "approve"),
        ("grant", "su", "enter"),
        ("record", "lin", "filed"),
    ]
    for trigger, actor, state in steps:
        if svc.get_case(ref).state == until:
            return
        through_publicity(svc, ref)  # publicity ends only after a published list's period
        svc.fire(ref, trigger, actor)
        assert svc.get_case(ref).state == state


def test_happy_path_is_stored_step_by_step(svc: Casework, clock: Any) -> None:
    view = svc.create_case(WF, "lin", household())
    assert view.ref == "ZZ-2026-000001"
    assert view.state == "apply" and view.version == 1
    assert view.created_at == clock.now()
    expected = ["review", "publicise", "approve", "enter", "filed"]
    for (trigger, actor), state in zip(
        [("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "wu"), ("grant", "su"), ("record", "lin")],
        expected,
        strict=True,
    ):
        clock.advance(hours=1)
        if trigger == "end_publicity":  # on a published list, after its period
            through_publicity(svc, view.ref)
        returned = svc.fire(view.ref, trigger, actor)
        reloaded = svc.get_case(view.ref)
        assert returned.to_json() == reloaded.to_json()
        assert reloaded.state == state
        assert reloaded.updated_at == clock.now()
    history = svc.history(view.ref)
    assert [h.seq for h in history] == [1, 2, 3, 4, 5, 6, 7]
    assert [h.trigger for h in history] == [None, "submit", "pass_review", None, "end_publicity", "grant", "record"]
    assert [(h.actor, h.role) for h in history] == [
        ("lin", "clerk"),
        ("lin", "clerk"),
        ("wu", "reviewer"),
        ("system", None),
        ("wu", "reviewer"),
        ("su", "approver"),
        ("lin", "clerk"),
    ]
    assert history[-1].to_state == "filed" and history[-1].from_state == "enter"
    # filed is not final since version 3 (an annual review's exit takes it to exited), but waits for no one
    assert not svc.get_case(view.ref).final and svc.waiting_for("lin").items == []
    assert svc.verify_audit().ok


def test_refs_are_sequential_per_year(svc: Casework, clock: Any) -> None:
    refs = [svc.create_case(WF, "lin", household(seed=i)).ref for i in range(3)]
    assert refs == ["ZZ-2026-000001", "ZZ-2026-000002", "ZZ-2026-000003"]
    clock.set(dt.datetime(2027, 1, 2, 9, tzinfo=dt.UTC))
    assert svc.create_case(WF, "lin", household(seed=9)).ref == "ZZ-2027-000001"


@pytest.mark.parametrize(
    ("trigger", "actor", "kwargs", "error", "words"),
    [
        ("pass_review", "lin", {}, PermissionDenied, ["lin (clerk)", "needs role reviewer"]),
        ("submit", "chen", {}, PermissionDenied, ["chen covers 龙文区, not 芗城区"]),
        ("pass_review", "ye", {}, SameActorForbidden, ["ye fired submit", "four-eyes"]),
        ("return", "wu", {}, CommentRequired, ["return needs a comment"]),
        ("grant", "su", {}, InvalidTransition, ["is in review", "grant applies only from approve"]),
        ("pass_reviw", "wu", {}, InvalidTransition, ["did you mean 'pass_review'"]),
        ("pass_review", "nobody", {}, UserNotFound, ["no user 'nobody'"]),
        ("pass_review", "system", {}, PermissionDenied, ["'system' is the scheduler's own identity"]),
    ],
)
def test_refusals_change_nothing(
    svc: Casework, trigger: str, actor: str, kwargs: dict[str, Any], error: type[RefusedError], words: list[str]
) -> None:
    ref = svc.create_case(WF, "ye", household()).ref
    svc.fire(ref, "submit", "ye")
    before = stored(svc, ref)
    with pytest.raises(error) as info:
        svc.fire(ref, trigger, actor, **kwargs)
    for w in words:
        assert w in str(info.value)
    assert stored(svc, ref) == before


def test_missing_fields_are_listed(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", {"applicant_name": "陈志强", "county": "芗城区"}).ref
    before = stored(svc, ref)
    with pytest.raises(MissingFields) as info:
        svc.fire(ref, "submit", "lin")
    assert info.value.missing == ["id_number", "household_type", "household_size", "income_per_capita", "cause"]
    assert "id_number (公民身份号码)" in str(info.value)
    assert stored(svc, ref) == before


def test_guard_refusal_quotes_the_guard(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household(materials=["申请表"])).ref
    svc.fire(ref, "submit", "lin")
    before = stored(svc, ref)
    with pytest.raises(GuardFailed, match=r"case\.materials \| length == 4"):
        svc.fire(ref, "pass_review", "wu")
    assert stored(svc, ref) == before
    # the data is the clerk's to fix (the reviewer may change nothing in review): returned, completed, resubmitted
    svc.fire(ref, "return", "wu", comment="缺少户口簿、收入证明，请补正")
    svc.update_case(ref, "lin", {"materials": ALL_MATERIALS})
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    assert svc.get_case(ref).state == "publicise"


def test_four_eyes_holds_for_grant_even_with_star_scope(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "xu")  # xu: approver + reviewer, scope *
    through_publicity(svc, ref)
    svc.fire(ref, "end_publicity", "wu")
    with pytest.raises(SameActorForbidden, match="xu fired pass_review"):
        svc.fire(ref, "grant", "xu")
    svc.fire(ref, "grant", "su")


def test_four_eyes_covers_every_earlier_submitter(svc: Casework) -> None:
    svc.add_user("ye2", "叶二", ["clerk", "reviewer"], ["芗城区"])
    ref = svc.create_case(WF, "ye", household()).ref
    svc.fire(ref, "submit", "ye")
    svc.fire(ref, "return", "wu", comment="补正")
    svc.fire(ref, "submit", "ye2")
    for person in ("ye", "ye2"):
        with pytest.raises(SameActorForbidden):
            svc.fire(ref, "pass_review", person)


def test_actions_list_what_the_user_may_do_now(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    assert [a.trigger for a in svc.get_case(ref, "lin").actions or ()] == ["submit", "withdraw"]
    assert [a.trigger for a in svc.get_case(ref, "wu").actions or ()] == ["withdraw"]
    assert svc.get_case(ref, "su").actions == ()
    svc.fire(ref, "submit", "lin")
    actions = {a.trigger: a for a in svc.get_case(ref, "wu").actions or ()}
    assert set(actions) == {"pass_review", "return", "reject", "withdraw"}
    assert actions["return"].comment_required and not actions["pass_review"].comment_required
    with pytest.raises(PermissionDenied):
        svc.get_case(ref, "chen")


def test_one_open_archive_per_id_number(svc: Casework) -> None:
    data = household()
    first = svc.create_case(WF, "lin", data).ref
    with pytest.raises(DuplicateCase, match=first):
        svc.create_case(WF, "lin", data)
    assert len(svc.list_cases()) == 1
    # a withdrawn archive frees the number; a filed one would not
    svc.fire(first, "withdraw", "lin", comment="主动撤回")
    second = svc.create_case(WF, "lin", data).ref
    file_through(svc, second)
    with pytest.raises(DuplicateCase, match=second):
        svc.create_case(WF, "lin", data)


def test_update_is_audited_old_to_new_and_masks_pii(svc: Casework) -> None:
    data = household(applicant_name="陈志强", household_size=3)
    ref = svc.create_case(WF, "lin", data).ref
    svc.update_case(ref, "lin", {"household_size": "4", "applicant_name": "陈志刚"})
    last = svc.history(ref)[-1]
    assert last.action == "updated"
    assert last.changes == {"applicant_name": ["陈*强", "陈*刚"], "household_size": [3, 4]}
    assert svc.get_case(ref).data["applicant_name"] == "陈志刚"  # stored in full
    first = svc.history(ref)[0].changes
    assert first["id_number"][1] == data["id_number"][:6] + "********" + data["id_number"][-4:]
    # the same values again: no change, no event
    svc.update_case(ref, "lin", {"household_size": 4})
    assert len(svc.history(ref)) == 2


def test_invalid_data_is_refused_per_field_and_nothing_stored(svc: Casework) -> None:
    with pytest.raises(InvalidCaseData) as info:
        svc.create_case(
            WF,
            "lin",
            household(id_number="350602198502310013", household_size="abc", income_per_capita=612.5, countyy="x"),
        )
    fields = [p.field for p in info.value.problems]
    assert fields == ["id_number", "household_size", "income_per_capita", "countyy"]
    assert "did you mean 'county'" in str(info.value)
    assert svc.list_cases() == []


def test_sql_metacharacters_are_stored_verbatim(svc: Casework) -> None:
    nasty = "'; DROP TABLE cases; --"
    ref = svc.create_case(WF, "lin", household(cause=nasty)).ref
    assert svc.get_case(ref).data["cause"] == nasty
    with pytest.raises(CaseNotFound):
        svc.get_case("' OR 1=1 --")


def test_scope_filters_lists(svc: Casework) -> None:
    a = svc.create_case(WF, "lin", household(seed=1, county="芗城区")).ref
    b = svc.create_case(WF, "chen", household(seed=2, county="龙文区")).ref
    assert [c.ref for c in svc.list_cases(actor="lin")] == [a]
    assert [c.ref for c in svc.list_cases(actor="chen")] == [b]
    assert [c.ref for c in svc.list_cases(actor="su")] == [a, b]
    svc.fire(a, "submit", "lin")
    assert [c.ref for c in svc.list_cases(state="review")] == [a]


def test_new_version_leaves_cases_in_flight_on_theirs(svc: Casework) -> None:
    old = svc.create_case(WF, "lin", household(seed=1)).ref
    source = BUNDLED.read_text(encoding="utf-8")
    changed = source.replace("version: 4", "version: 5").replace(
        '"case.materials | length == 4"', '"case.materials | length >= 3"'
    )
    templates = dict(svc.workflow(WF).templates.sources)
    with pytest.raises(AlreadyExists, match="version: 5"):
        svc.load_workflow(load_definition(source.replace("max: 20", "max: 30"), "changed.yaml", templates))
    info, created = svc.load_workflow(load_definition(changed, "v5.yaml", templates))
    assert created and info.version == 5
    assert svc.load_workflow(load_definition(changed, "v5.yaml", templates))[1] is False
    new = svc.create_case(WF, "lin", household(seed=2, materials=["申请表", "身份证", "户口簿"])).ref
    assert svc.get_case(old).workflow_version == 4
    assert svc.get_case(new).workflow_version == 5
    svc.update_case(old, "lin", {"materials": ["申请表", "身份证", "户口簿"]})
    for ref in (old, new):
        svc.fire(ref, "submit", "lin")
    with pytest.raises(GuardFailed):
        svc.fire(old, "pass_review", "wu")  # version 4 still needs all four
    svc.fire(new, "pass_review", "wu")


def _race(svc: Casework, ref: str, n: int, **kwargs: Any) -> list[BaseException | None]:
    barrier = threading.Barrier(n)
    results: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            svc.fire(ref, "submit", "lin", **kwargs)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_clerks_at_once_exactly_one_wins(svc: Casework) -> None:
    for round_ in range(5):
        ref = svc.create_case(WF, "lin", household(seed=100 + round_)).ref
        results = _race(svc, ref, 2, expected_version=1)
        winners = [r for r in results if r is None]
        losers = [r for r in results if r is not None]
        assert len(winners) == 1, results
        assert all(isinstance(r, ConflictError) for r in losers), losers
        case = svc.get_case(ref)
        assert case.state == "review" and case.version == 2
        assert [h.trigger for h in svc.history(ref)] == [None, "submit"]


def test_many_at_once_without_a_seen_version(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    results = _race(svc, ref, 6)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, (ConflictError, InvalidTransition)) for r in results if r is not None), results
    assert [h.trigger for h in svc.history(ref)] == [None, "submit"]
    assert svc.verify_audit(ref).ok


def test_audit_table_refuses_update_and_delete(svc: Casework, engine: Any, backend: str) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    statements = ["UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"]
    if backend == "postgresql":
        statements.append("TRUNCATE audit_events CASCADE")
    for sql in statements:
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text(sql))
    assert svc.verify_audit(ref).ok and len(svc.history(ref)) == 1


def _disable_audit_triggers(conn: Any, backend: str) -> None:
    if backend == "sqlite":
        conn.execute(text("DROP TRIGGER audit_events_no_update"))
        conn.execute(text("DROP TRIGGER audit_events_no_delete"))
    else:
        conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))


@pytest.mark.parametrize("tamper", ["edit", "delete_middle", "delete_last", "reorder", "edit_changes"])
def test_verify_detects_tampering(svc: Casework, engine: Any, backend: str, tamper: str) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    file_through(svc, ref, until="approve")  # events 1..5 (4: publicised)
    other = svc.create_case(WF, "lin", household(seed=2)).ref
    assert svc.verify_audit().ok
    with engine.begin() as conn:
        _disable_audit_triggers(conn, backend)
        case_id = conn.execute(text("SELECT id FROM cases WHERE ref = :r"), {"r": ref}).scalar_one()
        p = {"c": case_id}
        if tamper == "edit":
            conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE case_id = :c AND seq = 3"), p)
        elif tamper == "edit_changes":
            conn.execute(text("UPDATE audit_events SET comment = 'backdated' WHERE case_id = :c AND seq = 2"), p)
        elif tamper == "delete_middle":
            conn.execute(text("DELETE FROM audit_events WHERE case_id = :c AND seq = 2"), p)
        elif tamper == "delete_last":
            conn.execute(text("DELETE FROM audit_events WHERE case_id = :c AND seq = 5"), p)
        elif tamper == "reorder":
            conn.execute(text("UPDATE audit_events SET seq = 100 WHERE case_id = :c AND seq = 2"), p)
            conn.execute(text("UPDATE audit_events SET seq = 2 WHERE case_id = :c AND seq = 3"), p)
            conn.execute(text("UPDATE audit_events SET seq = 3 WHERE case_id = :c AND seq = 100"), p)
    report = svc.verify_audit()
    assert not report.ok
    assert [b.ref for b in report.breaks] == [ref]
    brk = report.breaks[0]
    expected_seq = {"edit": 3, "edit_changes": 2, "delete_middle": 3, "delete_last": None, "reorder": 3}[tamper]
    assert brk.seq == expected_seq, str(brk)
    assert svc.verify_audit(other).ok


def test_verify_one_unknown_case(svc: Casework) -> None:
    with pytest.raises(CaseNotFound):
        svc.verify_audit("ZZ-2026-999999")


def test_one_machine_per_version_and_no_resident_cases(svc: Casework) -> None:
    refs = [svc.create_case(WF, "lin", household(seed=i)).ref for i in range(20)]
    for ref in refs:
        svc.fire(ref, "submit", "lin")
    loaded = svc.catalog.loaded()
    assert len(loaded) == 1  # built once for the version, not per case
    assert loaded[0].machine.models == []  # cases are bound per call, never registered


def test_unknown_workflow_suggests_a_near_name(svc: Casework) -> None:
    from engine import WorkflowNotFound

    with pytest.raises(WorkflowNotFound, match="did you mean 'poverty_archive'"):
        svc.create_case("poverty_archiv", "lin", household())
