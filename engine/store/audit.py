"""The ``audit_events`` table, read: one case's trail, and every trail streamed for verification."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, select

from engine.store import tables
from engine.store.tables import EventRow

__all__ = ["DATA_ACTIONS", "Head", "chains", "data_events", "events_of", "heads"]

#: the actions whose ``changes`` are the case's data, and who made them (what four-eyes reads)
DATA_ACTIONS = ("created", "fired", "updated")

_events = tables.events
_cases = tables.cases


class Head(NamedTuple):
    """What a case row records of its trail's end."""

    id: int
    ref: str
    audit_seq: int
    audit_head: str


def events_of(conn: Connection, case_id: int) -> list[EventRow]:
    """The case's events in seq order."""
    rows = conn.execute(select(_events).where(_events.c.case_id == case_id).order_by(_events.c.seq))
    return [EventRow._make(r) for r in rows]


def data_events(conn: Connection, case_ids: Sequence[int]) -> dict[int, list[EventRow]]:
    """The events that opened, moved or changed the data of each case, in seq order, by case id."""
    query = (
        select(_events)
        .where(_events.c.case_id.in_(list(case_ids)), _events.c.action.in_(DATA_ACTIONS))
        .order_by(_events.c.case_id, _events.c.seq)
    )
    out: dict[int, list[EventRow]] = {case_id: [] for case_id in case_ids}
    for r in conn.execute(query):
        row = EventRow._make(r)
        out[row.case_id].append(row)
    return out


def heads(conn: Connection, ref: str | None = None) -> dict[int, Head]:
    """Every case's head (or only ``ref``'s), by case id."""
    query = select(_cases.c.id, _cases.c.ref, _cases.c.audit_seq, _cases.c.audit_head)
    if ref is not None:
        query = query.where(_cases.c.ref == ref)
    return {r.id: Head._make(r) for r in conn.execute(query)}


def chains(conn: Connection, case_id: int | None = None) -> Iterator[tuple[int, list[EventRow]]]:
    """(case id, its events in the order they were written) for every case with events (or one), streamed."""
    query = select(_events).order_by(_events.c.case_id, _events.c.id)
    if case_id is not None:
        query = query.where(_events.c.case_id == case_id)
    current: int | None = None
    batch: list[EventRow] = []
    for r in conn.execute(query.execution_options(yield_per=2000)):
        row = EventRow._make(r)
        if row.case_id != current:
            if current is not None:
                yield current, batch
            current, batch = row.case_id, []
        batch.append(row)
    if current is not None:
        yield current, batch
