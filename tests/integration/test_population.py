"""The synthetic population (``casework.population``): realistic, repeatable, and true to the engine's invariants."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from casework.population import SPAN_DAYS, populate
from db import AuditEvent, Case, CaseKey, Notice, NoticeCase, RefCounter, Timer, make_engine
from engine import Casework, FixedClock, InputError, WorkflowNotFound, load_definition_file
from engine.access import four_eyes_facts
from engine.publication import publicity_period
from notifications.notices import publish_list, render_with
from tests.conftest import BUNDLED

WF = "poverty_archive"
COUNT = 500
OPEN = ("apply", "review", "publicise", "approve", "enter")

_cases, _events, _keys, _timers = Case.__table__, AuditEvent.__table__, CaseKey.__table__, Timer.__table__
_notices, _notice_cases = Notice.__table__, NoticeCase.__table__


def rows(engine: Any, table: Any, *order: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(*order)))


def trails(engine: Any) -> dict[int, list[Any]]:
    """Each case's audit events, by case id, in order."""
    out = collections.defaultdict(list)
    for e in rows(engine, _events, _events.c.case_id, _events.c.seq):
        out[e.case_id].append(e)
    return out


def stays(trail: list[Any], state: str) -> list[list[Any]]:
    """The case's stays in ``state``: for each, the event entering it and the events until it left (inclusive)."""
    out: list[list[Any]] = []
    for e in trail:
        if e.to_state == state and e.from_state != state:
            out.append([e])
        elif out and out[-1][-1].to_state == state:
            out[-1].append(e)
    return out


def period_end(publicised: Any, tz: str) -> dt.datetime:
    """When the period a ``publicised`` event records ends: 24:00 of its last day."""
    last = dt.date.fromisoformat(publicised.changes["period"][1][1])
    return dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), ZoneInfo(tz)).astimezone(dt.UTC)


@pytest.fixture
def populated(svc: Casework, clock: FixedClock) -> Casework:
    assert populate(svc.engine, WF, COUNT, seed=7, batch=120, clock_now=clock.now()) == COUNT
    return svc


