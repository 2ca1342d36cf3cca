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
does, so a transition is: one read, at most one read of the user directory
(only when someone is to be told), this write, and the commit. On SQLite
statements are in-process calls, so they are sent one by one (SQLite has no
data-modifying CTEs) — as SQL text compiled once per shape, with the
values converted here exactly as SQLAlchemy's SQLite types would store them:
SQLAlchemy's per-statement machinery costs more than SQLite takes to run a
statement, and a step sends five (see bench/transition.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, bindparam, exists, func, insert, select, union_all, update

from db.models import AuditEvent, Case, OutboxMessage, Timer
from db.types import UTCDateTime
from engine.errors import ConflictError

__all__ = ["ChangeRows", "insert_rows", "sqlite_value", "write_change", "write_changes"]

_cases = Case.__table__
_events = AuditEvent.__table__
_timers = Timer.__table__
_outbox = OutboxMessage.__table__


@dataclass
class ChangeRows:
    """Everything one change writes, computed before anything is sent."""

    ref: str
    case_id: int
    seen_version: int | None
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
        raise ConflictError(change.ref)


def insert_rows(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    r"""Insert ``rows`` (all with the same keys) into ``table`` in one ``executemany``.

    On SQLite the statement is SQL text compiled once and the values are
    converted by :func:`sqlite_value`, which skips SQLAlchemy's per-row bind
    processing (most of a bulk insert's time); elsewhere it is Core's
    ``executemany`` (on PostgreSQL, SQLAlchemy batches it into multi-row
    ``INSERT``\ s).
    """
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    sql, convert = _sqlite_insert(table.name, tuple(rows[0]), table)
    # convert only the columns that need it: per-value calls are most of a bulk insert's Python time
    get = itemgetter(*(k for k, _ in convert))
    special = [(i, f) for i, (_, f) in enumerate(convert) if f is not _same]
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
            sql, convert = _sqlite_update(columns)
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
    cancel = [{"b_case_id": c.case_id} for c in changes if c.cancel_timers]
    if cancel and conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_SQLITE_CANCEL, [(c["b_case_id"],) for c in cancel])
    elif cancel:
        conn.execute(_CANCEL_TIMERS, cancel)
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
    matched = conn.execute(
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
    update_sql, convert = _sqlite_update(tuple(change.case_values))
    params = [f(change.case_values[k]) for k, f in convert]
    matched = conn.exec_driver_sql(update_sql, (*params, change.case_id, change.seen_version)).rowcount
    if matched != 1:
        return matched
    if change.cancel_timers:
        conn.exec_driver_sql(_SQLITE_CANCEL, (change.case_id,))
    for table, rows in ((_timers, change.timers), (_events, [change.event]), (_outbox, change.outbox)):
        if rows:
            sql, convert = _sqlite_insert(table.name, tuple(rows[0]))
            values = [tuple(f(row[k]) for k, f in convert) for row in rows]
            conn.exec_driver_sql(sql, values if len(values) > 1 else values[0])
    return matched


_SQLITE_CANCEL = "UPDATE timers SET status = 'cancelled' WHERE timers.case_id = ? AND timers.status = 'pending'"
_SQLITE_SQL: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Any]]]] = {}


def _sqlite_update(columns: tuple[str, ...]) -> tuple[str, list[tuple[str, Any]]]:
    key = ("update cases", columns)
    found = _SQLITE_SQL.get(key)
    if found is None:
        sets = ", ".join(f"{c} = ?" for c in columns)
        sql = f"UPDATE cases SET version = cases.version + 1, {sets} WHERE cases.id = ? AND cases.version = ?"
        found = _SQLITE_SQL[key] = (sql, [(c, sqlite_value(_cases.c[c].type)) for c in columns])
    return found


def _sqlite_insert(table: str, columns: tuple[str, ...], t: Any = None) -> tuple[str, list[tuple[str, Any]]]:
    key = (table, columns)
    found = _SQLITE_SQL.get(key)
    if found is None:
        t = _TABLES[table] if t is None else t
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        found = _SQLITE_SQL[key] = (sql, [(c, sqlite_value(t.c[c].type)) for c in columns])
    return found


_TABLES = {t.name: t for t in (_cases, _events, _timers, _outbox)}


def sqlite_value(column_type: Any) -> Any:
    """How SQLAlchemy's type stores a Python value in SQLite, as a plain function.

    Must match SQLAlchemy exactly, since rows written here are read back
    through SQLAlchemy: JSON as ``json.dumps`` (``None`` as JSON ``null``,
    SQLAlchemy's default), aware datetimes as naive UTC text with
    microseconds, booleans as 0/1.
    """
    if isinstance(column_type, UTCDateTime):
        return _sqlite_datetime
    if isinstance(column_type, JSON):
        return json.dumps
    if isinstance(column_type, Boolean):
        return _sqlite_bool
    return _same


def _sqlite_datetime(value: dt.datetime | None) -> str | None:
    global _last_datetime
    if value is None:
        return None
    last = _last_datetime  # one read: another thread may replace it
    if value is last[0]:
        return last[1]  # a batch stamps many rows with the same "now"
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; pass an aware datetime")
    v = value.astimezone(dt.UTC)
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    _last_datetime = (value, text)
    return text


_last_datetime: tuple[Any, Any] = (None, None)


def _sqlite_bool(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _same(value: Any) -> Any:
    return value


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


def _insert_after(table: Any, prefix: str, columns: tuple[str, ...], count: int, upd: Any) -> Any:
    """``INSERT INTO table SELECT <row params> FROM upd`` per row: nothing if ``upd`` matched nothing."""
    selects = [
        select(*(bindparam(f"{prefix}{i}_{c}", type_=table.c[c].type).label(c) for c in columns)).select_from(upd)
        for i in range(count)
    ]
    source = selects[0] if count == 1 else union_all(*selects)
    return insert(table).from_select(list(columns), source)
