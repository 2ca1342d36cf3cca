"""The ``cases`` table: the reads a step needs, lists, and the inserts that open cases.

A step reads once: :func:`read_step` brings the case, its open objections,
the user directory (for notifications) and the acting user in one query.
Queries used on every step are built once per dialect and executed with
parameters — building a Core construct costs more than SQLite takes to run it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Connection, Select, bindparam, func, or_, select

from engine.access import Actor, Person
from engine.store import tables
from engine.store.tables import CaseRow
from engine.store.users import directory_column, parse_directory
from engine.store.writes import insert_rows

__all__ = [
    "OPEN_OBJECTIONS",
    "NameSearch",
    "ShownRow",
    "StepRead",
    "ViewRow",
    "count_by",
    "insert_cases",
    "list_cases",
    "open_objections",
    "provisional_refs",
    "read_batch",
    "read_case",
    "read_case_by_id",
    "read_step",
    "read_views",
    "refs_in_state",
]

_cases = tables.cases
_objections = tables.objections
_users = tables.users
_actor_users = _users.alias("actor")
_N = len(_cases.columns)

#: a case's open objections, as a column of a case read (guards may read ``case.open_objections``)
OPEN_OBJECTIONS = (
    select(func.count())
    .select_from(_objections)
    .where(_objections.c.case_id == _cases.c.id, _objections.c.status == "open")
    .scalar_subquery()
    .label("open_objections")
)


class StepRead(NamedTuple):
    """What a step reads: the case, its open objections, the user directory and the acting user."""

    case: CaseRow
    open_objections: int
    directory: list[Person]
    actor: Actor | None  # None: no user of that name, or a disabled one (or none was asked for)


def _step_reads(dialect: str) -> tuple[Select[Any], Select[Any]]:
    case = select(_cases, OPEN_OBJECTIONS, directory_column(dialect)).where(_cases.c.ref == bindparam("b_ref"))
    with_actor = case.add_columns(
        _actor_users.c.username.label("actor_username"),
        _actor_users.c.roles.label("actor_roles"),
        _actor_users.c.scopes.label("actor_scopes"),
    ).outerjoin_from(
        _cases,
        _actor_users,
        # a disabled user is not found here: the caller then asks find_actor, which says why
        (_actor_users.c.username == bindparam("b_actor")) & _actor_users.c.disabled_at.is_(None),
    )
    return case, with_actor


_STEP_READS = {name: _step_reads(name) for name in ("sqlite", "postgresql")}


def read_step(conn: Connection, ref: str, username: str | None) -> StepRead | None:
    """The case ``ref`` with what a step needs, and the user ``username`` (if given); None if no such case."""
    if "\x00" in ref:
        return None
    case_read, with_actor = _STEP_READS[conn.dialect.name]
    if username is None:
        row = conn.execute(case_read, {"b_ref": ref}).first()
    else:
        row = conn.execute(with_actor, {"b_ref": ref, "b_actor": username}).first()
    if row is None:
        return None
    actor = None
    if username is not None and row.actor_username is not None:
        actor = Actor(row.actor_username, tuple(row.actor_roles), tuple(row.actor_scopes))
    return StepRead(CaseRow._make(row[:_N]), row.open_objections, parse_directory(row.directory), actor)


def read_case(conn: Connection, ref: str) -> CaseRow | None:
    """The case ``ref``, or None."""
    if "\x00" in ref:
        return None
    row = conn.execute(select(_cases).where(_cases.c.ref == ref)).first()
    return CaseRow._make(row) if row is not None else None


def read_case_by_id(conn: Connection, case_id: int) -> CaseRow:
    """The case with row id ``case_id`` (which must exist)."""
    return CaseRow._make(conn.execute(select(_cases).where(_cases.c.id == case_id)).one())


def open_objections(conn: Connection, case_id: int) -> int:
    """How many objections to the case are open."""
    count = conn.execute(
        select(func.count())
        .select_from(_objections)
        .where(_objections.c.case_id == case_id, _objections.c.status == "open")
    ).scalar_one()
    return int(count)


_BATCH_READS: dict[str, Select[Any]] = {}


def read_batch(conn: Connection, refs: Sequence[str]) -> dict[str, tuple[CaseRow, int]]:
    """The cases of ``refs`` that exist, with their open objections; held ``FOR UPDATE`` on PostgreSQL."""
    query = _BATCH_READS.get(conn.dialect.name)
    if query is None:
        query = select(_cases, OPEN_OBJECTIONS).where(_cases.c.ref.in_(bindparam("b_refs", expanding=True)))
        if conn.dialect.name == "postgresql":
            # lock the batch's rows in a fixed order: two bulk steps never deadlock, and a single
            # step on one of these cases waits for the batch instead of slipping in between
            query = query.order_by(_cases.c.id).with_for_update(of=_cases)
        _BATCH_READS[conn.dialect.name] = query
    out = {}
    for row in conn.execute(query, {"b_refs": list(refs)}):
        case = CaseRow._make(row[:_N])
        out[case.ref] = (case, int(row.open_objections))
    return out


def insert_cases(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert new case rows (all with the same keys); return their ids in order.

    On SQLite the caller holds the write lock (it bumped the reference
    counter in this transaction), so no one else can insert a case until it
    commits: the next ids are ours to give, and the fast insert needs no
    ``RETURNING``.
    """
    if conn.dialect.name == "sqlite":
        top = int(conn.execute(select(func.coalesce(func.max(_cases.c.id), 0))).scalar_one())
        ids = list(range(top + 1, top + 1 + len(rows)))
        insert_rows(conn, _cases, [{"id": i, **r} for i, r in zip(ids, rows, strict=True)])
        return ids
    returning = _cases.insert().returning(_cases.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(returning, rows).scalars().all()]


