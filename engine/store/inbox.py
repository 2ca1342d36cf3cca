"""What waits for a user: the first cases of every (version, state, scope) range, in inbox order.

The inbox order is ``grp, k1, k2, id``: running cases with a deadline
(grp 0, by deadline), running cases without one (grp 1, oldest first),
then paused cases (grp 2, longest paused first): a paused case's clock is
stopped, and the deadline it keeps is stale and would list it as overdue.
Each group of each range is one range of ``ix_cases_inbox_scope`` (scope
given) or ``ix_cases_inbox``, already in that order, so the cost depends on
the page, not on how many cases there are.

A reference search (``ref``) adds one condition to every read: a whole
reference (``exact``) is ``ref = :ref``, which the unique index on ``ref``
answers in one probe; a part of one is ``ref LIKE '%part%'`` tested on the
rows of each range as its index walks them, in the same order (no sort, no
read outside the ranges), so its cost grows with the ranges searched, not
with the whole table.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY

from engine.store import tables

__all__ = ["Range", "first_waiting"]

_cases = tables.cases

# SQLite allows 500 terms in a compound SELECT; each range is 3. More ranges (a user listing many
# counties, cases on many workflow versions) are asked in several statements and merged here.
_RANGES_PER_QUERY = 100


class Range(NamedTuple):
    """Cases on one workflow version, in one state, in one scope (None: every scope)."""

    version_id: int
    state: str
    scope: str | None


def first_waiting(conn: Connection, ranges: Sequence[Range], each: int, ref: str | None = None) -> list[int]:
    """Ids of the first ``each`` cases over all ``ranges``, in inbox order.

    ``ref``: only the cases whose reference holds it, ignoring case (a whole
    reference finds that case alone, through the index on ``ref``).

    PostgreSQL gets the ranges as arrays joined LATERAL to the reads: one
    statement whatever their number (planning a UNION of dozens of branches
    takes it longer than running them). SQLite, whose planner is quick but
    which has no LATERAL, gets a UNION ALL of the reads, one cached statement
    per number of ranges, values bound.
    """
    if not ranges:
        return []
    exact = False
    if ref is not None:
        whole = ref.upper()
        exact = conn.execute(select(_cases.c.id).where(_cases.c.ref == whole)).first() is not None
        ref = whole if exact else ref
    found: list[Any] = []
    if conn.dialect.name == "postgresql":
        scoped = [r for r in ranges if r.scope is not None]
        unscoped = [r for r in ranges if r.scope is None]
        values = {
            "vids_s": [r.version_id for r in scoped],
            "states_s": [r.state for r in scoped],
            "scopes_s": [r.scope for r in scoped],
            "vids_u": [r.version_id for r in unscoped],
            "states_u": [r.state for r in unscoped],
            "each": each,
            **_ref_params(ref, exact),
        }
        found += conn.execute(_lateral(_ref_kind(ref, exact)), values).all()
    else:
        for start in range(0, len(ranges), _RANGES_PER_QUERY):
            chunk = ranges[start : start + _RANGES_PER_QUERY]
            params: dict[str, Any] = {"each": each, **_ref_params(ref, exact)}
            for i, r in enumerate(chunk):
                params.update({f"v{i}": r.version_id, f"s{i}": r.state, **({f"c{i}": r.scope} if r.scope else {})})
            statement = _union(tuple(r.scope is not None for r in chunk), _ref_kind(ref, exact))
            found += conn.execute(statement, params).all()
    found.sort(key=_order)
    return [int(r.id) for r in found[:each]]


def _ref_kind(ref: str | None, exact: bool) -> str | None:
    """Which reference condition the statement carries: None, "exact" or "part" (part of its cache key)."""
    if ref is None:
        return None
    return "exact" if exact else "part"


def _ref_params(ref: str | None, exact: bool) -> dict[str, str]:
    if ref is None:
        return {}
    if exact:
        return {"ref": ref}
    # % and _ in what was typed match only themselves
    escaped = ref.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"ref": f"%{escaped}%"}


def _ref_condition(kind: str | None) -> list[Any]:
    c = _cases.c
    if kind == "exact":
        return [c.ref == bindparam("ref", type_=String)]
    if kind == "part":
        return [func.lower(c.ref).like(bindparam("ref", type_=String), escape="\\")]
    return []


def _groups(vid: Any, state: Any, scope: Any | None, ref_kind: str | None = None) -> list[Select[Any]]:
    """Three SELECTs of (id, grp, k1, k2): the first ``each`` cases of one range, each group in inbox order.

    (One range for all three would need ``ORDER BY ... NULLS LAST``, which
    SQLite's indexes, NULLs first, cannot give without sorting the whole range.)
    """
    c = _cases.c
    where = [c.workflow_version_id == vid, c.state == state]
    if scope is not None:
        where.append(c.scope == scope)
    where += _ref_condition(ref_kind)
    none = cast(null(), c.deadline_at.type)
    groups = (
        ([c.paused_at.is_(None), c.deadline_at.is_not(None)], c.deadline_at, none),
        ([c.paused_at.is_(None), c.deadline_at.is_(None)], none, none),
        ([c.paused_at.is_not(None)], c.paused_at, c.deadline_at),
    )
    return [
        select(c.id, literal(grp).label("grp"), k1.label("k1"), k2.label("k2"))
        .where(*where, *conditions)
        # The index's own order, including the columns tested for NULL: they are constant within the
        # group, but PostgreSQL's planner only sees that for '=', and would otherwise sort the range.
        .order_by(c.paused_at, c.deadline_at, c.id)
        .limit(bindparam("each", type_=Integer))
        for grp, (conditions, k1, k2) in enumerate(groups)
    ]


def _first(candidates: Any) -> Select[Any]:
    merged = candidates.subquery("candidates")
    return (
        select(merged)
        .order_by(merged.c.grp, merged.c.k1, merged.c.k2, merged.c.id)
        .limit(bindparam("each", type_=Integer))
    )


@functools.lru_cache(maxsize=256)
def _union(scoped: tuple[bool, ...], ref_kind: str | None = None) -> Select[Any]:
    """The UNION ALL form: ``len(scoped)`` ranges bound as ``v{i}``/``s{i}``/``c{i}`` (scope if ``scoped[i]``).

    Built once per shape and kept: building it costs more than running it,
    and users alike share it.
    """
    branches = []
    for i, has_scope in enumerate(scoped):
        scope = bindparam(f"c{i}", type_=String) if has_scope else None
        for part in _groups(bindparam(f"v{i}", type_=Integer), bindparam(f"s{i}", type_=String), scope, ref_kind):
            sub = part.subquery()  # SQLite takes no LIMIT on a bare member of a compound SELECT
            branches.append(select(sub.c.id, sub.c.grp, sub.c.k1, sub.c.k2))
    return _first(union_all(*branches))


@functools.lru_cache(maxsize=3)
def _lateral(ref_kind: str | None = None) -> Select[Any]:
    """The LATERAL form (PostgreSQL): the ranges bound as arrays (``vids_s``, ``states_s``, ``scopes_s``; ``*_u``).

    One statement for any number of ranges: planned in well under a
    millisecond, where a UNION of 60 branches takes PostgreSQL ~8 ms to plan.
    """
    sides = []
    for scoped, suffix in ((True, "s"), (False, "u")):
        arrays = [bindparam(f"vids_{suffix}", type_=ARRAY(Integer)), bindparam(f"states_{suffix}", type_=ARRAY(String))]
        names = ["vid", "state"]
        if scoped:
            arrays.append(bindparam(f"scopes_{suffix}", type_=ARRAY(String)))
            names.append("scope")
        r = func.unnest(*arrays).table_valued(*names).render_derived(name=f"ranges_{suffix}")
        reads = union_all(*_groups(r.c.vid, r.c.state, r.c.scope if scoped else None, ref_kind))
        x = reads.subquery(f"read_{suffix}").lateral()
        sides.append(select(x.c.id, x.c.grp, x.c.k1, x.c.k2).select_from(r).join(x, true()))
    return _first(union_all(*sides))


def _order(row: Any) -> tuple[Any, ...]:
    """The inbox order, for merging the answers of several statements."""

    def last_if_none(value: Any) -> tuple[int, Any]:
        return (1, 0) if value is None else (0, value)

    return (row.grp, last_if_none(row.k1), last_if_none(row.k2), row.id)
