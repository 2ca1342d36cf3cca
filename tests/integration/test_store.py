"""engine/store on real databases: PostgreSQL's errors classified by SQLSTATE, and retried transactions.

:func:`~engine.store.failures.classify` reads PostgreSQL's SQLSTATE: a unique
violation (23505) is UNIQUE; a deadlock (40P01) provoked between two
connections and a serialization failure (40001) are DEADLOCK; a connection
the server ended is DISCONNECTED; an error that merely says "deadlock" is
OTHER. (SQLite's codes: tests/unit/test_store.py.)

:meth:`Database.transaction` runs its work again when the first attempt is
overtaken by another writer's commit — SQLite answers SQLITE_BUSY_SNAPSHOT,
PostgreSQL (in a repeatable-read transaction) 40001 — and when its
connection dies; it gives up at once on anything else; and a retried change
held by a :class:`VersionPin` never applies on top of the other writer's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from db import make_engine
from engine.errors import ConflictError
from engine.store.database import Database, VersionPin
from engine.store.failures import Failure, classify
from tests.integration.race_support import postgres_only

REF = "ZZ-2026-000001"


@pytest.fixture
def scratch(engine: Engine) -> Iterator[Engine]:
    """The test's database with a table ``scratch`` of two rows (id, version, note)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, note TEXT)")
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1, 1, 'start'), (2, 1, 'start')")
    yield engine


@pytest.fixture
def other(db_url: str, scratch: Engine) -> Iterator[Engine]:
    """A second engine on the same database: another writer."""
    second = make_engine(db_url)
    yield second
    second.dispose()


def row(engine: Engine, id_: int = 1) -> tuple[int, str]:
    with engine.connect() as conn:
        version, note = conn.execute(text("SELECT version, note FROM scratch WHERE id = :id"), {"id": id_}).one()
    return int(version), str(note)


def sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


# ------------------------------------------------------------------ classify on PostgreSQL


@postgres_only()
def test_a_unique_violation_is_unique(scratch: Engine) -> None:
    with pytest.raises(IntegrityError) as info, scratch.begin() as conn:
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1, 1, 'again')")
    assert sqlstate(info.value) == "23505"
    assert classify(info.value) is Failure.UNIQUE


@postgres_only()
def test_a_deadlock_between_two_connections_is_deadlock(scratch: Engine, other: Engine) -> None:
    errors: list[DBAPIError] = []
    with scratch.connect() as a, other.connect() as b, scratch.connect() as watcher:
        for conn in (a, b):
            conn.exec_driver_sql("SET deadlock_timeout = '100ms'")
            conn.commit()
        a_pid = int(a.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())
        a.exec_driver_sql("UPDATE scratch SET note = 'a' WHERE id = 1")
        b.exec_driver_sql("UPDATE scratch SET note = 'b' WHERE id = 2")
        waiting = text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND NOT granted")

        def a_takes_row_2() -> None:
            try:
                a.exec_driver_sql("UPDATE scratch SET note = 'a' WHERE id = 2")
            except DBAPIError as exc:
                errors.append(exc)

        thread = threading.Thread(target=a_takes_row_2)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            # wait until a is queued behind b's lock, so b's next statement closes the cycle
            while not watcher.execute(waiting, {"pid": a_pid}).scalar_one():
                assert time.monotonic() < deadline, "a never waited for b's lock"
                time.sleep(0.01)
            watcher.rollback()
            try:
                b.exec_driver_sql("UPDATE scratch SET note = 'b' WHERE id = 1")
            except DBAPIError as exc:
                errors.append(exc)
        finally:
            thread.join(30)
        a.rollback()
        b.rollback()
    assert len(errors) == 1, errors  # the server aborted exactly one of the two
    assert sqlstate(errors[0]) == "40P01"
    assert classify(errors[0]) is Failure.DEADLOCK


@postgres_only()
def test_a_serialization_failure_is_deadlock(scratch: Engine, other: Engine) -> None:
    with pytest.raises(DBAPIError) as info, scratch.begin() as conn:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.exec_driver_sql("SELECT version FROM scratch WHERE id = 1").scalar_one()
        with other.begin() as theirs:
            theirs.exec_driver_sql("UPDATE scratch SET version = 2 WHERE id = 1")
        conn.exec_driver_sql("UPDATE scratch SET version = 2 WHERE id = 1")
    assert sqlstate(info.value) == "40001"
    assert classify(info.value) is Failure.DEADLOCK


