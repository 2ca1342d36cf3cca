"""``casework check`` on states with only a ``deadline:`` (issue 12, item 7a).

A bare deadline is a column of the case, not a timer, so a case waiting in
such a state (annual_review's ``survey`` and ``confirm``) has no timer rows
and ``check`` must not ask for any; a case in a state that does declare
timers (poverty_archive's ``review``: remind, escalate) still must have them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select

from casework.synthetic import SyntheticPeople
from db import Case, Timer
from engine import Casework, FixedClock, load_definition_file
from engine.deadlines import timed_on_entry
from tests.conftest import ROOT, SHANGHAI
from tests.e2e.runner import casework
from tests.integration.test_publicity_period import ALL_MATERIALS, through_publicity

FILE_IT = [("submit", "lin"), ("pass_review", "wu"), ("end_publicity", "wu"), ("grant", "su"), ("record", "lin")]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def filed(svc: Casework, seed: int) -> str:
    data = SyntheticPeople(seed).household()
    data.update(county="芗城区", materials=list(ALL_MATERIALS))
    ref = svc.create_case("poverty_archive", "lin", data).ref
    for trigger, actor in FILE_IT:
        through_publicity(svc, ref)
        svc.fire(ref, trigger, actor)
    return ref


def timer_rows(engine: Any, ref: str) -> list[Any]:
    with engine.connect() as conn:
        case_id = conn.execute(select(Case.__table__.c.id).where(Case.__table__.c.ref == ref)).scalar_one()
        return list(conn.execute(select(Timer.__table__).where(Timer.__table__.c.case_id == case_id)))


def test_reviews_opened_by_the_campaign_pass_check(svc: Casework, clock: FixedClock, engine: Any, db_url: str) -> None:
    svc.load_workflow(load_definition_file(ROOT / "workflows" / "annual_review.yaml"))
    review = svc.workflow("annual_review")
    assert review.states["survey"].deadline is not None and not timed_on_entry(review, "survey")
    clock.set(at("2026-11-02T09:00"))
    archives = [filed(svc, i) for i in range(3)]
    clock.set(at("2027-01-04T09:00"))
    outcomes = {job: o for job, _, o in svc.run_due_schedules()}
    assert outcomes["poverty_archive:annual_review"] == "open_cases: opened 3 annual_review cases, skipped 0"
    reviews = svc.list_cases(workflow="annual_review")
    assert sorted(r.data["archive_ref"] for r in reviews) == archives
    assert all(r.state == "survey" and r.deadline is not None for r in reviews)
    assert all(timer_rows(engine, r.ref) == [] for r in reviews)  # a bare deadline writes no timer
    # one moves on to confirm (deadline only too), one back to survey again
    svc.fire(reviews[0].ref, "report", "lin", data={"finding": "入户复核", "income_per_capita": "2000"})
    svc.fire(reviews[1].ref, "report", "lin", data={"finding": "入户复核", "income_per_capita": "2000"})
    svc.fire(reviews[1].ref, "resurvey", "wu", comment="收入证明不全")
    report = svc.check()
    assert report.ok, report.violations
    result = casework(db_url, "check")
    assert result.rc == 0 and "all invariants hold" in result.out, result


def test_a_case_in_a_state_with_timers_still_needs_them(svc: Casework, engine: Any, db_url: str) -> None:
    data = SyntheticPeople(7).household()
    data.update(county="芗城区", materials=list(ALL_MATERIALS))
    ref = svc.create_case("poverty_archive", "lin", data).ref
    svc.fire(ref, "submit", "lin")  # review: remind and escalate
    assert timed_on_entry(svc.workflow("poverty_archive"), "review") and timer_rows(engine, ref)
    assert svc.check().ok
    with engine.begin() as conn:
        case_id = conn.execute(select(Case.__table__.c.id).where(Case.__table__.c.ref == ref)).scalar_one()
        conn.execute(delete(Timer.__table__).where(Timer.__table__.c.case_id == case_id))
    report = svc.check()
    assert not report.ok
    assert any(v.check == "timers" and v.ref == ref for v in report.violations), report.violations
    result = casework(db_url, "check")
    assert result.rc == 1 and f"{ref}: waiting in review without that state's timers" in result.err, result