class ShownRow(Protocol):
    """The columns a case's view is made of (a :class:`CaseRow` or a :class:`ViewRow`)."""

    @property
    def ref(self) -> str: ...
    @property
    def workflow_version_id(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def scope(self) -> str | None: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def updated_at(self) -> dt.datetime: ...
    @property
    def deadline_at(self) -> dt.datetime | None: ...
    @property
    def deadline_provisional(self) -> bool: ...
    @property
    def paused_at(self) -> dt.datetime | None: ...
    @property
    def paused_left(self) -> dict[str, Any] | None: ...


class ViewRow(NamedTuple):
    """Only what a case's view shows (not ``fired_by``, the audit head …): less to read and decode per row."""

    id: int
    ref: str
    workflow_version_id: int
    state: str
    scope: str | None
    data: dict[str, Any]
    version: int
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    deadline_at: dt.datetime | None
    deadline_provisional: bool
    paused_at: dt.datetime | None
    paused_left: dict[str, Any] | None


_VIEW_COLUMNS = tuple(_cases.c[name] for name in ViewRow._fields)


def read_views(conn: Connection, ids: Sequence[int]) -> dict[int, ViewRow]:
    """The shown columns of the cases with these row ids."""
    if not ids:
        return {}
    rows = conn.execute(select(*_VIEW_COLUMNS).where(_cases.c.id.in_(list(ids))))
    return {r.id: ViewRow._make(r) for r in rows}


class NameSearch(NamedTuple):
    """A search text, matched in a case's reference and in its applicant's name field.

    ``names`` maps each name field to the workflow versions whose applicant
    it is: a field is searched only in the cases of those versions.
    """

    text: str
    names: Mapping[str, Sequence[int]]


def _contains(column: Any, text: str) -> Any:
    """``column`` holds ``text`` anywhere, case-insensitively; ``%`` and ``_`` in it match only themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def list_cases(
    conn: Connection,
    *,
    workflow: str | None = None,
    state: str | None = None,
    scopes: Sequence[str] | None = None,
    counties: Sequence[str] | None = None,
    household_type: str | None = None,
    search: NameSearch | None = None,
    after: int | None = None,
    overdue_at: dt.datetime | None = None,
    limit: int | None = None,
    batch: int | None = None,
) -> Generator[CaseRow, None, None]:
    """Cases by id (or, with ``overdue_at``, those past their deadline then and not paused, most overdue first).

    ``scopes``: only cases in one of them, or without a scope (None: all) —
    what a user may see; every other filter narrows within it, so a search
    never counts a case the user may not see. ``counties``: only cases in
    one of them. ``household_type``: only cases whose ``household_type``
    is that. ``search``: the text in the reference or the applicant's name.
    ``batch``: fetch this many rows at a time (a server-side cursor on
    PostgreSQL), so a long list is never held whole.
    """
    query = select(_cases).order_by(_cases.c.id)
    if overdue_at is not None:
        query = (
            select(_cases)
            .where(_cases.c.deadline_at <= overdue_at, _cases.c.paused_at.is_(None))
            .order_by(_cases.c.deadline_at, _cases.c.id)
        )
    if workflow:
        query = query.where(_cases.c.workflow == workflow)
    if state:
        query = query.where(_cases.c.state == state)
    if scopes is not None:
        query = query.where(_cases.c.scope.in_(list(scopes)) | _cases.c.scope.is_(None))
    if counties:
        query = query.where(_cases.c.scope.in_(list(counties)))
    if household_type is not None:
        query = query.where(_cases.c.data["household_type"].as_string() == household_type)
    if search is not None:
        matches = [_contains(_cases.c.ref, search.text)]
        for field, version_ids in search.names.items():
            in_versions = _cases.c.workflow_version_id.in_(list(version_ids))
            matches.append(in_versions & _contains(_cases.c.data[field].as_string(), search.text))
        query = query.where(or_(*matches))
    if after is not None:  # the next page after the case of id ``after`` (keyset paging)
        query = query.where(_cases.c.id > after)
    if limit:
        query = query.limit(limit)
    if batch:
        query = query.execution_options(yield_per=batch)
    result = conn.execute(query)
    try:
        for row in result:
            yield CaseRow._make(row)
    finally:
        # a list left early (a limit, a failed export) closes its server-side cursor now, not when collected
        result.close()


def count_by(conn: Connection, workflow: str | None = None) -> list[tuple[str, str | None, str, int]]:
    """(workflow, scope, state, count) rows."""
    query = select(_cases.c.workflow, _cases.c.scope, _cases.c.state, func.count()).group_by(
        _cases.c.workflow, _cases.c.scope, _cases.c.state
    )
    if workflow:
        query = query.where(_cases.c.workflow == workflow)
    return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]


def refs_in_state(conn: Connection, workflow: str, state: str) -> list[tuple[str, dict[str, Any]]]:
    """(ref, data) of every case of ``workflow`` in ``state``, oldest first."""
    rows = conn.execute(
        select(_cases.c.ref, _cases.c.data)
        .where(_cases.c.workflow == workflow, _cases.c.state == state)
        .order_by(_cases.c.id)
    )
    return [(r.ref, r.data) for r in rows]


def provisional_refs(conn: Connection, *, running_only: bool = False) -> list[str]:
    """Refs of the cases whose deadline is provisional (``running_only``: not paused), oldest first."""
    query = select(_cases.c.ref).where(_cases.c.deadline_provisional.is_(True)).order_by(_cases.c.id)
    if running_only:
        query = query.where(_cases.c.paused_at.is_(None))
    return list(conn.execute(query).scalars())
