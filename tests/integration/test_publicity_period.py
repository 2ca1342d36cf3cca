"""Publicity (公示) really happens, for its full period: issue 11, section B, on both databases.

A case's publicity starts when it is on a *published* 公示名单 (rendered and
stored then, with a ``publicised`` event in each listed case's trail); its
period is the notice's; until the period is over the case leaves publicity
only by an upheld objection, a withdrawal or a rejection, whoever asks (the
scheduler too); objections are taken until the period's last day ends; a
notice cannot be dated in the past. The clock is the engine's ``FixedClock``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update

from casework.synthetic import SyntheticPeople
from db import Case, NoticeCase, Timer
from engine import (
    Casework,
    CaseworkError,
    FixedClock,
    InputError,
    RefusedError,
    TransitionRefused,
    load_definition,
)
from engine.access import SYSTEM
from engine.store.database import VersionPin
from notifications.notices import publish_list
from tests.conftest import BUNDLED

WF = "poverty_archive"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def reviewed(svc: Casework, seed: int, county: str = "芗城区") -> str:
    """A case through review: in publicity (公示), awaiting publication."""
    data = SyntheticPeople(seed).household()
    data.update(county=county, materials=list(ALL_MATERIALS))
    clerk = {"芗城区": "lin", "龙文区": "chen"}[county]
    ref = svc.create_case(WF, clerk, data).ref
    svc.fire(ref, "submit", clerk)
    svc.fire(ref, "pass_review", "wu")
    return ref


def through_publicity(svc: Casework, ref: str) -> None:
    """Take a case in publicity through its period: publish its county's list if it awaits one, then move
    the engine's clock to the period's end (for tests about what comes after; ``svc.clock`` must be a
    :class:`FixedClock`). A case not in its workflow's publicity state is left alone.
    """
    clock = svc.clock
    assert isinstance(clock, FixedClock)
    case = svc.get_case(ref)
    wf = svc.workflow(case.workflow)
    if wf.publicity is None or case.state != wf.publicity.state:
        return
    if case.deadline is None:
        assert case.scope is not None
        publish_list(svc, case.workflow, case.scope)
        case = svc.get_case(ref)
    assert case.deadline is not None, f"{ref} was not published"
    clock.set(max(clock.now(), case.deadline))


def stored(svc: Casework, ref: str) -> dict[str, Any]:
    return {
        "case": svc.get_case(ref).to_json(),
        "history": [r.to_json() for r in svc.history(ref)],
        "timers": [t.to_json() for t in svc.timers(status=None) if t.case_ref == ref],
    }


def refused(call: Any, code: str, *words: str) -> CaseworkError:
    with pytest.raises(CaseworkError) as info:
        call()
    assert info.value.code == code, info.value
    for w in words:
        assert w in info.value.message, info.value.message
    return info.value


def as_system(svc: Casework, ref: str, trigger: str) -> Any:
    """The step as the scheduler takes it (the ``system`` actor), outside any timer."""
    return svc.db.transaction(lambda conn: svc.steps.fire(conn, ref, trigger, SYSTEM, None, None, VersionPin()))


# ------------------------------------------------ end_publicity seconds after pass_review


def test_end_publicity_seconds_after_pass_review_is_refused_whoever_asks(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-07T10:00"))
    ref = reviewed(svc, 1)
    clock.advance(seconds=5)
    before = stored(svc, ref)
    # not on a published notice yet: its publicity has not started
    refused(lambda: svc.fire(ref, "end_publicity", "wu"), "not_publicised", "尚未公示", "公示名单")
    refused(lambda: as_system(svc, ref, "end_publicity"), "not_publicised")
    assert stored(svc, ref) == before
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and view.cases == (ref,)
    clock.advance(seconds=5)
    before = stored(svc, ref)
    for call in (
        lambda: svc.fire(ref, "end_publicity", "wu"),
        lambda: svc.fire(ref, "end_publicity", "xu"),  # approver and reviewer
        lambda: as_system(svc, ref, "end_publicity"),
    ):
        error = refused(call, "publicity_not_over", "公示期至 2026-12-14 止", "whoever asks")
        assert error.facts["period_end"] == "2026-12-14"
    bulk = svc.fire_many([ref], "end_publicity", "wu")
    assert bulk.fired == [] and [r.code for r in bulk.refused] == ["publicity_not_over"]
    assert stored(svc, ref) == before  # a refusal changes nothing
    # the scheduler has nothing due before the period ends, and a sweep then fires nothing
    clock.set(at("2026-12-14T23:59:59"))
    assert svc.sweep().fired == 0
    assert svc.get_case(ref).state == "publicise"
    # an upheld objection and a withdrawal may still take it out early
    other = reviewed(svc, 2)
    publish_list(svc, WF, "芗城区")
    assert svc.fire(other, "withdraw", "lin", comment="申请人撤回").state == "withdrawn"


# ------------------------------------------------ a notice cannot be dated in the past


def test_a_notice_dated_in_the_past_is_refused_and_a_future_one_starts_then(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-07T10:00"))
    ref = reviewed(svc, 3)
    before = stored(svc, ref)
    for past in (dt.date(2020, 1, 1), dt.date(2026, 12, 6)):
        with pytest.raises(InputError) as info:
            publish_list(svc, WF, "芗城区", past)
        assert info.value.code == "notice_backdated"
        assert f"{past.isoformat()} is before today, 2026-12-07" in info.value.message
        assert info.value.facts == {"workflow": WF, "date": past.isoformat(), "today": "2026-12-07"}
    assert svc.notices() == [] and stored(svc, ref) == before
    # the day is the workflow's: at 23:30 UTC on Dec 6 it is already Dec 7 in Shanghai
    clock.set(dt.datetime(2026, 12, 6, 23, 30, tzinfo=dt.UTC))
    refused(lambda: publish_list(svc, WF, "芗城区", dt.date(2026, 12, 6)), "notice_backdated")
    # a later date is allowed: the period starts then, and the case stays until it is over
    view = publish_list(svc, WF, "芗城区", dt.date(2026, 12, 10))
    assert view is not None
    assert (view.period_start, view.period_end) == (dt.date(2026, 12, 10), dt.date(2026, 12, 17))
    clock.set(at("2026-12-15T10:00"))
    refused(lambda: svc.fire(ref, "end_publicity", "wu"), "publicity_not_over", "公示期至 2026-12-17 止")
    clock.set(at("2026-12-18T00:00"))
    assert svc.sweep().fired == 1
    assert svc.get_case(ref).state == "approve"


# ------------------------------------------------ the list's period is the engine's


def test_the_published_period_is_the_engines_objections_and_automatic_end(
    svc: Casework, clock: FixedClock, engine: Any
) -> None:
    # the case: in publicity since Dec 5, on a list published Dec 7 (period Dec 7 – Dec 14)
    clock.set(at("2026-12-05T10:00"))
    ref = reviewed(svc, 4)
    assert [t for t in svc.timers() if t.case_ref == ref] == []  # no automatic end before publication
    clock.set(at("2026-12-07T09:30"))
    view = publish_list(svc, WF, "芗城区")
    assert view is not None
    assert (view.period_start, view.period_end) == (dt.date(2026, 12, 7), dt.date(2026, 12, 14))
    assert "公示期：2026年12月7日至2026年12月14日（7 天）。" in view.html
    (timer,) = [t for t in svc.timers() if t.case_ref == ref]
    assert (timer.kind, timer.due_at) == ("timeout", at("2026-12-15T00:00"))
    case = svc.get_case(ref)
    assert case.deadline == at("2026-12-15T00:00") and case.time_left == "7 days left"
    (linked,) = [h for h in svc.history(ref) if h.action == "publicised"]
    assert linked.changes == {
        "notice": [None, view.number],
        "notice_sha256": [None, view.sha256],
        "period": [None, ["2026-12-07", "2026-12-14"]],
    }
    assert linked.at == at("2026-12-07T09:30") and linked.actor == "system"
    # Dec 12 (where the old timer from entry fell) and Dec 13: still in publicity, objections taken
    clock.set(at("2026-12-12T12:00"))
    assert svc.sweep().fired == 0 and svc.get_case(ref).state == "publicise"
    clock.set(at("2026-12-13T15:00"))
    first = svc.add_objection(ref, "lin", "来电反映有经营性收入", "电话")
    svc.resolve_objection(ref, first.id, "wu", "dismissed", "经核实无经营性收入")
    # the last day, to its last second: still taken (and it holds the end while open)
    clock.set(at("2026-12-14T23:59:59"))
    last = svc.add_objection(ref, "lin", "来访反映有房产", "来访")
    svc.resolve_objection(ref, last.id, "wu", "dismissed", "房产为父母所有")
    assert svc.sweep().fired == 0
    # from 24:00 on the last day: refused, with the period in the message; the automatic end fires
    clock.set(at("2026-12-15T00:00"))
    before = stored(svc, ref)
    error = refused(lambda: svc.add_objection(ref, "lin", "来信", "来信"), "publicity_over", "公示期至 2026-12-14 止")
    assert isinstance(error, RefusedError) and error.facts == {"case": ref, "period_end": "2026-12-14"}
    assert stored(svc, ref) == before
    assert svc.sweep().fired == 1
    last_event = svc.history(ref)[-1]
    assert (last_event.actor, last_event.trigger, last_event.to_state) == ("system", "end_publicity", "approve")
    assert svc.check().ok


def test_a_working_day_period_is_counted_on_the_calendar(svc: Casework, clock: FixedClock) -> None:
    source = BUNDLED.read_text(encoding="utf-8").replace("version: 4", "version: 5")
    source = source.replace("timeout: {after: 7 days,", "timeout: {after: 5 working days,")
    templates = dict(svc.workflow(WF).templates.sources)
    svc.load_workflow(load_definition(source, "working.yaml", templates))
    clock.set(at("2026-09-29T10:00"))  # 国庆: Oct 1-7 are rest days, Sat Oct 10 a working day
    ref = reviewed(svc, 5)
    view = publish_list(svc, WF, "芗城区")
    assert view is not None
    # Sep 30, Oct 8, 9, 10 (调休), 12: the 5th working day after Sep 29
    assert (view.period_start, view.period_end) == (dt.date(2026, 9, 29), dt.date(2026, 10, 12))
    assert "（5 个工作日）" in view.html
    clock.set(at("2026-10-11T10:00"))
    refused(lambda: svc.fire(ref, "end_publicity", "wu"), "publicity_not_over", "公示期至 2026-10-12 止")
    svc.add_objection(ref, "lin", "来电", "电话")  # Oct 11 is a Sunday inside the period: taken
    clock.set(at("2026-10-13T00:00"))
    refused(lambda: svc.add_objection(ref, "lin", "来电", "电话"), "publicity_over")


def test_a_calendar_period_ending_on_a_rest_day_ends_on_the_next_working_day(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-06T10:00"))  # a Sunday; 7 days on is Sunday Dec 13
    reviewed(svc, 6)
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and view.period_end == dt.date(2026, 12, 14)  # 民法典第二百零三条


# ------------------------------------------------ never publicised, never approved


def test_a_case_never_on_a_published_notice_cannot_be_approved(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-11-02T09:00"))
    ref = reviewed(svc, 7)
    clock.set(at("2027-03-01T09:00"))  # months later, still on no list
    assert svc.sweep().fired == 0
    before = stored(svc, ref)
    for call in (lambda: svc.fire(ref, "end_publicity", "wu"), lambda: as_system(svc, ref, "end_publicity")):
        refused(call, "not_publicised", "has not been on a published notice")
    refused(lambda: svc.fire(ref, "grant", "su"), "wrong_state")  # approval needs publicity's end first
    assert stored(svc, ref) == before
    assert svc.get_case(ref).state == "publicise"
    # an automatic end left behind from before publication could exist only in an old database: discarded
    with svc.engine.begin() as conn:
        case_id = conn.execute(select(Case.id).where(Case.ref == ref)).scalar_one()
        entered = conn.execute(select(Case.entered_at).where(Case.id == case_id)).scalar_one()
        conn.execute(
            Timer.__table__.insert().values(
                case_id=case_id, kind="timeout", state="publicise", entered_at=entered, due_at=entered,
                provisional=False, payload={"fire": "end_publicity", "held_to": None, "held_template": "timeout_held"},
                status="pending", created_at=entered,
            )
        )  # fmt: skip
    report = svc.sweep()
    assert (report.fired, report.discarded) == (0, 1)
    assert svc.get_case(ref).state == "publicise"


# ------------------------------------------------ an upheld objection: a new notice, a new full period


def test_an_upheld_objection_means_a_new_notice_and_a_new_full_period(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-01T09:00"))
    ref = reviewed(svc, 8)
    first = publish_list(svc, WF, "芗城区")
    assert first is not None and first.period_end == dt.date(2026, 12, 8)
    clock.set(at("2026-12-03T10:00"))
    objection = svc.add_objection(ref, "lin", "群众来电反映其家庭有经营性收入", "电话")
    svc.resolve_objection(ref, objection.id, "wu", "upheld", "经入户核实，重新审核")  # during the period
    assert svc.get_case(ref).state == "review"
    assert [t.status for t in svc.timers(status=None) if t.case_ref == ref and t.kind == "timeout"] == ["cancelled"]
    clock.set(at("2026-12-04T10:00"))
    svc.fire(ref, "pass_review", "wu", comment="核减后仍符合条件")
    case = svc.get_case(ref)
    assert case.state == "publicise" and case.deadline is None  # awaiting a new notice
    clock.set(at("2026-12-09T10:00"))  # after the first notice's period: that one counts no more
    refused(lambda: svc.fire(ref, "end_publicity", "wu"), "not_publicised")
    assert svc.sweep().fired == 0
    second = publish_list(svc, WF, "芗城区")
    assert second is not None and second.number != first.number and second.cases == (ref,)
    assert (second.period_start, second.period_end) == (dt.date(2026, 12, 9), dt.date(2026, 12, 16))
    clock.set(at("2026-12-16T20:00"))
    refused(lambda: svc.fire(ref, "end_publicity", "wu"), "publicity_not_over", "公示期至 2026-12-16 止")
    svc.add_objection(ref, "lin", "再次来电", "电话")  # the new period takes objections to its end
    open_one = svc.objections(ref)[-1]
    svc.resolve_objection(ref, open_one.id, "wu", "dismissed", "不成立")
    clock.set(at("2026-12-17T00:00"))
    assert svc.fire(ref, "end_publicity", "wu").state == "approve"  # after the period a reviewer may end it
    numbers = [h.changes["notice"][1] for h in svc.history(ref) if h.action == "publicised"]
    assert numbers == [first.number, second.number]
    assert svc.check().ok and svc.verify_audit(ref).ok


# ------------------------------------------------ publishing: once, from the data as it then is


def test_a_list_is_rendered_once_from_the_data_at_publication(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-07T09:00"))
    refs = [reviewed(svc, 20 + i) for i in range(3)]
    view = publish_list(svc, WF, "芗城区")
    assert view is not None and view.cases == tuple(refs)
    assert publish_list(svc, WF, "芗城区") is None  # nothing awaits publication: a no-op
    clock.advance(days=1)
    again = svc.notice(view.number)
    assert (again.html, again.sha256) == (view.html, view.sha256)  # stored as published, never re-rendered
    for ref in refs:
        events = [h.action for h in svc.history(ref)]
        assert events[-1] == "publicised" and events.count("publicised") == 1


# ------------------------------------------------ casework check agrees


def test_check_finds_a_period_or_a_listing_changed_behind_the_engines_back(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-07T09:00"))
    moved, waiting = (reviewed(svc, 30 + i) for i in range(2))
    view = publish_list(svc, WF, "芗城区")
    assert view is not None
    awaiting, smuggled = (reviewed(svc, 40 + i) for i in range(2))
    assert svc.check().ok, svc.check().violations
    with svc.engine.begin() as conn:
        conn.execute(update(Case).where(Case.ref == moved).values(deadline_at=at("2026-12-09T00:00")))
        conn.execute(update(Case).where(Case.ref == awaiting).values(deadline_at=at("2026-12-09T00:00")))
        case_id = conn.execute(select(Case.id).where(Case.ref == smuggled)).scalar_one()
        conn.execute(NoticeCase.__table__.insert().values(notice_id=view.id, case_id=case_id, kind="list", position=9))
    problems = {(v.check, v.ref): v.detail for v in svc.check().violations}
    assert set(problems) == {("notices", moved), ("notices", awaiting), ("notices", smuggled)}
    assert "publicised until 2026-12-14" in problems[("notices", moved)]
    assert "on no published notice" in problems[("notices", awaiting)]
    assert f"listed on notice {view.number}, but its trail does not record it" in problems[("notices", smuggled)]
    assert waiting not in {ref for _, ref in problems}


def test_the_refusals_say_what_would_be_right(svc: Casework, clock: FixedClock) -> None:
    clock.set(at("2026-12-07T10:00"))
    ref = reviewed(svc, 50)
    error = refused(lambda: svc.fire(ref, "end_publicity", "wu"), "not_publicised")
    assert isinstance(error, TransitionRefused)
    assert error.facts == {
        "case": ref,
        "state": "publicise",
        "trigger": "end_publicity",
        "publicity_state": "publicise",
    }
    assert "芗城区" in error.message
    publish_list(svc, WF, "芗城区")
    error = refused(lambda: svc.fire(ref, "end_publicity", "wu"), "publicity_not_over")
    assert "Before then only withdraw, uphold_objection" in error.message