@pytest.fixture
def other_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second fresh database on the same backend."""
    if backend == "sqlite":
        path = tmp_path / "other.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    server = request.getfixturevalue("pg_server")
    name = f"other_{tmp_path.name}"[:60].lower().replace("-", "_")
    url: str = server.create_database(name, template="casework_template")
    request.addfinalizer(lambda: server.drop_database(name))
    return url


def test_most_are_filed_and_some_wait_in_every_open_state(populated: Casework) -> None:
    by_state: collections.Counter[str] = collections.Counter()
    by_county: collections.Counter[str] = collections.Counter()
    for _, scope, state, n in populated.count_by(WF):
        by_state[state] += n
        by_county[scope or ""] += n
    assert sum(by_state.values()) == COUNT
    assert by_state.most_common(1)[0][0] == "filed" and by_state["filed"] > COUNT / 2
    assert all(by_state[s] > 0 for s in (*OPEN, "rejected", "withdrawn")), by_state
    assert len(by_county) == 11  # Zhangzhou's counties, all of them
    cases = rows(populated.engine, _cases, _cases.c.id)
    paused = [c for c in cases if c.paused_at is not None]
    assert paused and all(c.state in ("review", "approve", "enter") for c in paused)


def test_every_audit_trail_verifies_and_matches_its_case(populated: Casework) -> None:
    report = populated.verify_audit()
    assert report.ok, report.breaks[:3]
    cases = rows(populated.engine, _cases, _cases.c.id)
    assert report.cases == COUNT and report.events == sum(c.audit_seq for c in cases)
    events = collections.defaultdict(list)
    for e in rows(populated.engine, _events, _events.c.id):
        events[e.case_id].append(e)
    for c in cases:
        trail = events[c.id]
        assert [e.seq for e in trail] == list(range(1, c.audit_seq + 1))
        assert c.version == c.audit_seq and trail[-1].hash == c.audit_head
        assert trail[0].action == "created" and trail[0].at == c.created_at and trail[-1].at == c.updated_at
        fired = [e for e in trail if e.action == "fired"]
        state = trail[0].to_state
        for e in fired:  # each step leaves the state the one before entered
            assert e.from_state == state
            state = e.to_state
        assert state == c.state
        who: dict[str, list[str]] = {}
        for e in fired:
            who.setdefault(e.trigger, [])
            if e.actor not in who[e.trigger]:
                who[e.trigger].append(e.actor)
        # the row keeps who fired what and who entered the data each step passed on, as the trail says
        assert four_eyes_facts(trail) == c.fired_by
        assert {k: v for k, v in c.fired_by.items() if not k.startswith("@")} == who
        # four-eyes: whoever submitted did not pass the review, whoever passed it did not grant
        assert not set(who.get("submit", [])) & set(who.get("pass_review", []))
        assert not set(who.get("pass_review", [])) & set(who.get("grant", []))
        if "pass_review" in who:
            assert len(c.data["materials"]) == 4  # the guard held


def test_unique_values_are_claimed_by_every_case_not_void(populated: Casework) -> None:
    cases = {c.id: c for c in rows(populated.engine, _cases, _cases.c.id)}
    keys = rows(populated.engine, _keys, _keys.c.id)
    void = {c.id for c in cases.values() if c.state in ("rejected", "withdrawn")}
    assert {k.case_id for k in keys} == set(cases) - void
    assert all(k.field == "id_number" and k.value == cases[k.case_id].data["id_number"] for k in keys)
    assert len({c.data["id_number"] for c in cases.values()}) == COUNT


def test_deadlines_and_timers_are_those_of_the_state(populated: Casework, clock: FixedClock) -> None:
    svc = populated
    wf = svc.workflow(WF)
    now = clock.now()
    timers = collections.defaultdict(list)
    for t in rows(svc.engine, _timers, _timers.c.id):
        timers[t.case_id].append(t)
    events = trails(svc.engine)
    published = awaiting = 0
    for c in rows(svc.engine, _cases, _cases.c.id):
        st = wf.states[c.state]
        if c.state == "publicise":
            # its deadline is the period of the list it is on since it entered, if one was published yet
            stay = stays(events[c.id], "publicise")[-1]
            assert stay[0].at == c.entered_at
            notices = [e for e in stay if e.action == "publicised"]
            assert len(notices) <= 1
            if notices:
                published += 1
                ends = period_end(notices[0], wf.timezone)
                assert c.deadline_at == ends > now and not c.deadline_provisional
                # its automatic end, written by the publication, is still to come
                assert [(t.kind, t.status, t.due_at, t.created_at) for t in timers[c.id]] == [
                    ("timeout", "pending", ends, notices[0].at)
                ]
            else:
                awaiting += 1  # no list of its county published since it entered: no period, no timer
                assert c.deadline_at is None and not timers[c.id]
        elif st.deadline is None:
            assert c.deadline_at is None
        else:
            expected = svc.calendar.deadline(c.entered_at, st.deadline.amount, st.deadline.unit, wf.timezone)
            assert c.deadline_at == expected.at and c.deadline_provisional == expected.provisional
        # the state's own timers, as the engine leaves them: pending if still to come, fired once due,
        # cancelled by a pause (the timeout runs on)
        for t in timers[c.id]:
            assert t.state == c.state and t.entered_at == c.entered_at
            if c.paused_at is not None and t.kind != "timeout":
                assert t.status == "cancelled"
            else:
                assert t.status == ("pending" if t.due_at > now else "fired"), (t.kind, t.status, t.due_at, now)
        if st.final:
            assert not timers[c.id]
    assert published and awaiting, (published, awaiting)  # both kinds of case in publicity are generated


def test_publicity_starts_with_a_published_list_and_lasts_its_period(populated: Casework, clock: FixedClock) -> None:
    """The lists are the engine's: one per county and day, listing every case of the county awaiting publication
    then, stored with their exact HTML and SHA-256, linked into each case's trail; a case leaves publicity for
    approval only after the period of its list."""
    svc = populated
    wf = svc.workflow(WF)
    now = clock.now()
    zone = ZoneInfo(wf.timezone)
    cases = {c.id: c for c in rows(svc.engine, _cases, _cases.c.id)}
    events = trails(svc.engine)
    notices = rows(svc.engine, _notices, _notices.c.id)
    listed = collections.defaultdict(list)
    for r in rows(svc.engine, _notice_cases, _notice_cases.c.notice_id, _notice_cases.c.position):
        listed[r.notice_id].append(r)
    assert len(notices) > 20
    # numbered in order of publication, gap-free; one list per county and day, published before now
    assert [n.number for n in notices] == [f"ZZGS-2026-{i:06d}" for i in range(1, len(notices) + 1)]
    assert [n.created_at for n in notices] == sorted(n.created_at for n in notices)
    assert len({(n.scope, n.created_at.astimezone(zone).date()) for n in notices}) == len(notices)
    render = render_with(wf, "public_list")
    by_number = {}
    for n in notices:
        by_number[n.number] = n
        day = n.created_at.astimezone(zone).date()
        assert n.kind == "list" and n.scope and n.created_at < now and svc.calendar.is_working_day(day)
        period = publicity_period(wf, day, svc.calendar)
        assert (n.period_start, n.period_end) == (period.start, period.end)
        # the stored page is the list template rendered from the stored context, and hashes to its SHA-256
        title, html = render(n.context)
        assert (n.html, n.title) == (html, title) and hashlib.sha256(html.encode()).hexdigest() == n.sha256
        shown = [c["ref"] for c in n.context["cases"]]
        assert shown == [cases[r.case_id].ref for r in listed[n.id]]
        assert [r.position for r in listed[n.id]] == list(range(1, len(shown) + 1))
        assert all(cases[r.case_id].scope == n.scope for r in listed[n.id])
        assert all("*" in c["id_number"] and c["applicant_name"] for c in n.context["cases"])  # masked
    # who awaited publication when each list was published: exactly the cases it lists
    awaiting_at: dict[tuple[str, dt.datetime], set[int]] = collections.defaultdict(set)
    left_for_approval = corrected = 0
    for case_id, trail in events.items():
        for stay in stays(trail, "publicise"):
            entered, rest = stay[0], stay[1:]
            notes = [e for e in rest if e.action == "publicised"]
            assert len(notes) <= 1 and all(e.action in ("publicised", "fired") for e in rest)
            until = notes[0].at if notes else (rest[-1].at if rest else now)
            for n in notices:
                if n.scope == cases[case_id].scope and entered.at < n.created_at <= until:
                    awaiting_at[(n.scope, n.created_at)].add(case_id)
            if notes:
                n = by_number[notes[0].changes["notice"][1]]
                assert notes[0].changes == {
                    "notice": [None, n.number],
                    "notice_sha256": [None, n.sha256],
                    "period": [None, [n.period_start.isoformat(), n.period_end.isoformat()]],
                }
                assert notes[0].actor == "system" and notes[0].at == n.created_at
            left = rest[-1] if rest and rest[-1].action == "fired" else None
            if left is not None and left.trigger == "end_publicity":
                # publicity ended by itself, a little after the period of its list
                left_for_approval += 1
                assert notes and left.actor == "system" and left.at >= period_end(notes[0], wf.timezone)
            elif left is not None:
                assert left.trigger in ("withdraw", "correct"), left.trigger  # the steps the engine allows before
                corrected += left.trigger == "correct"
    for n in notices:
        assert awaiting_at[(n.scope, n.created_at)] == {r.case_id for r in listed[n.id]}, n.number
    assert left_for_approval > 100 and corrected > 0
    # every case that was approved went through a published list
    for trail in events.values():
        for e in trail:
            if e.trigger == "grant":
                assert any(x.action == "publicised" and x.seq < e.seq for x in trail)


def test_the_engine_carries_on_from_a_populated_database(populated: Casework, clock: FixedClock) -> None:
    svc = populated
    svc.add_user("jiang", "蒋文", ["reviewer"], ["*"])
    svc.add_user("qian", "钱芳", ["clerk"], ["*"])
    waiting = svc.waiting_for("jiang", per_page=500).items
    ref = next(v.ref for v in waiting if v.state == "review" and len(v.data["materials"]) == 4 and not v.paused)
    assert svc.fire(ref, "pass_review", "jiang").state == "publicise"
    clock.advance(minutes=1)
    new = svc.create_case(WF, "qian", {**svc.get_case(ref).data, "id_number": "350602198503120015"})
    counters = RefCounter.__table__
    with svc.engine.connect() as conn:
        last = conn.execute(select(counters.c.last).where(counters.c.prefix == "ZZ")).scalar_one()
        top = conn.execute(select(func.max(_cases.c.id))).scalar_one()
        lists = conn.execute(select(func.count()).select_from(_notices)).scalar_one()
    assert new.ref == f"ZZ-2026-{last:06d}" and last == COUNT + 1
    assert svc.get_case(new.ref).version == 1 and top == COUNT + 1
    # the engine publishes the next list of the county after the populated ones, alike in every way
    scope = svc.get_case(ref).scope
    assert scope is not None
    notice = publish_list(svc, WF, scope)
    assert notice is not None and ref in notice.cases and notice.number == f"ZZGS-2026-{lists + 1:06d}"
    populated_one = next(n for n in rows(svc.engine, _notices, _notices.c.id) if n.number != notice.number)
    assert notice.context is not None and notice.context.keys() == populated_one.context.keys()
    assert notice.context["notice"].keys() == populated_one.context["notice"].keys()
    assert notice.context["cases"][0].keys() == populated_one.context["cases"][0].keys()
    assert svc.verify_audit().ok
    assert svc.check().counts == {}


def test_the_same_seed_gives_the_same_cases(populated: Casework, other_url: str, clock: FixedClock) -> None:
    engine = make_engine(other_url)
    try:
        Casework(engine, clock).load_workflow(load_definition_file(BUNDLED))
        populate(engine, WF, COUNT, seed=7, batch=COUNT, clock_now=clock.now())  # batch size changes nothing
        columns = ("ref", "state", "scope", "data", "audit_head", "deadline_at", "paused_at")

        def picked(e: Any) -> list[tuple[Any, ...]]:
            return [tuple(getattr(c, k) for k in columns) for c in rows(e, _cases, _cases.c.id)]

        assert picked(engine) == picked(populated.engine)
    finally:
        engine.dispose()


def test_populating_again_skips_households_already_filed(populated: Casework, clock: FixedClock) -> None:
    populate(populated.engine, WF, 50, seed=7, clock_now=clock.now())  # the same households come first
    cases = rows(populated.engine, _cases, _cases.c.id)
    assert len(cases) == COUNT + 50
    assert cases[-1].ref == f"ZZ-2026-{COUNT + 50:06d}"
    assert populated.verify_audit().ok


def test_bad_arguments_are_refused(svc: Casework, clock: FixedClock) -> None:
    with pytest.raises(WorkflowNotFound):
        populate(svc.engine, "no_such_workflow", 10)
    with pytest.raises(InputError, match="count"):
        populate(svc.engine, WF, -1)
    with pytest.raises(InputError, match="batch"):
        populate(svc.engine, WF, 10, batch=0)
    with pytest.raises(InputError, match="aware"):
        populate(svc.engine, WF, 10, clock_now=dt.datetime(2026, 1, 1))
    assert populate(svc.engine, WF, 0) == 0


def test_a_populated_database_keeps_every_invariant_but_the_delivery_history(
    populated: Casework, clock: FixedClock
) -> None:
    """``casework check`` passes on states, trails, timers, notices and keys, and every case replays to its row;
    the outbox is not generated (documented), so the events that would have told someone are reported, and only
    those."""
    now = clock.now()
    clock.set(now - dt.timedelta(days=SPAN_DAYS + 1))
    populated.add_user("gao", "高明", ["reviewer"], ["*"])  # on duty before the first case: told of every review
    clock.set(now)
    report = populated.check()
    assert set(report.counts) == {"outbox"}, report.counts
    to_review = [e for trail in trails(populated.engine).values() for e in trail if e.to_state == "review"]
    to_review = [e for e in to_review if e.action == "fired" and e.from_state != "review"]
    assert len(report.violations) == len(to_review) > 0
    assert all(v.detail.endswith(": no inbox message for gao (reviewer)") for v in report.violations)
