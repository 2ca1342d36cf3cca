"""Deadlines, reminders, escalations and automatic steps, with an injected clock, on both databases."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from casework.synthetic import SyntheticPeople
from db import OutboxMessage, Timer
from engine import Casework, ConflictError, InvalidCaseData, PermissionDenied
from notifications.notices import publish_list
from tests.integration.test_publicity_period import through_publicity

WF = "poverty_archive"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def new_case(svc: Casework, seed: int = 1) -> str:
    data = SyntheticPeople(seed).household()
    data.update(county="芗城区", materials=list(ALL_MATERIALS))
    return svc.create_case(WF, "lin", data).ref


def timers_of(engine: Any, ref: str, status: str | None = "pending") -> list[Any]:
    t = Timer.__table__
    from db import Case

    c = Case.__table__
    with engine.connect() as conn:
        query = select(t).join(c, c.c.id == t.c.case_id).where(c.c.ref == ref).order_by(t.c.due_at)
        if status:
            query = query.where(t.c.status == status)
        return list(conn.execute(query))


def messages(engine: Any, template: str) -> list[Any]:
    o = OutboxMessage.__table__
    with engine.connect() as conn:
        return list(conn.execute(select(o).where(o.c.template == template)))


def test_review_deadline_spans_the_national_day_holiday(svc: Casework, clock: Any, engine: Any) -> None:
    clock.set(at("2026-09-30T10:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    case = svc.get_case(ref)
    # 5 working days after 2026-09-30, skipping Oct 1-7, counting Sat Oct 10 (调休): Tue Oct 13, 24:00
    assert case.to_json()["deadline"] == "2026-10-14T00:00:00+08:00"
    assert case.overdue is False and case.deadline_provisional is False
    assert case.time_left == "5 working days left"
    kinds = [(t.kind, t.due_at.astimezone(SHANGHAI).isoformat()) for t in timers_of(engine, ref)]
    assert kinds == [
        ("remind", "2026-10-13T00:00:00+08:00"),  # the start of the last working day
        ("escalate", "2026-10-16T00:00:00+08:00"),  # 2 working days after the deadline
    ]


def test_deadlines_into_2027_are_provisional_and_do_not_crash(svc: Casework, clock: Any) -> None:
    clock.set(at("2026-12-28T10:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    case = svc.get_case(ref)
    assert case.deadline_provisional is True
    # Dec 29, 30, 31, (Jan 1 holiday), Jan 4, 5 → Tue 2027-01-05, 24:00
    assert case.to_json()["deadline"] == "2027-01-06T00:00:00+08:00"
    assert case.to_json()["provisional"] is True


def test_reminder_and_escalation_reach_the_outbox_once(svc: Casework, clock: Any, engine: Any) -> None:
    clock.set(at("2026-11-02T09:00"))  # a Monday
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    assert svc.sweep().fired == 0
    clock.set(at("2026-11-09T08:00"))  # Monday Nov 9: the 5th working day, the last (deadline 24:00)
    report = svc.sweep()
    assert report.fired == 1
    reminders = messages(engine, "deadline_reminder")
    assert {m.recipient for m in reminders if m.channel == "inbox"} == {"wu", "ye", "xu"}
    assert all("今日到期" in str(m.context["deadline"]["left"]) for m in reminders)
    assert svc.sweep().fired == 0  # nothing twice
    clock.set(at("2026-11-12T00:30"))  # Tue 10 and Wed 11 passed: escalated 2 working days after
    assert svc.sweep().fired == 1
    assert messages(engine, "deadline_escalation") == []  # no user holds 'supervisor' in the fixture
    view = svc.get_case(ref)
    assert view.overdue is True and view.time_left == "overdue by 3 working days"  # today counts
    assert [v.ref for v in svc.list_cases(overdue=True, actor="wu")] == [ref]
    assert svc.list_cases(overdue=True, actor="chen") == []  # not in chen's county


def test_leaving_a_state_cancels_its_timers_and_stale_ones_are_discarded(
    svc: Casework, clock: Any, engine: Any
) -> None:
    clock.set(at("2026-11-02T09:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    assert len(timers_of(engine, ref)) == 2
    svc.fire(ref, "pass_review", "wu")
    assert timers_of(engine, ref) == []  # publicity's automatic end comes with its published list
    publish_list(svc, WF, "芗城区")
    pending = timers_of(engine, ref)
    assert [t.kind for t in pending] == ["timeout"]
    assert {t.status for t in timers_of(engine, ref, None) if t.kind != "timeout"} == {"cancelled"}


def test_publicity_ends_by_itself_as_system(svc: Casework, clock: Any) -> None:
    clock.set(at("2026-11-02T09:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    publish_list(svc, WF, "芗城区")  # dated Nov 2
    clock.set(at("2026-11-09T23:00"))  # 7 days end at 24:00 on Nov 9
    assert svc.sweep().fired == 0
    clock.set(at("2026-11-10T00:00"))
    assert svc.sweep().fired == 1
    last = svc.history(ref)[-1]
    assert (last.actor, last.role, last.trigger, last.to_state) == ("system", "system", "end_publicity", "approve")
    assert svc.get_case(ref).state == "approve"
    assert svc.verify_audit(ref).ok


def test_an_open_objection_holds_the_timeout_and_is_reported_once(svc: Casework, clock: Any, engine: Any) -> None:
    clock.set(at("2026-11-02T09:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    publish_list(svc, WF, "芗城区")
    objection = svc.add_objection(ref, "lin", "来电反映", "电话")
    clock.set(at("2026-11-10T09:00"))
    for _ in range(3):
        report = svc.sweep()
        assert (report.fired, report.held) == (0, 1)
    assert svc.get_case(ref).state == "publicise"
    held = messages(engine, "timeout_held")
    assert {m.recipient for m in held} == {"wu", "ye", "xu"}  # every reviewer covering 芗城区, once
    (timer,) = timers_of(engine, ref)
    assert timer.held_at is not None
    svc.resolve_objection(ref, objection.id, "wu", "dismissed", "不成立")
    assert svc.sweep().fired == 1
    assert svc.get_case(ref).state == "approve"
    assert len(messages(engine, "timeout_held")) == len(held)


def test_missed_timers_all_fire_after_downtime(svc: Casework, clock: Any) -> None:
    clock.set(at("2026-11-02T09:00"))
    refs = []
    for i in range(12):
        ref = new_case(svc, seed=i)
        svc.fire(ref, "submit", "lin")
        svc.fire(ref, "pass_review", "wu")
        refs.append(ref)
    publish_list(svc, WF, "芗城区")
    clock.set(at("2027-03-01T09:00"))  # months of downtime: nothing may be dropped
    report = svc.sweep()
    assert report.fired == 12 + 0
    assert {svc.get_case(r).state for r in refs} == {"approve"}
    assert svc.sweep().fired == 0


def test_pause_keeps_the_working_days_left_and_resume_restarts_them(svc: Casework, clock: Any, engine: Any) -> None:
    clock.set(at("2026-11-02T09:00"))  # Monday
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")  # deadline Mon Nov 9, 24:00
    clock.set(at("2026-11-04T10:00"))  # Wednesday: Thu 5, Fri 6 and Mon 9 are left
    left = svc.pause(ref, "wu", "缺少收入证明")
    assert left == {"unit": "working_days", "amount": 3}
    view = svc.get_case(ref)
    assert view.paused and view.deadline is None and not view.overdue
    assert timers_of(engine, ref) == []
    with pytest.raises(ConflictError, match="already paused"):
        svc.pause(ref, "wu", "again")
    clock.set(at("2026-11-20T15:00"))  # a Friday, weeks later: the clock did not run
    svc.resume(ref, "lin", "收入证明已补交")
    view = svc.get_case(ref)
    # 3 working days after Fri Nov 20: Mon 23, Tue 24, Wed 25 → 24:00 Wed
    assert view.to_json()["deadline"] == "2026-11-26T00:00:00+08:00"
    assert [t.kind for t in timers_of(engine, ref)] == ["remind", "escalate"]
    actions = [h.action for h in svc.history(ref)]
    assert actions[-2:] == ["paused", "resumed"]
    assert svc.verify_audit(ref).ok


def test_pause_refusals_change_nothing(svc: Casework) -> None:
    ref = new_case(svc)
    with pytest.raises(Exception, match="no deadline in apply"):
        svc.pause(ref, "lin", "x")
    svc.fire(ref, "submit", "lin")
    before = svc.get_case(ref).to_json()
    with pytest.raises(PermissionDenied, match="chen covers"):
        svc.pause(ref, "chen", "x")
    svc.add_user("zhou", "周建国", ["supervisor"], ["*"])
    with pytest.raises(PermissionDenied, match="may not pause"):
        svc.pause(ref, "zhou", "x")
    with pytest.raises(InvalidCaseData, match="reason: is needed"):
        svc.pause(ref, "wu", "  ")
    with pytest.raises(ConflictError, match="not paused"):
        svc.resume(ref, "wu")
    assert svc.get_case(ref).to_json() == before


def test_the_daily_overdue_digest_runs_once_per_due_time_on_working_days(
    svc: Casework, clock: Any, engine: Any
) -> None:
    clock.set(at("2026-11-02T09:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")  # due Mon Nov 9, 24:00
    clock.set(at("2026-11-10T09:05"))  # Tuesday, after 09:00: overdue
    done = svc.run_due_schedules()
    assert [(job, outcome) for job, _, outcome in done] == [
        ("poverty_archive:overdue_digest", "overdue_digest: 3 messages to 3 reviewer(s)")
    ]
    digests = messages(engine, "overdue_digest")
    assert {m.recipient for m in digests} == {"wu", "ye", "xu"}
    assert digests[0].context["cases"][0]["ref"] == ref
    assert svc.run_due_schedules() == []  # the same due time: not again
    clock.set(at("2026-11-14T09:30"))  # Saturday: due, recorded, but no digest on a rest day
    ((_, due, outcome),) = svc.run_due_schedules()
    assert due.startswith("2026-11-14T09:00") and outcome == "skipped: 2026-11-14 is not a working day"
    assert len(messages(engine, "overdue_digest")) == 3
    clock.set(at("2026-11-16T08:59"))  # Monday before 09:00: the latest due time was Sunday's
    ((_, due, _),) = svc.run_due_schedules()
    assert due.startswith("2026-11-15T09:00")


def test_two_schedulers_run_a_digest_once(svc: Casework, clock: Any, engine: Any, db_url: str) -> None:
    import threading

    from db import make_engine

    clock.set(at("2026-11-02T09:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    clock.set(at("2026-11-10T09:05"))
    others = [Casework(make_engine(db_url), clock) for _ in range(3)]
    barrier = threading.Barrier(len(others))
    results: list[Any] = []

    def run(s: Casework) -> None:
        barrier.wait()
        results.append(s.run_due_schedules())

    threads = [threading.Thread(target=run, args=(s,)) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r) for r in results) == 1
    assert len(messages(engine, "overdue_digest")) == 3
    for s in others:
        s.engine.dispose()


def test_calendar_reload_recomputes_provisional_deadlines_audited(svc: Casework, clock: Any, tmp_path: Any) -> None:
    from engine.calendar import WorkingCalendar

    clock.set(at("2026-12-28T10:00"))
    ref = new_case(svc)
    svc.fire(ref, "submit", "lin")
    assert svc.get_case(ref).to_json()["deadline"] == "2027-01-06T00:00:00+08:00"  # provisional
    # the State Council publishes 2027: say Jan 4 and 5 are holidays too
    path = tmp_path / "cn.yaml"
    path.write_text("2027:\n  official: true\n  holidays:\n    - {from: 2027-01-01, to: 2027-01-05, name: 元旦}\n")
    svc.calendar = WorkingCalendar.load(path)
    changed = svc.recompute_provisional()
    assert changed == [(ref, "2027-01-06T00:00:00+08:00", "2027-01-08T00:00:00+08:00")]
    case = svc.get_case(ref)
    assert case.deadline_provisional is False
    last = svc.history(ref)[-1]
    assert last.action == "deadline_recomputed" and last.changes["deadline"][1] == "2027-01-08T00:00:00+08:00"
    assert svc.recompute_provisional() == []
    assert svc.verify_audit(ref).ok


def test_the_yearly_campaign_opens_one_review_per_filed_archive(svc: Casework, clock: Any) -> None:
    from engine import load_definition_file
    from tests.conftest import ROOT

    clock.set(at("2026-11-02T09:00"))
    filed, other = [], new_case(svc, seed=99)  # one still in apply: not reviewed
    for i in range(3):
        ref = new_case(svc, seed=i)
        for trigger, actor in [("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "wu"),
                               ("grant", "su"), ("record", "lin")]:  # fmt: skip
            through_publicity(svc, ref)
            svc.fire(ref, trigger, actor)
        filed.append(ref)

    def campaign() -> str:
        (outcome,) = [o for job, _, o in svc.run_due_schedules() if job == "poverty_archive:annual_review"]
        return outcome

    clock.set(at("2027-01-02T08:05"))
    outcome = campaign()
    assert outcome == "open_cases: workflow 'annual_review' is not loaded"
    svc.load_workflow(load_definition_file(ROOT / "workflows" / "annual_review.yaml"))
    clock.set(at("2028-01-02T08:05"))
    outcome = campaign()
    assert outcome == "open_cases: opened 3 annual_review cases, skipped 0"
    reviews = svc.list_cases(workflow="annual_review")
    assert sorted(r.data["archive_ref"] for r in reviews) == filed
    assert other not in {r.data["archive_ref"] for r in reviews}
    first = reviews[0]
    assert first.ref.startswith("FH-2028-") and first.state == "survey" and first.deadline is not None
    assert svc.history(first.ref)[0].actor == "system"
    clock.set(at("2029-01-02T08:05"))  # last year's reviews are still open: none opened twice
    outcome = campaign()
    assert outcome == "open_cases: opened 0 annual_review cases, skipped 3"
    assert svc.verify_audit().ok
