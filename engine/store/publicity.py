"""The ``objections``, ``notices`` and ``notice_cases`` tables: what publicity records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.store import tables
from engine.store.tables import CaseRow, NoticeRow, ObjectionRow

__all__ = [
    "add_notice",
    "add_objection",
    "close_objection",
    "find_notice",
    "notice_ids",
    "notice_refs",
    "objections_of",
    "read_notice",
    "read_objection",
    "unlisted_in_publicity",
]

_objections = tables.objections
_notices = tables.notices
_notice_cases = tables.notice_cases
_cases = tables.cases


def add_objection(
    conn: Connection, case_id: int, channel: str, text: str, received_by: str, now: dt.datetime
) -> ObjectionRow:
    """Record an open objection; return it."""
    values = {"case_id": case_id, "channel": channel, "text": text, "received_by": received_by, "received_at": now}
    oid = conn.execute(insert(_objections).values(**values, status="open").returning(_objections.c.id)).scalar_one()
    return ObjectionRow(oid, case_id, channel, text, received_by, now, "open", None, None, None)


def read_objection(conn: Connection, case_id: int, objection_id: int) -> ObjectionRow | None:
    """The case's objection with this id, or None."""
    row = conn.execute(
        select(_objections).where(_objections.c.id == objection_id, _objections.c.case_id == case_id)
    ).first()
    return ObjectionRow._make(row) if row is not None else None


def close_objection(
    conn: Connection, objection_id: int, outcome: str, resolved_by: str, now: dt.datetime, comment: str
) -> bool:
    """Close the objection if it is still open; False if someone else closed it first."""
    done = conn.execute(
        update(_objections)
        .where(_objections.c.id == objection_id, _objections.c.status == "open")
        .values(status=outcome, resolved_by=resolved_by, resolved_at=now, comment=comment)
    )
    return bool(done.rowcount == 1)


def objections_of(conn: Connection, case_id: int) -> list[ObjectionRow]:
    """The case's objections, oldest first."""
    rows = conn.execute(select(_objections).where(_objections.c.case_id == case_id).order_by(_objections.c.id))
    return [ObjectionRow._make(r) for r in rows]


def find_notice(conn: Connection, *, key: str | None = None, number: str | None = None) -> int | None:
    """The id of the notice with this idempotency key or number, or None."""
    query = select(_notices.c.id)
    query = query.where(_notices.c.key == key) if key is not None else query.where(_notices.c.number == number)
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def notice_ids(conn: Connection, workflow: str | None = None) -> list[int]:
    """Ids of every notice (of ``workflow``), newest first."""
    query = select(_notices.c.id).order_by(_notices.c.id.desc())
    if workflow:
        query = query.where(_notices.c.workflow == workflow)
    return [int(i) for i in conn.execute(query).scalars()]


def read_notice(conn: Connection, notice_id: int) -> NoticeRow | None:
    """One notice, or None."""
    row = conn.execute(select(_notices).where(_notices.c.id == notice_id)).first()
    return NoticeRow._make(row) if row is not None else None


def notice_refs(conn: Connection, notice_id: int) -> list[str]:
    """The refs of the cases a notice lists, in its order."""
    return list(
        conn.execute(
            select(_cases.c.ref)
            .join(_notice_cases, _notice_cases.c.case_id == _cases.c.id)
            .where(_notice_cases.c.notice_id == notice_id)
            .order_by(_notice_cases.c.position)
        ).scalars()
    )


def add_notice(conn: Connection, values: dict[str, Any], kind: str, case_ids: list[int]) -> int:
    """Store a notice and the cases it lists; return its id."""
    nid = int(conn.execute(insert(_notices).values(kind=kind, **values).returning(_notices.c.id)).scalar_one())
    conn.execute(
        insert(_notice_cases),
        [{"notice_id": nid, "case_id": c, "kind": kind, "position": i} for i, c in enumerate(case_ids, 1)],
    )
    return nid


def unlisted_in_publicity(conn: Connection, workflow: str, scope: str, state: str) -> list[CaseRow]:
    """Cases of ``scope`` in publicity not on a list published since they (last) entered it."""
    listed = (
        select(_notice_cases.c.case_id)
        .join(_notices, _notices.c.id == _notice_cases.c.notice_id)
        .where(
            _notice_cases.c.kind == "list",
            _notice_cases.c.case_id == _cases.c.id,
            _notices.c.created_at >= _cases.c.entered_at,
        )
    )
    rows = conn.execute(
        select(_cases)
        .where(_cases.c.workflow == workflow, _cases.c.scope == scope, _cases.c.state == state, ~listed.exists())
        .order_by(_cases.c.id)
    )
    return [CaseRow._make(r) for r in rows]
