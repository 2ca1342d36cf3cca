"""The SQL of logins: password hashes, ``web_sessions`` and ``login_failures``.

Only :mod:`engine.logins` calls these; it owns the rules (lockout, idle
timeout, rotation). A session row is found by the SHA-256 of its token.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from sqlalchemy import Connection, delete, insert, select, update

from db import schema

__all__ = [
    "Credentials",
    "SessionRow",
    "add_failure",
    "add_session",
    "clear_failures",
    "end_session",
    "end_sessions",
    "failures_since",
    "find_credentials",
    "find_session",
    "forget_failures_before",
    "remove_failure",
    "set_password_hash",
    "touch_session",
    "usernames_with_password",
]

_users = schema.users
_sessions = schema.web_sessions
_failures = schema.login_failures


class Credentials(NamedTuple):
    """What a login reads of a user."""

    username: str
    password_hash: str | None
    disabled_at: dt.datetime | None


class SessionRow(NamedTuple):
    """A live ``web_sessions`` row joined with its user."""

    id: int
    username: str
    csrf: str
    client: str
    created_at: dt.datetime
    seen_at: dt.datetime
    expires_at: dt.datetime
    name: str
    roles: list[str]
    scopes: list[str]
    disabled_at: dt.datetime | None


def find_credentials(conn: Connection, username: str, *, lock: bool = False) -> Credentials | None:
    """The user's password hash and whether they are disabled; None if there is no such user.

    ``lock``: hold the user's row until the transaction ends (``FOR UPDATE`` on PostgreSQL; SQLite
    serialises writers anyway), so logins of one user are counted one at a time.
    """
    if "\x00" in username:
        return None
    query = select(_users.c.username, _users.c.password_hash, _users.c.disabled_at).where(_users.c.username == username)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return Credentials._make(row) if row is not None else None


def usernames_with_password(conn: Connection) -> set[str]:
    """Every username whose password is set."""
    return set(conn.execute(select(_users.c.username).where(_users.c.password_hash.is_not(None))).scalars())


def set_password_hash(conn: Connection, username: str, password_hash: str, now: dt.datetime) -> None:
    """Store a new hash for ``username``."""
    conn.execute(
        update(_users).where(_users.c.username == username).values(password_hash=password_hash, password_set_at=now)
    )


def failures_since(
    conn: Connection, *, username: str | None = None, client: str | None = None, since: dt.datetime
) -> list[dt.datetime]:
    """The times of failed logins for ``username`` (or from ``client``) after ``since``, newest first."""
    query = select(_failures.c.at).where(_failures.c.at > since)
    if username is not None:
        query = query.where(_failures.c.username == username)
    if client is not None:
        query = query.where(_failures.c.client == client)
    return [r[0] for r in conn.execute(query.order_by(_failures.c.at.desc()).limit(100))]


def add_failure(conn: Connection, username: str, client: str, now: dt.datetime) -> int:
    """Record a failed login (or an attempt, until its password is found right); its id."""
    values = {"username": username[:63], "client": client[:64], "at": now}
    return int(conn.execute(insert(_failures).values(**values).returning(_failures.c.id)).scalar_one())


def remove_failure(conn: Connection, failure_id: int) -> None:
    """Forget one recorded attempt (its password was right)."""
    conn.execute(delete(_failures).where(_failures.c.id == failure_id))


def clear_failures(conn: Connection, username: str) -> None:
    """Forget the user's failed logins (after a successful one)."""
    conn.execute(delete(_failures).where(_failures.c.username == username))


def forget_failures_before(conn: Connection, before: dt.datetime) -> int:
    """Drop failures older than any lockout window can look at; how many were dropped."""
    return conn.execute(delete(_failures).where(_failures.c.at < before)).rowcount or 0


def add_session(
    conn: Connection,
    *,
    token_hash: str,
    username: str,
    csrf: str,
    client: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> int:
    """Insert a session; its id."""
    values = {
        "token_hash": token_hash,
        "username": username,
        "csrf": csrf,
        "client": client[:64],
        "created_at": now,
        "seen_at": now,
        "expires_at": expires_at,
    }
    return int(conn.execute(insert(_sessions).values(**values).returning(_sessions.c.id)).scalar_one())


_SESSION = select(
    _sessions.c.id,
    _sessions.c.username,
    _sessions.c.csrf,
    _sessions.c.client,
    _sessions.c.created_at,
    _sessions.c.seen_at,
    _sessions.c.expires_at,
    _users.c.name,
    _users.c.roles,
    _users.c.scopes,
    _users.c.disabled_at,
).join(_users, _users.c.username == _sessions.c.username)


def find_session(conn: Connection, token_hash: str) -> SessionRow | None:
    """The session with that token hash that has not ended, with its user; None otherwise."""
    row = conn.execute(_SESSION.where(_sessions.c.token_hash == token_hash, _sessions.c.ended_at.is_(None))).first()
    return SessionRow._make(row) if row is not None else None


def touch_session(conn: Connection, session_id: int, now: dt.datetime) -> None:
    """Record that the session was used at ``now`` (its idle timeout starts again)."""
    conn.execute(update(_sessions).where(_sessions.c.id == session_id).values(seen_at=now))


def end_session(conn: Connection, session_id: int, now: dt.datetime, why: str) -> bool:
    """End one session; whether it was still live."""
    result = conn.execute(
        update(_sessions)
        .where(_sessions.c.id == session_id, _sessions.c.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )
    return bool(result.rowcount)


def end_sessions(conn: Connection, username: str, now: dt.datetime, why: str, *, keep: int | None = None) -> int:
    """End every live session of ``username`` (but ``keep``); how many ended."""
    query = update(_sessions).where(_sessions.c.username == username, _sessions.c.ended_at.is_(None))
    if keep is not None:
        query = query.where(_sessions.c.id != keep)
    return conn.execute(query.values(ended_at=now, ended_why=why)).rowcount or 0
