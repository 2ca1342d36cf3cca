"""The fast SQLite write path stores every value exactly as SQLAlchemy's own types would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from db.models import AuditEvent, Case, OutboxMessage, Timer
from engine.store.sqlite import sqlite_value

DIALECT = sqlite.dialect()
SHANGHAI = dt.timezone(dt.timedelta(hours=8))

SAMPLES: dict[str, list[Any]] = {
    "UTCDateTime": [
        None,
        dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI),
        dt.datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=dt.UTC),
        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    ],
    "JSON": [None, {}, {"申请人": "陈*强", "n": 4, "x": [1, "二", None]}, ["申请表", "身份证"], "text", 3],
    "Boolean": [None, True, False],
    "Integer": [None, 0, 7, -3],
    "String": [None, "", "ZZ-2026-000001", "芗城区"],
    "Text": [None, "多行\n文本"],
}


def columns() -> list[Any]:
    return [c for t in (Case, AuditEvent, Timer, OutboxMessage) for c in t.__table__.c]


@pytest.mark.parametrize("column", columns(), ids=lambda c: f"{c.table.name}.{c.name}")
def test_each_column_is_stored_as_sqlalchemy_stores_it(column: Any) -> None:
    kind = type(column.type).__name__
    samples = SAMPLES[kind]
    impl = column.type.dialect_impl(DIALECT)
    processor = impl.bind_processor(DIALECT)
    for value in samples:
        expected = value
        if hasattr(column.type, "process_bind_param"):
            expected = column.type.process_bind_param(value, DIALECT)
            processor = column.type.impl.dialect_impl(DIALECT).bind_processor(DIALECT)
        if processor is not None:
            expected = processor(expected)
        assert sqlite_value(column.type)(value) == expected, (column.name, value)


def test_a_naive_datetime_is_refused_like_the_column_type_refuses_it() -> None:
    with pytest.raises(ValueError, match="naive"):
        sqlite_value(Case.__table__.c.created_at.type)(dt.datetime(2026, 1, 1))
