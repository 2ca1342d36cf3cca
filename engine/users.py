"""People: adding users with their roles and scopes, and finding who is acting.

The CLI is the operator's console; the web application will add logins on
top. Either way the engine only ever acts as a user it finds here — or as
``system``, the scheduler, whom no one can act as.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from sqlalchemy import Connection

from engine.access import SYSTEM_ACTOR, Actor
from engine.errors import AlreadyExists, Code, FieldProblem, InputError, PermissionDenied, UserNotFound
from engine.fields import EMAIL
from engine.models import UserInfo
from engine.store import users as store
from engine.store.tables import UserRow

__all__ = ["add_user", "check_new_user", "find_actor", "refuse_system", "user_info"]

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def check_new_user(
    username: str, name: str, roles: Sequence[str], scopes: Sequence[str], email: str | None
) -> tuple[str, str, str | None, list[str], list[str]]:
    """The user's details, cleaned; :class:`InputError` (:data:`Code.INVALID_USER`) listing every problem."""
    problems: list[FieldProblem] = []
    if email is not None:
        email = email.strip() or None
        if email is not None and not EMAIL.match(email):
            problems.append(FieldProblem("email", f"{email!r} is not an email address (e.g. lin@example.org)"))
    if username == SYSTEM_ACTOR:
        problems.append(FieldProblem("username", "'system' is reserved for the scheduler; choose another username"))
    elif not _USERNAME.match(username or ""):
        problems.append(
            FieldProblem(
                "username",
                f"{username!r} is not valid: use lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter (e.g. lin)",
            )
        )
    if not name or not name.strip():
        problems.append(FieldProblem("name", "is needed: the person's full name"))
    if not roles:
        problems.append(FieldProblem("role", "is needed, at least one (e.g. clerk)"))
    for role in roles:
        if role == SYSTEM_ACTOR:
            problems.append(FieldProblem("role", "'system' is reserved for the scheduler"))
        elif not _ROLE.match(role):
            problems.append(FieldProblem("role", f"{role!r} is not valid: lowercase letters, digits and '_'"))
    if not scopes:
        problems.append(FieldProblem("scope", "is needed, at least one: a county the user covers, or * for all"))
    elif any(not s.strip() for s in scopes):
        problems.append(FieldProblem("scope", "is empty: name a county the user covers, or * for all"))
    if problems:
        raise InputError(
            "invalid user: " + "; ".join(str(p) for p in problems),
            code=Code.INVALID_USER,
            problems=[p.to_json() for p in problems],
        )
    return (
        username,
        name.strip(),
        email,
        list(dict.fromkeys(roles)),
        list(dict.fromkeys(s.strip() for s in scopes)),
    )


def add_user(
    conn: Connection,
    username: str,
    name: str,
    roles: Sequence[str],
    scopes: Sequence[str],
    email: str | None,
    now: dt.datetime,
) -> UserInfo:
    """Check and add a user (in the caller's transaction)."""
    username, name, email, roles, scopes = check_new_user(username, name, roles, scopes, email)
    row = store.add_user(conn, username, name, email, roles, scopes, now)
    if row is None:
        raise AlreadyExists(f"user {username!r} already exists", code=Code.USER_EXISTS, user=username)
    return user_info(row)


def find_actor(conn: Connection, username: str) -> Actor:
    """The user acting as ``username``; refuses ``system`` and unknown names."""
    refuse_system(username)
    row = store.find_user(conn, username)
    if row is None:
        raise UserNotFound(username)
    return Actor(row.username, tuple(row.roles), tuple(row.scopes))


def refuse_system(username: str) -> None:
    """No one acts as ``system`` from outside: it is the scheduler's own identity."""
    if username == SYSTEM_ACTOR:
        raise PermissionDenied(
            "'system' is the scheduler's own identity and cannot be used from outside; act as yourself",
            code=Code.SYSTEM_RESERVED,
            user=username,
        )


def user_info(row: UserRow) -> UserInfo:
    """The read model of a user row."""
    return UserInfo(
        username=row.username,
        name=row.name,
        email=row.email,
        roles=tuple(row.roles),
        scopes=tuple(row.scopes),
        created_at=row.created_at,
    )
