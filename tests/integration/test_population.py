"""The synthetic population (``casework.population``): realistic, repeatable, and true to the engine's invariants."""

from __future__ import annotations

import collections
import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from casework.population import populate
from db import AuditEvent, Case, CaseKey, RefCounter, Timer, make_engine
from engine import Casework, FixedClock, InputError, WorkflowNotFound, load_definition_file
from tests.conftest import BUNDLED

WF = "poverty_archive"
COUNT = 500
OPEN = ("apply", "review", "publicise", "approve", "enter")

_cases, _events, _keys, _timers = Case.__table__, AuditEvent.__table__, CaseKey.__table__, Timer.__table__


def rows(engine: Any, table: Any, *order: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(*order)))


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
    url = server.create_database(name, template="casework_template")
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
        assert who == c.fired_by
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
    for c in rows(svc.engine, _cases, _cases.c.id):
        st = wf.states[c.state]
        if st.deadline is None:
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
        if c.state == "publicise":  # its timeout is always still to come
            assert [(t.kind, t.status) for t in timers[c.id]] == [("timeout", "pending")]


def test_the_engine_carries_on_from_a_populated_database(populated: Casework, clock: FixedClock) -> None:
    svc = populated
    svc.add_user("jiang", "蒋文", ["reviewer"], ["*"])
    svc.add_user("qian", "钱芳", ["clerk"], ["*"])
    waiting = svc.waiting_for("jiang", per_page=500).items
    ref = next(v.ref for v in waiting if v.state == "review" and len(v.data["materials"]) == 4 and not v.paused)
    assert svc.fire(ref, "pass_review", "jiang").state == "publicise"
    clock.advance(minutes=1)
    new = svc.create_case(WF, "qian", {**svc.get_case(ref).data, "id_number": "350602198503120015"})
    with svc.engine.connect() as conn:
        last = conn.execute(select(func.max(RefCounter.__table__.c.last))).scalar_one()
        top = conn.execute(select(func.max(_cases.c.id))).scalar_one()
    assert new.ref == f"ZZ-2026-{last:06d}" and last == COUNT + 1
    assert svc.get_case(new.ref).version == 1 and top == COUNT + 1
    assert svc.verify_audit().ok


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


def test_a_populated_database_keeps_every_invariant_but_the_delivery_history(populated: Casework) -> None:
    """``casework check`` passes on states, trails, timers and keys; the outbox is not generated (documented),
    so the events that would have told someone are reported, and only those."""
    report = populated.check()
    assert set(report.counts) == {"outbox"}, report.counts
    assert all("without its public notice" in v.detail or "no inbox message" in v.detail for v in report.violations)
