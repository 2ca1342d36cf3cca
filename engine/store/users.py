"""The ``users`` table: people, their roles and scopes, and the directory notifications read.

A disabled user (``disabled_at`` set) stays in the table — the audit trail
names them — but is left out of the directory: no rule tells them anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, func, insert, select, type_coerce, update

from engine.access import Person
from engine.store import tables
from engine.store.tables import UserRow

__all__ = [
    "Person",
    "add_user",
    "all_users",
    "directory",
    "directory_column",
    "find_user",
    "parse_directory",
    "update_user",
]

_users = tables.users
_ROW = select(_users)


def find_user(conn: Connection, username: str) -> UserRow | None:
    """The user called ``username``, or None."""
    if "\x00" in username:
        return None  # PostgreSQL refuses NUL in text outright (DataError): no such name can exist
    row = conn.execute(_ROW.where(_users.c.username == username)).first()
    return UserRow._make(row) if row is not None else None


def all_users(conn: Connection) -> list[UserRow]:
    """Every user, by username."""
    return [UserRow._make(r) for r in conn.execute(_ROW.order_by(_users.c.username))]


def add_user(
    conn: Connection,
    username: str,
    name: str,
    email: str | None,
    roles: Sequence[str],
    scopes: Sequence[str],
    now: dt.datetime,
) -> UserRow | None:
    """Insert a user; None if the username is taken."""
    if conn.execute(select(_users.c.id).where(_users.c.username == username)).first():
        return None
    values = {"username": username, "name": name, "email": email, "roles": list(roles), "scopes": list(scopes)}
    user_id = conn.execute(insert(_users).values(**values, created_at=now).returning(_users.c.id)).scalar_one()
    return UserRow(user_id, username, name, email, list(roles), list(scopes), now, None)


def update_user(conn: Connection, username: str, values: dict[str, Any]) -> UserRow | None:
    """Set some of a user's columns (name, email, roles, scopes, disabled_at); the row after, or None if none."""
    if "\x00" in username:
        return None
    conn.execute(update(_users).where(_users.c.username == username).values(**values))
    return find_user(conn, username)


_DIRECTORY = select(_users.c.username, _users.c.name, _users.c.email, _users.c.roles, _users.c.scopes).where(
    _users.c.disabled_at.is_(None)
)


def directory(conn: Connection) -> list[Person]:
    """Everyone who may act (disabled users left out), as notification rules see them."""
    return [Person(*r) for r in conn.execute(_DIRECTORY)]


def directory_column(dialect: str) -> Any:
    """A scalar subquery with the whole user directory as one JSON array (see :func:`parse_directory`).

    Sent along with the case read, it saves a step that notifies somebody a
    round trip; a union office's directory is tens to hundreds of people.
    """
    u = _users.alias("directory_user")
    if dialect == "postgresql":
        agg = func.json_agg(func.json_build_array(u.c.username, u.c.name, u.c.email, u.c.roles, u.c.scopes))
    else:
        agg = func.json_group_array(
            func.json_array(u.c.username, u.c.name, u.c.email, func.json(u.c.roles), func.json(u.c.scopes))
        )
    enabled = select(agg).where(u.c.disabled_at.is_(None))
    return type_coerce(enabled.scalar_subquery(), JSON).label("directory")


def parse_directory(value: list[list[Any]] | None) -> list[Person]:
    """The people in a :func:`directory_column` value."""
    return [Person(*entry) for entry in value or ()]
