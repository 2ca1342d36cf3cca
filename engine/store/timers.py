"""The ``timers`` table: deadlines' reminders, escalations and automatic steps, as rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select, update

from engine.store import tables
from engine.store.tables import TimerRow
from engine.store.writes import insert_rows

__all__ = [
    "TimerListing",
    "add_timers",
    "cancel_pending",
    "case_timers",
    "claim_timer",
    "due_timer_ids",
    "list_timers",
    "mark_timer",
]

_timers = tables.timers
_cases = tables.cases


def due_timer_ids(conn: Connection, when: dt.datetime, limit: int) -> list[int]:
    """Ids of pending timers due at ``when``, oldest first, held ones last (a pile of them must not starve the rest)."""
    rows = conn.execute(
        select(_timers.c.id)
        .where(_timers.c.status == "pending", _timers.c.due_at <= when)
        .order_by(_timers.c.held_at.is_not(None), _timers.c.due_at, _timers.c.id)
        .limit(limit)
    )
    return [int(i) for i in rows.scalars()]


def claim_timer(conn: Connection, timer_id: int) -> TimerRow | None:
    """Take the pending timer for this transaction; None if another sweeper has it or it is no longer pending.

    On PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``; on SQLite the
    claim is the transaction's first write, so SQLite's write lock
    serialises sweepers.
    """
    query = select(_timers).where(_timers.c.id == timer_id, _timers.c.status == "pending")
    if conn.dialect.name == "postgresql":
        row = conn.execute(query.with_for_update(skip_locked=True)).first()
    else:
        claimed = conn.execute(
            update(_timers).where(_timers.c.id == timer_id, _timers.c.status == "pending").values(status="pending")
        )
        row = conn.execute(query).first() if claimed.rowcount == 1 else None
    return TimerRow._make(row) if row is not None else None


def mark_timer(
    conn: Connection,
    timer_id: int,
    *,
    status: str | None = None,
    fired_at: dt.datetime | None = None,
    held_at: dt.datetime | None = None,
    error: str | None = None,
) -> None:
    """Set a timer's status (and when it fired or was first held, and its last error)."""
    values: dict[str, Any] = {}
    if status is not None:
        values["status"] = status
    if fired_at is not None:
        values["fired_at"] = fired_at
    if held_at is not None:
        values["held_at"] = held_at
    if error:
        values["last_error"] = error[:500]
    conn.execute(update(_timers).where(_timers.c.id == timer_id).values(**values))


def cancel_pending(conn: Connection, case_id: int, *, keep_timeout: bool = False) -> None:
    """Cancel the case's pending timers (``keep_timeout``: all but its automatic step)."""
    query = update(_timers).where(_timers.c.case_id == case_id, _timers.c.status == "pending")
    if keep_timeout:
        query = query.where(_timers.c.kind != "timeout")
    conn.execute(query.values(status="cancelled"))


def add_timers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert timer rows."""
    insert_rows(conn, _timers, rows)


TimerListing = tuple[TimerRow, str]


def list_timers(
    conn: Connection, *, status: str | None = "pending", due_before: dt.datetime | None = None
) -> list[TimerListing]:
    """(timer, case ref) pairs, soonest first."""
    query = (
        select(_timers, _cases.c.ref)
        .join(_cases, _cases.c.id == _timers.c.case_id)
        .order_by(_timers.c.due_at, _timers.c.id)
    )
    if status:
        query = query.where(_timers.c.status == status)
    if due_before is not None:
        query = query.where(_timers.c.due_at <= due_before)
    n = len(_timers.columns)
    return [(TimerRow._make(r[:n]), r.ref) for r in conn.execute(query)]


def case_timers(conn: Connection, case_id: int, *, status: str | None = "pending") -> list[TimerRow]:
    """One case's timers (pending by default), soonest first: a read of the case's own rows (``ix_timers_case``)."""
    query = select(_timers).where(_timers.c.case_id == case_id)
    if status:
        query = query.where(_timers.c.status == status)
    # sorted here, not in SQL: an ORDER BY due_at leads SQLite (without ANALYZE statistics) to walk
    # ix_timers_due over every pending timer of every case instead of the case's few rows
    rows = [TimerRow._make(r) for r in conn.execute(query)]
    return sorted(rows, key=lambda r: (r.due_at, r.id))
