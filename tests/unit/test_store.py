"""engine/store: what a database error means (by its code, never its text), and the version pin.

The errors are real: SQLite provokes them on a scratch file through
SQLAlchemy, connected the way the engine connects (:func:`db.make_engine`).
PostgreSQL's (unique violation, deadlock, serialization failure, a dropped
connection) and :meth:`Database.transaction` on both backends are in
tests/integration/test_store.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from db import make_engine
from engine.errors import Code, ConflictError
from engine.store.database import VersionPin
from engine.store.failures import Failure, classify


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one scratch SQLite file (WAL, as casework sets it up), with a table ``t``."""
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    first, second = make_engine(url), make_engine(url)
    with first.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, code TEXT UNIQUE, note TEXT NOT NULL)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, 'a', 'x')")
    try:
        yield first, second
    finally:
        first.dispose()
        second.dispose()


def _error(engine: Engine, work: Callable[[Connection], object]) -> DBAPIError:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        work(conn)
    return info.value


def _code(exc: DBAPIError) -> int:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    assert isinstance(code, int), exc
    return code


def test_a_writer_locked_out_with_no_busy_timeout_is_busy(engines: tuple[Engine, Engine]) -> None:
    holder, waiter = engines
    with holder.begin() as held:
        held.exec_driver_sql("INSERT INTO t VALUES (2, 'b', 'y')")  # holds the write lock until commit

        def write(conn: Connection) -> None:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            conn.exec_driver_sql("INSERT INTO t VALUES (3, 'c', 'z')")

        exc = _error(waiter, write)
    assert isinstance(exc, OperationalError)
    assert _code(exc) == sqlite3.SQLITE_BUSY
    assert classify(exc) is Failure.BUSY


def test_a_read_transaction_overtaken_by_a_commit_is_busy_by_its_extended_code(
    engines: tuple[Engine, Engine],
) -> None:
    """The case the retries exist for: read, someone else commits, write — SQLITE_BUSY_SNAPSHOT at once."""
    reader, writer = engines

    def read_then_write(conn: Connection) -> None:
        conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one()  # the snapshot is taken here
        with writer.begin() as other:
            other.exec_driver_sql("INSERT INTO t VALUES (2, 'b', 'y')")
        conn.exec_driver_sql("UPDATE t SET note = 'changed' WHERE id = 1")

    exc = _error(reader, read_then_write)
    assert _code(exc) == sqlite3.SQLITE_BUSY_SNAPSHOT  # 517: an extended code whose primary code is BUSY
    assert classify(exc) is Failure.BUSY


def test_a_table_locked_by_a_pending_read_on_the_same_connection_is_busy(engines: tuple[Engine, Engine]) -> None:
    first, _ = engines

    def drop_while_reading(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO t VALUES (2, 'b', 'y')")
        pending = conn.exec_driver_sql("SELECT id FROM t")
        pending.fetchone()  # the statement is still running
        conn.exec_driver_sql("DROP TABLE t")

    exc = _error(first, drop_while_reading)
    assert _code(exc) == sqlite3.SQLITE_LOCKED
    assert classify(exc) is Failure.BUSY


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("INSERT INTO t VALUES (2, 'a', 'y')", sqlite3.SQLITE_CONSTRAINT_UNIQUE),
        ("INSERT INTO t VALUES (1, 'b', 'y')", sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
    ],
    ids=["unique-column", "primary-key"],
)
def test_a_unique_violation_is_unique(engines: tuple[Engine, Engine], statement: str, code: int) -> None:
    exc = _error(engines[0], lambda conn: conn.exec_driver_sql(statement))
    assert isinstance(exc, IntegrityError)
    assert _code(exc) == code
    assert classify(exc) is Failure.UNIQUE


def _busy_named_table(conn: Connection) -> None:
    conn.exec_driver_sql("SELECT * FROM busy")


def _locked_named_table(conn: Connection) -> None:
    conn.exec_driver_sql('SELECT * FROM "database is locked"')


def _trigger_saying_locked(conn: Connection) -> None:
    conn.exec_driver_sql(
        "CREATE TRIGGER refuse BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, 'database is locked'); END"
    )
    conn.exec_driver_sql("INSERT INTO t VALUES (2, 'b', 'y')")


def _check_named_unique(conn: Connection) -> None:
    conn.exec_driver_sql('CREATE TABLE c (x INTEGER CONSTRAINT "UNIQUE constraint failed" CHECK (x > 0))')
    conn.exec_driver_sql("INSERT INTO c VALUES (0)")


def _not_null(conn: Connection) -> None:
    conn.exec_driver_sql("INSERT INTO t VALUES (2, 'b', NULL)")


@pytest.mark.parametrize(
    ("work", "words", "code"),
    [
        (_busy_named_table, "no such table: busy", sqlite3.SQLITE_ERROR),
        (_locked_named_table, "no such table: database is locked", sqlite3.SQLITE_ERROR),
        (_trigger_saying_locked, "database is locked", sqlite3.SQLITE_CONSTRAINT_TRIGGER),
        (_check_named_unique, "CHECK constraint failed: UNIQUE constraint failed", sqlite3.SQLITE_CONSTRAINT_CHECK),
        (_not_null, "NOT NULL constraint failed: t.note", sqlite3.SQLITE_CONSTRAINT_NOTNULL),
    ],
    ids=["table-named-busy", "table-named-database-is-locked", "trigger-says-locked", "check-named-unique", "not-null"],
)
def test_an_error_that_only_reads_like_busy_or_unique_is_other(
    engines: tuple[Engine, Engine], work: Callable[[Connection], None], words: str, code: int
) -> None:
    exc = _error(engines[0], work)
    assert str(exc.orig) == words  # the text a message-matching classifier would fall for
    assert _code(exc) == code
    assert classify(exc) is Failure.OTHER


def test_anything_but_a_database_api_error_is_other() -> None:
    assert classify(RuntimeError("database is locked")) is Failure.OTHER
    assert classify(sqlite3.OperationalError("database is locked")) is Failure.OTHER  # not through SQLAlchemy
    assert classify(ConflictError("ZZ-2026-000001")) is Failure.OTHER


# ------------------------------------------------------------------ VersionPin


def test_the_pin_holds_the_first_version_seen() -> None:
    pin = VersionPin()
    assert pin.version is None
    assert pin.hold("ZZ-2026-000001", 3) == 3
    assert pin.hold("ZZ-2026-000001", 3) == 3  # a retry that finds the same version goes on
    assert pin.version == 3


@pytest.mark.parametrize(("expected", "first", "found"), [(None, 3, 4), (5, 5, 6), (5, None, 4)])
def test_another_version_is_a_conflict_with_both_versions(expected: int | None, first: int | None, found: int) -> None:
    pin = VersionPin(expected)
    if first is not None:
        pin.hold("ZZ-2026-000001", first)
    pinned = pin.version
    with pytest.raises(ConflictError) as info:
        pin.hold("ZZ-2026-000001", found)
    error = info.value
    assert error.code is Code.CONFLICT and error.to_json()["code"] == "conflict"
    assert error.facts["case"] == "ZZ-2026-000001"
    assert (error.facts["expected_version"], error.facts["found_version"]) == (pinned, found)
    assert pin.version == pinned  # still pinned: every later attempt is held to the same version


def test_a_given_expected_version_is_held_from_the_start() -> None:
    pin = VersionPin(7)
    assert pin.version == 7
    assert pin.hold("ZZ-2026-000001", 7) == 7
