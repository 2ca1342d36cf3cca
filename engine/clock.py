"""Where "now" comes from.

:class:`SystemClock` reads this host's wall clock; :class:`DatabaseClock`
reads the database server's, which is what every process sharing one
PostgreSQL database must agree on: with several hosts, a host whose clock
runs an hour ahead would otherwise fire every timer an hour early and stamp
its audit events in the future. :func:`default_clock` picks the database's
clock for PostgreSQL and the host's for SQLite (one host, one clock).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from typing import Any, Protocol

__all__ = ["Clock", "DatabaseClock", "FixedClock", "SystemClock", "default_clock"]


class Clock(Protocol):
    """Anything with ``now()`` returning an aware datetime."""

    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class DatabaseClock:
    """The database server's time, without a round trip per reading.

    The offset between the server's clock and this host's is measured when
    first needed and again every ``refresh`` seconds (by the monotonic
    clock, which a wall-clock step does not move); ``now()`` is this host's
    time plus that offset. The measurement is good to half a round trip —
    well under a millisecond on a LAN.
    """

    def __init__(self, engine: Any, refresh: float = 60.0) -> None:
        self.engine = engine
        self.refresh = refresh
        self._offset: dt.timedelta | None = None
        self._measured = 0.0
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        if self._offset is None or time.monotonic() - self._measured > self.refresh:
            self._measure()
        assert self._offset is not None
        return dt.datetime.now(dt.UTC) + self._offset

    @property
    def offset(self) -> dt.timedelta:
        """The server's clock minus this host's (measured now if it never was)."""
        if self._offset is None:
            self._measure()
        assert self._offset is not None
        return self._offset

    def _measure(self) -> None:
        from engine.store.database import server_time

        with self._lock, self.engine.connect() as conn:
            before = dt.datetime.now(dt.UTC)
            server = server_time(conn)
            after = dt.datetime.now(dt.UTC)
            self._offset = server - (before + (after - before) / 2)
            self._measured = time.monotonic()


def default_clock(engine: Any) -> Clock:
    """The database's clock on PostgreSQL (shared by many hosts), the host's on SQLite.

    ``$CASEWORK_CLOCK=host`` makes a PostgreSQL process trust its own clock
    instead (for a database whose clock is known to be wrong).
    """
    if engine is not None and engine.dialect.name == "postgresql" and os.environ.get("CASEWORK_CLOCK") != "host":
        return DatabaseClock(engine)
    return SystemClock()


class FixedClock:
    """A clock for tests and replays: stands still until told to move."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start

    def now(self) -> dt.datetime:
        return self._now

    def set(self, when: dt.datetime) -> None:
        """Jump to ``when`` (aware)."""
        if when.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = when

    def advance(self, **delta: float) -> dt.datetime:
        """Move forward by ``datetime.timedelta(**delta)``; returns the new time."""
        self._now += dt.timedelta(**delta)
        return self._now
