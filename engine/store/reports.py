"""The reports' SQL: every figure counted and summed in the database, one grouped statement per report.

Nothing here loops over cases in Python: each function sends one SELECT
that groups in the database and returns the grouped rows (a few hundred at
most: states × counties × types, counties × years). :mod:`engine.reports`
decides what to ask (which states, which instants) from the workflow
definitions and turns the rows into a :class:`~engine.sheets.Sheet`.

The same statements run on SQLite and PostgreSQL and give the same rows:

* **a case's state at an instant** (:func:`state_before`) is the
  ``to_state`` of its last audit event before that instant (every event
  records the state the case was left in; edits, pauses and publications
  leave it where it was). A case not changed since (``updated_at`` before
  the instant — ``updated_at`` is the time of its newest event) is in its
  current state, read from the row; only the others look at their trail,
  newest event first through the ``(case_id, seq)`` unique index.
* **years in a time zone**: a case's year is found by comparing
  ``created_at`` with each year's first instant in the workflow's zone,
  worked out in Python (:func:`year_starts`), so daylight saving and
  historical offsets are right on both backends and no SQL time-zone
  function is needed.
* **money** is summed in integer cents. A decimal field is stored as
  canonical text (``"612.5"``); on PostgreSQL it is cast to ``NUMERIC``, on
  SQLite (whose ``NUMERIC`` is a binary float: ``1.005 * 100`` is
  ``100.4999…``) the text is split into its whole and fractional digits, so
  both round a sub-cent amount half away from zero identically and no
  float is ever summed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Numeric,
    String,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
)

from engine.store import tables

__all__ = [
    "ArchiveCount",
    "ExitCount",
    "OverdueCount",
    "PetitionCount",
    "ProgrammeTotal",
    "archive_counts",
    "exit_counts",
    "overdue_counts",
    "petition_counts",
    "programme_totals",
    "state_before",
    "year_of",
    "year_starts",
]

_cases = tables.cases
_events = tables.events


class ArchiveCount(NamedTuple):
    """Cases in one state, county and household type."""

    state: str | None
    scope: str | None
    kind: str | None
    cases: int


class ExitCount(NamedTuple):
    """One county's year: filed at its start, of them exited in it; filed in it, of them exited in it."""

    scope: str | None
    filed_at_start: int
    exited: int
    filed_in_year: int
    filed_and_exited: int


class ProgrammeTotal(NamedTuple):
    """One county's year of one programme; amounts in integer cents."""

    scope: str | None
    year: int | None
    cases: int
    granted_cases: int
    people: int
    granted_cents: int
    paid_cents: int


class PetitionCount(NamedTuple):
    """One county's petitions: registered, closed, void (final but not closed), open, overdue."""

    scope: str | None
    registered: int
    closed: int
    void: int
    open: int
    overdue: int


class OverdueCount(NamedTuple):
    """Cases of one workflow, county and state past their deadline; the oldest deadline among them."""

    workflow: str
    scope: str | None
    state: str
    cases: int
    oldest: dt.datetime


# ------------------------------------------------------------------ building blocks


def state_before(cut: dt.datetime) -> ColumnElement[Any]:
    """The case's state just before ``cut`` (events at ``cut`` or later not counted); NULL if it did not exist.

    For a row of ``cases`` in the enclosing query.
    """
    c = _cases.c
    e = _events.c
    from_trail = (
        select(e.to_state)
        .where(e.case_id == c.id, e.at < cut, e.to_state.is_not(None))
        .order_by(e.seq.desc())
        .limit(1)
        .correlate(_cases)
        .scalar_subquery()
    )
    return case(
        (c.created_at >= cut, cast(null(), String)),
        # unchanged since before the cut: the row's state is the state then
        (c.updated_at < cut, c.state),
        else_=from_trail,
    )


def _entered_within(states: Sequence[str], start: dt.datetime, end: dt.datetime) -> ColumnElement[int]:
    """Bit ``i`` set when the case entered ``states[i]`` (from another state, or opened in it) in ``[start, end)``.

    One pass over the case's events of that span, whatever the number of
    states; 0 for a case not changed since ``start`` (its trail is not read).
    """
    c = _cases.c
    e = _events.c
    moved = or_(e.from_state.is_(None), e.from_state != e.to_state)
    bits = sum(
        (func.max(case((and_(e.to_state == state, moved), 1 << i), else_=0)) for i, state in enumerate(states)),
        start=literal(0),
    )
    trail = (
        select(func.coalesce(bits, 0))
        .where(e.case_id == c.id, e.at >= start, e.at < end)
        .correlate(_cases)
        .scalar_subquery()
    )
    # only a case changed since ``start`` can have entered a state since
    return case((c.updated_at >= start, trail), else_=0)


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _scoped(query: Any, scopes: Collection[str] | None) -> Any:
    return query if scopes is None else query.where(_cases.c.scope.in_(sorted(scopes)))


