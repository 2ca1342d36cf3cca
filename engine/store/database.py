"""The database as the engine uses it: connections for reads, transactions that are retried when safe.

:meth:`Database.transaction` runs a unit of work in one transaction and runs
it again — from the start, on a fresh connection — when the failure says
that is safe (decided by error code, :mod:`engine.store.failures`):

* SQLite busy: a transaction that read and then wants to write while
  another holds the write lock gets SQLITE_BUSY at once (SQLite's busy
  timeout does not cover that upgrade), so it is retried, with a growing
  pause, for as long as the busy timeout (10 s) would have waited;
* PostgreSQL deadlock (40P01) or serialization failure (40001): a step and a
  sweep take a case and its timers in opposite orders, and the server
  aborts one of them (up to eight attempts);
* a pooled connection found dead (the server restarted since it was last
  used; up to eight attempts).

A change whose commit was cut off is not applied twice: the work reads the
case again and its :class:`VersionPin` (the version seen first) reports the
conflict.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, text
from tenacity import RetryCallState, Retrying, retry_if_exception

from db.connect import SQLITE_BUSY_TIMEOUT_MS
from engine.errors import ConflictError
from engine.store.failures import Failure, classify

__all__ = ["Database", "VersionPin", "server_time"]

T = TypeVar("T")

MAX_ATTEMPTS = 8
_RETRIED = (Failure.BUSY, Failure.DEADLOCK, Failure.DISCONNECTED)


def _transient(exc: BaseException) -> bool:
    return classify(exc) in _RETRIED


def _give_up(state: RetryCallState) -> bool:
    """Busy: for as long as the busy timeout would have waited; the others: a few attempts."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    failure = classify(error) if error is not None else Failure.OTHER
    if failure is Failure.BUSY:
        return (state.seconds_since_start or 0.0) >= SQLITE_BUSY_TIMEOUT_MS / 1000
    return state.attempt_number >= MAX_ATTEMPTS


def _pause(state: RetryCallState) -> float:
    # jittered and growing: two writers that collided should not collide again in step
    return random.uniform(0.002, 0.02) * min(state.attempt_number, 5)


class Database:
    """A SQLAlchemy engine, with reads on a connection and writes in retried transactions.

    Args:
        engine: from :func:`db.make_engine`, schema at head.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: str = engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads (nothing it does is committed)."""
        with self.engine.connect() as conn:
            yield conn

    def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work(conn)`` in one transaction; run it again from the start when that is safe.

        ``work`` must be repeatable: everything it decides, it decides from
        what it reads inside the transaction (see :class:`VersionPin`).
        """
        retrying = Retrying(retry=retry_if_exception(_transient), stop=_give_up, wait=_pause, reraise=True)
        for attempt in retrying:
            with attempt, self.engine.begin() as conn:
                return work(conn)
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover


def server_time(conn: Connection) -> dt.datetime:
    """The database server's clock now (PostgreSQL's ``clock_timestamp()``: not frozen at the transaction's start)."""
    now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    assert isinstance(now, dt.datetime)
    return now


class VersionPin:
    """The version of a case a change was decided on, kept across retries of its transaction.

    The first read pins the version (or the caller's ``expected`` one, from
    ``--expect-version``); a later attempt that finds another version is a
    conflict, so a retried change never applies on top of someone else's.
    """

    __slots__ = ("version",)

    def __init__(self, expected: int | None = None) -> None:
        self.version = expected

    def hold(self, ref: str, version: int) -> int:
        """Pin ``version`` if nothing is pinned yet; :class:`ConflictError` if another one is."""
        if self.version is None:
            self.version = version
        elif version != self.version:
            raise ConflictError(
                ref, f"version {version}, expected {self.version}", expected_version=self.version, found_version=version
            )
        return self.version
