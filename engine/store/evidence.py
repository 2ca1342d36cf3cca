"""Reads for proving the stored data against its evidence: trails beside their cases, notices, references.

:mod:`engine.evidence` decides; this module only reads, streaming where a
province's worth of cases would not fit in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

from engine.store import tables
from engine.store.audit import chains
from engine.store.tables import CaseRow, EventRow

__all__ = ["RefBlock", "StoredNotice", "integrity_problems", "notices", "ref_blocks", "trails"]

_cases = tables.cases
_notices = tables.notices
_counters = tables.counters


def trails(conn: Connection, ref: str | None = None) -> Iterator[tuple[int, CaseRow | None, list[EventRow]]]:
    """(case id, its row — None if the row is gone —, its events in written order) for every case, by id.

    Cases and events are streamed side by side and merged on the case id, so
    a case without events and events without a case both show up.
    """
    query = select(_cases).order_by(_cases.c.id)
    only: int | None = None
    if ref is not None:
        only = conn.execute(select(_cases.c.id).where(_cases.c.ref == ref)).scalar()
        if only is None:
            return
        query = query.where(_cases.c.id == only)
    rows = (CaseRow._make(r) for r in conn.execute(query.execution_options(yield_per=2000)))
    events = chains(conn, only)
    case = next(rows, None)
    trail = next(events, None)
    while case is not None or trail is not None:
        if trail is None or (case is not None and case.id < trail[0]):
            assert case is not None
            yield case.id, case, []
            case = next(rows, None)
        elif case is None or trail[0] < case.id:
            yield trail[0], None, trail[1]
            trail = next(events, None)
        else:
            yield case.id, case, trail[1]
            case, trail = next(rows, None), next(events, None)


class StoredNotice(NamedTuple):
    """A stored notice's number, exact HTML and the SHA-256 recorded for it."""

    number: str
    html: str
    sha256: str


def notices(conn: Connection) -> Iterator[StoredNotice]:
    """Every stored notice, oldest first."""
    query = select(_notices.c.number, _notices.c.html, _notices.c.sha256).order_by(_notices.c.id)
    for r in conn.execute(query.execution_options(yield_per=200)):
        yield StoredNotice._make(r)


class RefBlock(NamedTuple):
    """The references handed out for one prefix and year, and the cases that hold one."""

    prefix: str
    year: int
    allocated: int
    numbers: frozenset[int]


def ref_blocks(conn: Connection) -> list[RefBlock]:
    """Per (prefix, year) counter: how many numbers were allocated and which a case or a notice holds.

    References are allocated in the transaction that writes the cases, so a
    rolled-back opening returns its numbers: every allocated number belongs
    to a case unless a case was deleted.
    """
    out = []
    for prefix, year, last in conn.execute(select(_counters.c.prefix, _counters.c.year, _counters.c.last)):
        stem = f"{prefix}-{year}-"
        numbers: set[int] = set()
        # the counters number cases and notices alike
        for column in (_cases.c.ref, _notices.c.number):
            held = conn.execute(select(func.substr(column, len(stem) + 1)).where(column.like(f"{stem}%"))).scalars()
            numbers.update(int(n) for n in held if n.isdigit())
        out.append(RefBlock(prefix, int(year), int(last), frozenset(numbers)))
    return out


def integrity_problems(conn: Connection) -> list[str]:
    """What SQLite's ``PRAGMA integrity_check`` finds wrong with the file (empty when sound; PostgreSQL: empty)."""
    if conn.dialect.name != "sqlite":
        return []
    try:
        found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check")]
    except DBAPIError as exc:  # damage bad enough that the check itself stops
        return [str(exc.orig)]
    return [] if found == ["ok"] else found