def _count(value: Any) -> int:
    """A SUM of flags: NULL over no rows; PostgreSQL's SUM of integers is NUMERIC."""
    return int(value or 0)


def year_starts(zone: dt.tzinfo, first: int, last: int) -> list[tuple[int, dt.datetime]]:
    """``(year, its first instant in zone, as UTC)`` for ``first``..``last + 1`` (the end of ``last``)."""
    return [(y, dt.datetime(y, 1, 1, tzinfo=zone).astimezone(dt.UTC)) for y in range(first, last + 2)]


def year_of(column: Any, starts: Sequence[tuple[int, dt.datetime]]) -> ColumnElement[Any]:
    """The year (per ``starts``, from :func:`year_starts`) an instant falls in; NULL outside them.

    Newest year first: most cases are recent, so most stop at the first comparison.
    """
    whens = [(column >= at, literal(y)) for y, at in reversed(starts[:-1])]
    return case(*whens, else_=cast(null(), Integer)) if whens else cast(null(), Integer)


def _cents(conn: Connection, field: str) -> ColumnElement[Any]:
    """A decimal (or integer) field in integer cents, half away from zero; NULL when absent."""
    raw = _cases.c.data[field].as_string()
    if conn.dialect.name == "postgresql":
        return cast(func.round(cast(raw, Numeric) * 100), BigInteger)
    # SQLite: from the stored text, without a float. "-612.505" → -(612 * 100 + 50 + 1)
    text = cast(raw, String)
    digits = func.ltrim(text, "+-")
    point = func.instr(digits, ".")
    fraction = case((point > 0, func.substr(digits + "000", point + 1, 3)), else_="000")
    whole = cast(case((point > 0, func.substr(digits, 1, point - 1)), else_=digits), Integer)
    hundredths = cast(func.substr(fraction, 1, 2), Integer)
    up = case((cast(func.substr(fraction, 3, 1), Integer) >= 5, 1), else_=0)
    magnitude = whole * 100 + hundredths + up
    return case((raw.is_(None), cast(null(), Integer)), (func.substr(text, 1, 1) == "-", -magnitude), else_=magnitude)


# ------------------------------------------------------------------ the reports


def archive_counts(
    conn: Connection,
    workflow: str,
    kind_field: str | None,
    *,
    before: dt.datetime | None = None,
    scopes: Collection[str] | None = None,
) -> list[ArchiveCount]:
    """Cases of ``workflow`` per (state, county, ``kind_field`` value): now, or just before ``before``.

    Now, the row's state is read (an index-only count on ``(workflow, state)``
    when unscoped); before an instant, :func:`state_before`, and cases opened
    since are not counted.
    """
    c = _cases.c
    kind = c.data[kind_field].as_string() if kind_field else cast(null(), String)
    state = c.state if before is None else state_before(before)
    inner = select(state.label("state"), c.scope.label("scope"), kind.label("kind")).where(c.workflow == workflow)
    if before is not None:
        inner = inner.where(c.created_at < before)
    rows = _scoped(inner, scopes).subquery("per_case")
    r = rows.c
    query = (
        select(r.state, r.scope, r.kind, func.count().label("cases"))
        .group_by(r.state, r.scope, r.kind)
        .order_by(r.state, r.scope, r.kind)
    )
    return [ArchiveCount(row.state, row.scope, row.kind, int(row.cases)) for row in conn.execute(query)]


def exit_counts(
    conn: Connection,
    workflow: str,
    *,
    start: dt.datetime,
    end: dt.datetime,
    filed: str,
    exited: str,
    scopes: Collection[str] | None = None,
) -> list[ExitCount]:
    """Per county: cases in ``filed`` just before ``start``; of them, those that entered ``exited`` in [start, end).

    Also the cases not in ``filed`` at ``start`` that entered it in
    [start, end), and of them those that entered ``exited`` then too.
    """
    c = _cases.c
    inner = select(
        c.scope.label("scope"),
        state_before(start).label("at_start"),
        _entered_within((exited, filed), start, end).label("entered"),
    ).where(c.workflow == workflow, c.created_at < end)
    rows = _scoped(inner, scopes).subquery("per_case")
    r = rows.c
    left, came = r.entered.op("&")(1) == 1, r.entered.op("&")(2) == 2
    on_file = and_(r.at_start.is_not(None), r.at_start == filed)
    newly = and_(or_(r.at_start.is_(None), r.at_start != filed), came)
    query = (
        select(
            r.scope,
            func.sum(_flag(on_file)).label("filed_at_start"),
            func.sum(_flag(and_(on_file, left))).label("exited"),
            func.sum(_flag(newly)).label("filed_in_year"),
            func.sum(_flag(and_(newly, left))).label("filed_and_exited"),
        )
        .group_by(r.scope)
        .order_by(r.scope)
    )
    return [
        ExitCount(row.scope, *(_count(v) for v in row[1:]))
        for row in conn.execute(query)
        if any(row[1:])  # a county with no archive on file or filed this year says nothing
    ]


