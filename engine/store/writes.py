"""Writing one change: the case row, its audit event, its timers and its outbox rows.

Every change the engine makes to a case is the same handful of writes, in
one transaction: update the case row *if its version is still the one read*
(optimistic lock), append the hash-chained audit event, replace the state's
pending timers, queue the outbox rows. :class:`ChangeRows` holds them, fully
computed; :func:`write_change` sends them.

On PostgreSQL the writes travel as **one statement** — data-modifying CTEs
that all hang off the version-checked ``UPDATE ... RETURNING``: when the
version no longer matches, the update returns no row and nothing else is
written either. A network round trip costs more than everything else a step
does, so a transition is: one read, this write, and the commit. On SQLite
statements are in-process calls, so they are sent one by one (SQLite has no
data-modifying CTEs) through :mod:`engine.store.sqlite`'s compiled text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, exists, func, insert, select, union_all, update

from engine.errors import ConflictError
from engine.store import tables
from engine.store.sqlite import CANCEL_PENDING_TIMERS, insert_sql, same, update_case_sql

__all__ = ["ChangeRows", "insert_rows", "write_change", "write_changes"]

_cases, _events, _timers, _outbox = tables.cases, tables.events, tables.timers, tables.outbox


@dataclass
class ChangeRows:
    """Everything one change writes, computed before anything is sent."""

    ref: str
    case_id: int
    seen_version: int
    case_values: dict[str, Any]
    event: dict[str, Any]
    cancel_timers: bool = False
    timers: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[dict[str, Any]] = field(default_factory=list)


def write_change(conn: Connection, change: ChangeRows) -> None:
    """Send ``change``; :class:`ConflictError` (nothing written) if the case moved on meanwhile."""
    if conn.dialect.name == "postgresql":
        statement, params = _one_statement(change)
        matched = conn.execute(statement, params).scalar_one()
    elif conn.dialect.name == "sqlite":
        matched = _sqlite_statements(conn, change)
    else:  # pragma: no cover - casework runs on SQLite and PostgreSQL
        matched = _statement_by_statement(conn, change)
    if matched != 1:
        raise ConflictError(change.ref, expected_version=change.seen_version)


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    r"""Insert ``rows`` (all with the same keys) into ``table`` in one ``executemany``.

    On SQLite the statement is SQL text compiled once and only the columns
    that need it are converted, which skips SQLAlchemy's per-row bind
    processing (most of a bulk insert's time); elsewhere it is Core's
    ``executemany`` (on PostgreSQL, SQLAlchemy batches it into multi-row
    ``INSERT``\ s).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    sql, convert = insert_sql(table.name, tuple(rows[0]), table)
    # convert only the columns that need it: per-value calls are most of a bulk insert's Python time
    get = itemgetter(*(k for k, _ in convert))
    special = [(i, f) for i, (_, f) in enumerate(convert) if f is not same]
    values = []
    for row in rows:
        picked = get(row)
        value = list(picked) if isinstance(picked, tuple) and len(convert) > 1 else [picked]
        for i, f in special:
            value[i] = f(value[i])
        values.append(tuple(value))
    conn.exec_driver_sql(sql, values)


def write_changes(conn: Connection, changes: list[ChangeRows]) -> None:
    """Send many changes as one batch: one ``executemany`` per table.

    The caller must hold the cases still (read them ``FOR UPDATE`` on
    PostgreSQL; SQLite's single writer does it by itself), so every version
    check matches; if one does not, :class:`ConflictError` and the caller's
    transaction is rolled back whole.
    """
    if not changes:
        return
    groups: dict[tuple[str, ...], list[ChangeRows]] = {}
    for c in changes:
        groups.setdefault(tuple(c.case_values), []).append(c)
    if conn.dialect.name == "sqlite":
        matched = 0
        for columns, group in groups.items():
            sql, convert = update_case_sql(columns)
            params = [(*(f(c.case_values[k]) for k, f in convert), c.case_id, c.seen_version) for c in group]
            matched += conn.exec_driver_sql(sql, params).rowcount
    else:
        matched = sum(
            conn.execute(
                _UPDATE_CASE, [{"b_case_id": c.case_id, "b_seen": c.seen_version, **c.case_values} for c in group]
            ).rowcount
            for group in groups.values()
        )
    if matched != len(changes):
        raise ConflictError(changes[0].ref if len(changes) == 1 else f"{len(changes) - matched} of the batch")
    cancel = [c.case_id for c in changes if c.cancel_timers]
    if cancel and conn.dialect.name == "sqlite":
        conn.exec_driver_sql(CANCEL_PENDING_TIMERS, [(case_id,) for case_id in cancel])
    elif cancel:
        conn.execute(_CANCEL_TIMERS, [{"b_case_id": case_id} for case_id in cancel])
    insert_rows(conn, _timers, [t for c in changes for t in c.timers])
    insert_rows(conn, _events, [c.event for c in changes])
    insert_rows(conn, _outbox, [o for c in changes for o in c.outbox])


# Statements are built once and executed with parameters: building a Core
# construct costs more than SQLite takes to run it.
_UPDATE_CASE = (
    update(_cases)
    .where(_cases.c.id == bindparam("b_case_id"), _cases.c.version == bindparam("b_seen"))
    .values(version=_cases.c.version + 1)
)
_CANCEL_TIMERS = (
    update(_timers)
    .where(_timers.c.case_id == bindparam("b_case_id"), _timers.c.status == "pending")
    .values(status="cancelled")
)
_INSERT = {t.name: insert(t) for t in (_events, _timers, _outbox)}


def _statement_by_statement(conn: Connection, change: ChangeRows) -> int:
    matched: int = conn.execute(
        _UPDATE_CASE, {"b_case_id": change.case_id, "b_seen": change.seen_version, **change.case_values}
    ).rowcount
    if matched != 1:
        return matched
    if change.cancel_timers:
        conn.execute(_CANCEL_TIMERS, {"b_case_id": change.case_id})
    if change.timers:
        conn.execute(_INSERT["timers"], change.timers)
    conn.execute(_INSERT["audit_events"], change.event)
    if change.outbox:
        conn.execute(_INSERT["outbox"], change.outbox)
    return matched


def _sqlite_statements(conn: Connection, change: ChangeRows) -> int:
    update_sql, convert = update_case_sql(tuple(change.case_values))
    params = [f(change.case_values[k]) for k, f in convert]
    matched: int = conn.exec_driver_sql(update_sql, (*params, change.case_id, change.seen_version)).rowcount
    if matched != 1:
        return matched
    if change.cancel_timers:
        conn.exec_driver_sql(CANCEL_PENDING_TIMERS, (change.case_id,))
    for table, rows in ((_timers, change.timers), (_events, [change.event]), (_outbox, change.outbox)):
        if rows:
            sql, converters = insert_sql(table.name, tuple(rows[0]))
            values = [tuple(f(row[k]) for k, f in converters) for row in rows]
            conn.exec_driver_sql(sql, values if len(values) > 1 else values[0])
    return matched


def _one_statement(change: ChangeRows) -> tuple[Any, dict[str, Any]]:
    """``WITH upd AS (UPDATE cases ... RETURNING id), ... INSERT ... SELECT ... FROM upd``, then count ``upd``.

    The statement is cached by its shape (which columns, how many rows), so
    steps of the same kind reuse one construct and one compiled form.
    """
    groups = (("e", [change.event]), ("t", change.timers), ("o", change.outbox))
    shape = (
        tuple(change.case_values),
        change.cancel_timers,
        *((tuple(rows[0]) if rows else (), len(rows)) for _, rows in groups),
    )
    statement = _SHAPES.get(shape)
    if statement is None:
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        statement = _SHAPES[shape] = _build(shape)
    params: dict[str, Any] = {"b_case_id": change.case_id, "b_seen": change.seen_version}
    params.update({f"v_{k}": v for k, v in change.case_values.items()})
    for prefix, rows in groups:
        for i, row in enumerate(rows):
            params.update({f"{prefix}{i}_{k}": v for k, v in row.items()})
    return statement, params


_SHAPES: dict[tuple[Any, ...], Any] = {}
_MAX_SHAPES = 512  # shapes vary with the number of recipients; bounded, not a leak


def _build(shape: tuple[Any, ...]) -> Any:
    case_columns, cancel, *groups = shape
    upd = (
        update(_cases)
        .where(_cases.c.id == bindparam("b_case_id"), _cases.c.version == bindparam("b_seen"))
        .values(version=_cases.c.version + 1, **{c: bindparam(f"v_{c}", type_=_cases.c[c].type) for c in case_columns})
        .returning(_cases.c.id)
        .cte("upd")
    )
    ctes = []
    if cancel:
        ctes.append(
            update(_timers)
            .where(
                _timers.c.case_id == bindparam("b_case_id"),
                _timers.c.status == "pending",
                exists(select(upd.c.id)),
            )
            .values(status="cancelled")
            .cte("cancelled")
        )
    for (prefix, table), (columns, count) in zip((("e", _events), ("t", _timers), ("o", _outbox)), groups, strict=True):
        if count:
            ctes.append(_insert_after(table, prefix, columns, count, upd).cte(f"{table.name}_new"))
    return select(func.count()).select_from(upd).add_cte(*ctes)


def _insert_after(table: Table, prefix: str, columns: tuple[str, ...], count: int, upd: Any) -> Any:
    """``INSERT INTO table SELECT <row params> FROM upd`` per row: nothing if ``upd`` matched nothing."""
    selects = [
        select(*(bindparam(f"{prefix}{i}_{c}", type_=table.c[c].type).label(c) for c in columns)).select_from(upd)
        for i in range(count)
    ]
    source = selects[0] if count == 1 else union_all(*selects)
    return insert(table).from_select(list(columns), source)