@postgres_only()
def test_a_connection_the_server_ended_is_disconnected(scratch: Engine, other: Engine) -> None:
    with scratch.connect() as victim:
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        victim.rollback()
        with other.connect() as admin:
            assert admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar_one()
        with pytest.raises(DBAPIError) as info:
            victim.exec_driver_sql("SELECT 1")
    assert info.value.connection_invalidated
    assert classify(info.value) is Failure.DISCONNECTED


@postgres_only()
@pytest.mark.parametrize(
    "statement",
    ["SELECT * FROM deadlock", "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected'; END $$"],
    ids=["table-named-deadlock", "raised-deadlock-detected"],
)
def test_an_error_that_only_reads_like_a_deadlock_is_other(scratch: Engine, statement: str) -> None:
    with pytest.raises(DBAPIError) as info, scratch.begin() as conn:
        conn.exec_driver_sql(statement)
    assert "deadlock" in str(info.value.orig)
    assert sqlstate(info.value) in ("42P01", "P0001")
    assert classify(info.value) is Failure.OTHER


# ------------------------------------------------------------------ Database.transaction


def overtake(conn: Connection, other: Engine, backend: str, change: str) -> int:
    """Read row 1's version, let the other writer commit ``change`` to row 1, return what was read.

    The write that follows fails at once: SQLITE_BUSY_SNAPSHOT on SQLite, 40001 on PostgreSQL.
    """
    if backend == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    version = int(conn.exec_driver_sql("SELECT version FROM scratch WHERE id = 1").scalar_one())
    with other.begin() as theirs:
        theirs.exec_driver_sql(f"UPDATE scratch SET {change} WHERE id = 1")
    return version


def test_a_transaction_overtaken_once_runs_again_and_commits_once(scratch: Engine, other: Engine, backend: str) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            version = overtake(conn, other, backend, "note = 'theirs'")
        else:
            version = int(conn.exec_driver_sql("SELECT version FROM scratch WHERE id = 1").scalar_one())
        conn.exec_driver_sql(f"UPDATE scratch SET version = {version + 1}, note = 'mine' WHERE id = 1")
        return version + 1

    assert Database(scratch).transaction(work) == 2
    assert attempts == [1, 2]
    assert row(scratch) == (2, "mine")  # applied once, by the second attempt


def test_a_retried_change_never_applies_on_top_of_another_version(scratch: Engine, other: Engine, backend: str) -> None:
    pin = VersionPin()
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            version = overtake(conn, other, backend, "version = version + 1, note = 'theirs'")
        else:
            version = int(conn.exec_driver_sql("SELECT version FROM scratch WHERE id = 1").scalar_one())
        pin.hold(REF, version)
        conn.exec_driver_sql(f"UPDATE scratch SET version = {version + 1}, note = 'mine' WHERE id = 1")

    with pytest.raises(ConflictError) as info:
        Database(scratch).transaction(work)
    assert attempts == [1, 2]  # retried after the transient failure, not after the conflict
    assert (info.value.facts["expected_version"], info.value.facts["found_version"]) == (1, 2)
    assert row(scratch) == (2, "theirs")


@pytest.mark.parametrize("kind", ["unique", "no-such-table", "refusal"])
def test_a_failure_that_is_not_transient_is_raised_at_once(scratch: Engine, kind: str) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> None:
        attempts.append(1)
        conn.exec_driver_sql("UPDATE scratch SET note = 'mine' WHERE id = 2")
        if kind == "unique":
            conn.exec_driver_sql("INSERT INTO scratch VALUES (1, 1, 'again')")
        elif kind == "no-such-table":
            conn.exec_driver_sql("SELECT * FROM busy")
        else:
            VersionPin(5).hold(REF, 6)

    with pytest.raises((DBAPIError, ConflictError)) as info:
        Database(scratch).transaction(work)
    assert attempts == [1]
    expected = {"unique": Failure.UNIQUE, "no-such-table": Failure.OTHER, "refusal": Failure.OTHER}[kind]
    assert classify(info.value) is expected
    assert row(scratch, 2) == (1, "start")  # rolled back


@postgres_only()
def test_a_transaction_whose_connection_died_runs_again_on_a_fresh_one(scratch: Engine) -> None:
    attempts: list[int] = []

    def work(conn: Connection) -> int:
        attempts.append(int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()))
        if len(attempts) == 1:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")
        conn.exec_driver_sql("UPDATE scratch SET version = version + 1 WHERE id = 1")
        return len(attempts)

    assert Database(scratch).transaction(work) == 2
    assert attempts[0] != attempts[1]  # another server process: a new connection
    assert row(scratch) == (2, "start")