def programme_totals(
    conn: Connection,
    workflow: str,
    *,
    amount: str,
    people: str | None,
    year_field: str | None,
    starts: Sequence[tuple[int, dt.datetime]],
    granted: Collection[str],
    paid: Collection[str],
    year: int | None = None,
    scopes: Collection[str] | None = None,
) -> list[ProgrammeTotal]:
    """Per county and programme year: cases, granted cases, their people and amount; the amount paid (cents).

    The year is the integer ``year_field`` of the case, or the year (per
    ``starts``, :func:`year_starts`) it was opened; ``year`` keeps one.
    """
    c = _cases.c
    if year_field is not None:
        year_value: ColumnElement[Any] = c.data[year_field].as_integer()
    else:
        year_value = year_of(c.created_at, starts)
    is_granted = c.state.in_(sorted(granted)) if granted else false()
    is_paid = c.state.in_(sorted(paid)) if paid else false()
    heads = c.data[people].as_integer() if people is not None else literal(1)
    cents = _cents(conn, amount)
    inner = select(
        c.scope.label("scope"),
        year_value.label("year"),
        _flag(is_granted).label("granted"),
        case((is_granted, func.coalesce(heads, 0)), else_=0).label("people"),
        case((is_granted, func.coalesce(cents, 0)), else_=0).label("granted_cents"),
        case((is_paid, func.coalesce(cents, 0)), else_=0).label("paid_cents"),
    ).where(c.workflow == workflow)
    if year is not None and year_field is not None:
        # guarded by the workflow: PostgreSQL does not promise to test workflow = … first, and another
        # workflow's field of that name may hold text that cannot be cast to a number
        inner = inner.where(case((c.workflow == workflow, year_value), else_=cast(null(), Integer)) == year)
    elif year is not None:
        bounds = dict(starts)
        inner = inner.where(c.created_at >= bounds[year], c.created_at < bounds[year + 1])
    rows = _scoped(inner, scopes).subquery("per_case")
    r = rows.c
    query = (
        select(
            r.scope,
            r.year,
            func.count().label("cases"),
            func.sum(r.granted),
            func.sum(r.people),
            func.sum(r.granted_cents),
            func.sum(r.paid_cents),
        )
        .group_by(r.scope, r.year)
        .order_by(r.year, r.scope)
    )
    return [
        ProgrammeTotal(row.scope, row.year, int(row.cases), *(_count(v) for v in row[3:]))
        for row in conn.execute(query)
    ]


def petition_counts(
    conn: Connection,
    workflow: str,
    *,
    closed: Collection[str],
    void: Collection[str],
    now: dt.datetime,
    opened: tuple[dt.datetime, dt.datetime] | None = None,
    scopes: Collection[str] | None = None,
) -> list[PetitionCount]:
    """Per county: cases registered, closed (``closed`` states), void, open (neither), overdue at ``now``.

    Overdue: open, past its deadline (``deadline_at <= now``) and not paused — as ``case list --overdue``.
    ``opened``: only cases opened in ``[start, end)``.
    """
    c = _cases.c
    is_closed = c.state.in_(sorted(closed)) if closed else false()
    is_void = c.state.in_(sorted(void)) if void else false()
    is_open = and_(~is_closed, ~is_void) if closed or void else true()
    late = and_(is_open, c.deadline_at.is_not(None), c.deadline_at <= now, c.paused_at.is_(None))
    query = select(
        c.scope,
        func.count().label("registered"),
        func.sum(_flag(is_closed)),
        func.sum(_flag(is_void)),
        func.sum(_flag(is_open)),
        func.sum(_flag(late)),
    ).where(c.workflow == workflow)
    if opened is not None:
        query = query.where(c.created_at >= opened[0], c.created_at < opened[1])
    query = _scoped(query, scopes).group_by(c.scope).order_by(c.scope)
    return [PetitionCount(row.scope, int(row.registered), *(_count(v) for v in row[2:])) for row in conn.execute(query)]


def overdue_counts(conn: Connection, *, now: dt.datetime, scopes: Collection[str] | None = None) -> list[OverdueCount]:
    """Per workflow, county and state: open cases past their deadline at ``now`` and not paused; oldest first.

    Past its deadline: ``deadline_at <= now``, as ``case list --overdue``; a
    paused case's clock is stopped, so it is not overdue.
    """
    c = _cases.c
    oldest = func.min(c.deadline_at)
    query = (
        select(c.workflow, c.scope, c.state, func.count().label("cases"), oldest.label("oldest"))
        .where(c.deadline_at <= now, c.paused_at.is_(None))
        .group_by(c.workflow, c.scope, c.state)
    )
    query = _scoped(query, scopes).order_by(oldest, c.workflow, c.scope, c.state)
    return [
        OverdueCount(row.workflow, row.scope, row.state, int(row.cases), _aware(row.oldest))
        for row in conn.execute(query)
    ]


def _aware(value: Any) -> dt.datetime:
    """MIN over a UTC column loses the column's type on SQLite (a string there); an aware UTC datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
