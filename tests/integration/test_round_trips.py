"""A step is a handful of database calls: one read, one write, the commit.

Counted with SQLAlchemy events, as the benchmark does (bench/transition.py):
on PostgreSQL every call is a network round trip, so the count is the
latency floor of a step.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select

from db import AuditEvent, OutboxMessage, Timer
from engine import Casework, ConflictError
from tests.integration.test_publicity_period import through_publicity
from tests.integration.test_service import file_through, household, stored

WF = "poverty_archive"


@contextmanager
def counting(svc: Casework) -> Iterator[list[str]]:
    calls: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        calls.append(text.split(None, 1)[0].upper())

    def commit(conn: Any) -> None:
        calls.append("COMMIT")

    event.listen(svc.engine, "before_cursor_execute", statement)
    event.listen(svc.engine, "commit", commit)
    try:
        yield calls
    finally:
        event.remove(svc.engine, "before_cursor_execute", statement)
        event.remove(svc.engine, "commit", commit)


def test_a_step_that_notifies_and_plans_timers_is_one_read_one_write_and_the_commit(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    svc.fire(ref, "submit", "lin")  # warm: the workflow version is loaded once per process
    ref = svc.create_case(WF, "lin", household(seed=2)).ref
    with counting(svc) as calls:
        svc.fire(ref, "submit", "lin")  # 审核: two timers, the reviewer's inbox message
    with svc.engine.connect() as conn:
        case_id = conn.execute(select(AuditEvent.case_id).where(AuditEvent.seq == 2)).scalars().all()[-1]
        assert conn.execute(select(func.count()).select_from(Timer).where(Timer.case_id == case_id)).scalar() == 2
        assert conn.execute(select(OutboxMessage.recipient).where(OutboxMessage.case_id == case_id)).scalars().all()
    if svc.engine.dialect.name == "postgresql":
        assert calls == ["SELECT", "WITH", "COMMIT"]
    else:
        # SQLite: BEGIN (emitted by us), the read, then the writes one by one (in-process calls)
        assert calls == ["BEGIN", "SELECT", "UPDATE", "INSERT", "INSERT", "INSERT", "COMMIT"]


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("until", ["review", "publicise", "approve", "enter"])
def test_every_step_of_the_archive_stays_within_four_round_trips_on_postgresql(svc: Casework, until: str) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    steps = {
        "review": ("pass_review", "wu"),
        "publicise": ("end_publicity", "wu"),
        "approve": ("grant", "su"),
        "enter": ("record", "lin"),
    }
    file_through(svc, ref, until)
    through_publicity(svc, ref)
    trigger, actor = steps[until]
    with counting(svc) as calls:
        svc.fire(ref, trigger, actor)
    sent = [c for c in calls if c != "BEGIN"]
    assert len(sent) <= 4, calls
    assert sent[-1] == "COMMIT"


def test_a_stale_version_writes_nothing_at_all(svc: Casework) -> None:
    ref = svc.create_case(WF, "lin", household()).ref
    before = stored(svc, ref)
    with svc.engine.connect() as conn:
        timers = conn.execute(select(func.count()).select_from(Timer)).scalar()
        messages = conn.execute(select(func.count()).select_from(OutboxMessage)).scalar()
    with pytest.raises(ConflictError):
        svc.fire(ref, "submit", "lin", expected_version=0)
    assert stored(svc, ref) == before
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Timer)).scalar() == timers
        assert conn.execute(select(func.count()).select_from(OutboxMessage)).scalar() == messages
