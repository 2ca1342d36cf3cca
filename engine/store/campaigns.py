"""The ``campaigns`` table: each workflow's yearly campaign date, who set it, and whether it ran.

:mod:`engine.campaigns` decides; this module reads and writes. A campaign runs exactly once: the
run's transaction first moves its row from ``pending`` to ``ran`` with a conditional ``UPDATE``
(:func:`claim`), so a second scheduler — or a cancel at the same moment — finds no pending row
(PostgreSQL: it waits on the row lock, then matches nothing; SQLite: its snapshot is stale and the
transaction is run again, when it reads ``ran``).
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import Connection, insert, select, update

from db.schema import campaigns as _campaigns, cases as _cases

__all__ = ["CampaignRow", "cancel", "claim", "find", "finish", "pending", "put", "reached", "rows"]


class CampaignRow(NamedTuple):
    """One row of ``campaigns`` (columns in table order)."""

    id: int
    workflow: str
    year: int
    on_date: dt.date
    status: str
    set_by: str
    set_at: dt.datetime
    cancelled_by: str | None
    cancelled_at: dt.datetime | None
    ran_at: dt.datetime | None
    opened: int | None
    skipped: int | None
    outcome: str | None


def find(conn: Connection, workflow: str, year: int) -> CampaignRow | None:
    """The campaign of ``workflow`` for programme ``year``, or None."""
    row = conn.execute(select(_campaigns).where(_campaigns.c.workflow == workflow, _campaigns.c.year == year)).first()
    return CampaignRow._make(row) if row is not None else None


def rows(conn: Connection, workflow: str | None = None) -> list[CampaignRow]:
    """Every campaign row (of ``workflow``), by workflow then year."""
    query = select(_campaigns).order_by(_campaigns.c.workflow, _campaigns.c.year)
    if workflow is not None:
        query = query.where(_campaigns.c.workflow == workflow)
    return [CampaignRow._make(r) for r in conn.execute(query)]


def pending(conn: Connection) -> list[CampaignRow]:
    """The campaigns not run yet (nor cancelled), soonest first."""
    query = select(_campaigns).where(_campaigns.c.status == "pending").order_by(_campaigns.c.on_date, _campaigns.c.id)
    return [CampaignRow._make(r) for r in conn.execute(query)]


def put(conn: Connection, workflow: str, year: int, on: dt.date, by: str, at: dt.datetime) -> None:
    """Set the date of ``workflow``'s campaign of programme ``year``: a new row, or the year's row replaced."""
    values = {"on_date": on, "status": "pending", "set_by": by, "set_at": at, "cancelled_by": None}
    found = find(conn, workflow, year)
    if found is None:
        conn.execute(insert(_campaigns).values(workflow=workflow, year=year, **values))
    else:
        conn.execute(update(_campaigns).where(_campaigns.c.id == found.id).values(cancelled_at=None, **values))


def cancel(conn: Connection, row_id: int, by: str, at: dt.datetime) -> bool:
    """Cancel a pending campaign; False if it is no longer pending (it ran, or was cancelled, meanwhile)."""
    result = conn.execute(
        update(_campaigns)
        .where(_campaigns.c.id == row_id, _campaigns.c.status == "pending")
        .values(status="cancelled", cancelled_by=by, cancelled_at=at)
    )
    return result.rowcount == 1


def claim(conn: Connection, row_id: int, on: dt.date, at: dt.datetime) -> bool:
    """Claim a pending campaign for its run (pending → ran); False if another run, a cancel or a new date won."""
    result = conn.execute(
        update(_campaigns)
        .where(_campaigns.c.id == row_id, _campaigns.c.status == "pending", _campaigns.c.on_date == on)
        .values(status="ran", ran_at=at)
    )
    return result.rowcount == 1


def finish(conn: Connection, row_id: int, opened: int, skipped: int, outcome: str) -> None:
    """Record what the run did (in the run's transaction)."""
    conn.execute(
        update(_campaigns)
        .where(_campaigns.c.id == row_id)
        .values(opened=opened, skipped=skipped, outcome=outcome[:200])
    )


def reached(
    conn: Connection,
    workflow: str,
    link_field: str,
    year_field: str | None,
    year: int,
    opened_between: tuple[dt.datetime, dt.datetime],
) -> set[str]:
    """The references already reached in ``year``: ``link_field`` of ``workflow``'s cases of that year (by
    ``year_field``, else opened between the two times), in whatever state."""
    link = _cases.c.data[link_field].as_string()
    if year_field is None:
        start, end = opened_between
        query = select(link).where(
            _cases.c.workflow == workflow, _cases.c.created_at >= start, _cases.c.created_at < end
        )
        return {str(v) for v in conn.execute(query).scalars() if v is not None}
    # the year compared here, not in SQL: a JSON value cast to a number in SQL could fail on another
    # workflow's row before the workflow's filter applies (PostgreSQL does not promise the order)
    query = select(link, _cases.c.data[year_field]).where(_cases.c.workflow == workflow)
    return {str(ref) for ref, y in conn.execute(query) if ref is not None and str(y) == str(year)}
