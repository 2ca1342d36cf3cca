"""SQLite's fast path: SQL text compiled once per shape, values converted as SQLAlchemy's types store them.

On SQLite a statement is an in-process call that takes a few microseconds;
SQLAlchemy's per-statement machinery (compiling the construct, running each
value through its type's bind processor) costs more than that. So the hot
writes go as SQL text built once per (table, columns) and executed with
plain values — converted here exactly as SQLAlchemy's SQLite types would
store them, because the rows are read back through SQLAlchemy.
``tests/unit/test_sqlite_values.py`` checks every column against SQLAlchemy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import JSON, Boolean, Table

from db.types import UTCDateTime
from engine.store import tables

__all__ = ["CANCEL_PENDING_TIMERS", "Convert", "insert_sql", "sqlite_value", "update_case_sql"]

Convert = Callable[[Any], Any]

CANCEL_PENDING_TIMERS = "UPDATE timers SET status = 'cancelled' WHERE timers.case_id = ? AND timers.status = 'pending'"

_SQL: dict[tuple[str, tuple[str, ...]], tuple[str, list[tuple[str, Convert]]]] = {}
_TABLES = {t.name: t for t in (tables.cases, tables.events, tables.timers, tables.outbox, tables.keys)}


def update_case_sql(columns: tuple[str, ...]) -> tuple[str, list[tuple[str, Convert]]]:
    """``UPDATE cases SET version = version + 1, <columns> WHERE id = ? AND version = ?`` and its converters."""
    key = ("update cases", columns)
    found = _SQL.get(key)
    if found is None:
        sets = ", ".join(f"{c} = ?" for c in columns)
        sql = f"UPDATE cases SET version = cases.version + 1, {sets} WHERE cases.id = ? AND cases.version = ?"
        found = _SQL[key] = (sql, [(c, sqlite_value(tables.cases.c[c].type)) for c in columns])
    return found


def insert_sql(table: str, columns: tuple[str, ...], t: Table | None = None) -> tuple[str, list[tuple[str, Convert]]]:
    """``INSERT INTO table (columns) VALUES (?, …)`` and a converter per column."""
    key = (table, columns)
    found = _SQL.get(key)
    if found is None:
        t = _TABLES[table] if t is None else t
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        found = _SQL[key] = (sql, [(c, sqlite_value(t.c[c].type)) for c in columns])
    return found


def sqlite_value(column_type: Any) -> Convert:
    """How SQLAlchemy's type stores a Python value in SQLite, as a plain function.

    Must match SQLAlchemy exactly, since rows written here are read back
    through SQLAlchemy: JSON as ``json.dumps`` (``None`` as JSON ``null``,
    SQLAlchemy's default), aware datetimes as naive UTC text with
    microseconds, booleans as 0/1.
    """
    if isinstance(column_type, UTCDateTime):
        return _datetime
    if isinstance(column_type, JSON):
        return json.dumps
    if isinstance(column_type, Boolean):
        return _bool
    return same


_last_datetime: tuple[dt.datetime | None, str | None] = (None, None)


def _datetime(value: dt.datetime | None) -> str | None:
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


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def same(value: Any) -> Any:
    """The identity: a value SQLite's driver stores as it is."""
    return value
