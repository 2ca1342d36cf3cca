"""What a database error means, decided by its code — never by its message text.

SQLite reports an (extended) result code on every error
(``sqlite3.Error.sqlite_errorcode``, Python 3.11+); PostgreSQL a SQLSTATE
(``psycopg.Error.sqlstate``). Those codes are the drivers' documented
contract; the English text around them is not.
"""

from __future__ import annotations

from enum import Enum

from sqlalchemy.exc import DBAPIError

__all__ = ["Failure", "classify"]

# SQLite primary result codes (the low byte of an extended code): https://sqlite.org/rescode.html
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_CONSTRAINT_UNIQUE = 2067
_SQLITE_CONSTRAINT_PRIMARYKEY = 1555
# PostgreSQL SQLSTATEs: https://www.postgresql.org/docs/current/errcodes-appendix.html
_PG_UNIQUE_VIOLATION = "23505"
_PG_SERIALIZATION_FAILURE = "40001"
_PG_DEADLOCK_DETECTED = "40P01"


class Failure(Enum):
    """The kinds of database failure the engine acts on."""

    BUSY = "busy"  # SQLite: another connection holds the lock; run the transaction again
    DEADLOCK = "deadlock"  # PostgreSQL aborted us to break a deadlock or a serialization conflict
    DISCONNECTED = "disconnected"  # the pooled connection was dead (the server restarted)
    UNIQUE = "unique"  # a unique constraint refused a row
    OTHER = "other"


def classify(exc: BaseException) -> Failure:
    """The kind of ``exc`` (a SQLAlchemy ``DBAPIError``, or anything else: OTHER)."""
    if not isinstance(exc, DBAPIError):
        return Failure.OTHER
    if exc.connection_invalidated:
        return Failure.DISCONNECTED
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        if sqlite_code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return Failure.BUSY
        if sqlite_code in (_SQLITE_CONSTRAINT_UNIQUE, _SQLITE_CONSTRAINT_PRIMARYKEY):
            return Failure.UNIQUE
        return Failure.OTHER
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in (_PG_DEADLOCK_DETECTED, _PG_SERIALIZATION_FAILURE):
        return Failure.DEADLOCK
    if sqlstate == _PG_UNIQUE_VIOLATION:
        return Failure.UNIQUE
    return Failure.OTHER
