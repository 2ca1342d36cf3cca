"""The ``objections``, ``notices`` and ``notice_cases`` tables: what publicity records, and checking it."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, insert, select, update

from engine.store import tables
from engine.store.tables import CaseRow, NoticeRow, ObjectionRow

__all__ = [
    "PUBLISHED_ACTIONS",
    "add_notice",
    "add_objection",
    "awaiting_publication",
    "close_objection",
    "find_notice",
    "notice_ids",
    "notice_refs",
    "objections_of",
    "publication_problems",
    "read_notice",
    "read_objection",
]

_objections = tables.objections
_notices = tables.notices
_notice_cases = tables.notice_cases
_cases = tables.cases
_events = tables.events
_timers = tables.timers


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


def awaiting_publication(conn: Connection, workflow: str, scope: str, state: str) -> list[CaseRow]:
    """Cases of ``scope`` in the publicity ``state`` not yet on a published notice since they (last) entered it.

    Publication sets the case's ``deadline_at`` to the end of the notice's
    period, and entering the state clears it, so those awaiting publication
    are the ones without one.
    """
    rows = conn.execute(
        select(_cases)
        .where(
            _cases.c.workflow == workflow,
            _cases.c.scope == scope,
            _cases.c.state == state,
            _cases.c.deadline_at.is_(None),
        )
        .order_by(_cases.c.id)
    )
    return [CaseRow._make(r) for r in rows]


#: the audit actions that link a notice into a case's trail (``notice_published``: before periods were kept)
PUBLISHED_ACTIONS = ("publicised", "notice_published")


def publication_problems(conn: Connection, publicity: dict[int, tuple[str, str, bool]]) -> list[tuple[str, str]]:
    """(ref, problem) for every way the stored notices and the cases' trails disagree.

    ``publicity`` maps a workflow version id to (publicity state, timezone,
    whether that state has an automatic end). Checked: every case a notice
    lists has the event linking that notice into its trail and every such
    event names a notice that lists the case; a case in its publicity state
    is publicised (has a ``publicised`` event since it last entered it)
    exactly when it has a period end (``deadline_at``), that end is the one
    the event records, and its automatic end is due then.
    """
    problems: list[tuple[str, str]] = []
    listed = {
        (r.case_id, r.number): r.ref
        for r in conn.execute(
            select(_notice_cases.c.case_id, _notices.c.number, _cases.c.ref)
            .join(_notices, _notices.c.id == _notice_cases.c.notice_id)
            .join(_cases, _cases.c.id == _notice_cases.c.case_id)
        )
    }
    linked: dict[tuple[int, str], str] = {}
    for r in conn.execute(
        select(_events.c.case_id, _events.c.changes, _cases.c.ref)
        .join(_cases, _cases.c.id == _events.c.case_id)
        .where(_events.c.action.in_(PUBLISHED_ACTIONS))
    ):
        number = (r.changes.get("notice") or [None, None])[1]
        linked[(r.case_id, str(number))] = r.ref
    for (case_id, number), ref in sorted(listed.items(), key=lambda kv: (kv[1], kv[0][1])):
        if (case_id, number) not in linked:
            problems.append((ref, f"listed on notice {number}, but its trail does not record it"))
    for (case_id, number), ref in sorted(linked.items(), key=lambda kv: (kv[1], kv[0][1])):
        if (case_id, number) not in listed:
            problems.append((ref, f"its trail records notice {number}, which does not list it"))
    for version_id, (state, tz, timed) in publicity.items():
        problems += _period_problems(conn, version_id, state, tz, timed)
    return problems


def _period_problems(conn: Connection, version_id: int, state: str, tz: str, timed: bool) -> list[tuple[str, str]]:
    in_state = (_cases.c.workflow_version_id == version_id, _cases.c.state == state)
    entered = (
        select(_events.c.case_id, func.max(_events.c.seq).label("seq"))
        .join(_cases, _cases.c.id == _events.c.case_id)
        .where(*in_state, _events.c.to_state == state, _events.c.from_state.is_distinct_from(state))
        .group_by(_events.c.case_id)
        .subquery()
    )
    published = {
        r.case_id: r.changes
        for r in conn.execute(
            select(_events.c.case_id, _events.c.changes)
            .join(entered, and_(entered.c.case_id == _events.c.case_id, _events.c.seq > entered.c.seq))
            .where(_events.c.action == "publicised")
            .order_by(_events.c.case_id, _events.c.seq)
        )
    }
    due = {
        r.case_id: r.due_at
        for r in conn.execute(
            select(_timers.c.case_id, _timers.c.due_at)
            .join(_cases, _cases.c.id == _timers.c.case_id)
            .where(
                *in_state,
                _timers.c.kind == "timeout",
                _timers.c.state == state,
                _timers.c.entered_at == _cases.c.entered_at,
                _timers.c.status != "cancelled",
            )
        )
    }
    problems = []
    zone = ZoneInfo(tz)
    for case in conn.execute(select(_cases.c.id, _cases.c.ref, _cases.c.deadline_at).where(*in_state)):
        changes = published.get(case.id)
        if changes is None:
            if case.deadline_at is not None:
                problems.append((case.ref, f"in {state} with a period end but on no published notice since it entered"))
            continue
        end = dt.date.fromisoformat(changes["period"][1][1])
        ends_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        if case.deadline_at != ends_at:
            problems.append(
                (case.ref, f"publicised until {end.isoformat()}, but its period end is {_iso(case.deadline_at)}")
            )
        if timed and due.get(case.id) != ends_at:
            problems.append((case.ref, f"publicised until {end.isoformat()}, but its automatic end is not due then"))
    return problems


def _iso(at: dt.datetime | None) -> str:
    return at.isoformat() if at is not None else "none"
