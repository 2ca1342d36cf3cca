"""Opening a database: URL defaults, SQLite pragmas, PostgreSQL pool.

SQLite (the embedded default) is set on every connection to:

* ``journal_mode=WAL`` so readers never block the writer and vice versa;
* ``synchronous=NORMAL``: with WAL, a commit is durable against application
  crashes and the database is never corrupted by power loss; at most the
  last commits before an OS crash can be lost — the usual trade for ~10×
  fewer fsyncs;
* ``busy_timeout`` so a writer waits for another instead of failing at once;
* ``foreign_keys=ON``.

PostgreSQL gets a connection pool of ``pool_size`` (``$CASEWORK_DB_POOL``,
default 5) plus as many overflow connections. Connections are *not* pinged
on checkout (``pool_pre_ping`` costs a network round trip per transaction,
as much as a whole step's write); instead they are recycled after 30
minutes, and the service retries a write whose connection turned out dead
(:class:`engine.store.database.Database`). ``$CASEWORK_DB_PRE_PING=1`` turns the ping
back on for networks that silently drop idle connections.

Python's sqlite3 module would otherwise start transactions lazily, only
before the first write, so a read-then-write would not be atomic; we turn
that off and emit ``BEGIN`` ourselves (SQLAlchemy's documented recipe).
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["DEFAULT_URL", "make_engine", "resolve_url"]

DEFAULT_URL = "sqlite:///casework.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$CASEWORK_DB``, else ``sqlite:///casework.db`` (current directory)."""
    return url or os.environ.get("CASEWORK_DB") or DEFAULT_URL


def make_engine(url: str | None = None, *, pool_size: int | None = None, echo: bool = False) -> Engine:
    """Create an engine for ``url`` with casework's connection settings.

    ``pool_size`` (PostgreSQL) defaults to ``$CASEWORK_DB_POOL`` or 5.
    """
    resolved = make_url(resolve_url(url))
    if resolved.get_backend_name() == "sqlite":
        if resolved.drivername == "sqlite":
            resolved = resolved.set(drivername="sqlite+pysqlite")
        engine = create_engine(resolved, echo=echo)
        _configure_sqlite(engine)
        return engine
    if resolved.drivername == "postgresql":
        resolved = resolved.set(drivername="postgresql+psycopg")
    size = pool_size or int(os.environ.get("CASEWORK_DB_POOL", "5"))
    ping = os.environ.get("CASEWORK_DB_PRE_PING", "") not in ("", "0")
    return create_engine(resolved, echo=echo, pool_size=size, max_overflow=size, pool_pre_ping=ping, pool_recycle=1800)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        # busy_timeout first: switching a new file to WAL needs a lock another
        # process may hold at that moment
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")
