"""People: adding and correcting users, disabling them, and finding who is acting.

The CLI is the operator's console; the web application will add logins on
top. Either way the engine only ever acts as a user it finds here — or as
``system``, the scheduler, whom no one can act as — and never as a disabled
user. A user's roles and scopes must be ones the loaded workflows declare, so
a typo cannot create a person who silently can do nothing. Every change to a
user is written to the access log, in the same transaction, with the
operating-system user and host of the process that made it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection

from engine.access import ALL_SCOPES, SYSTEM_ACTOR, Actor
from engine.acting import narrowed
from engine.definition.model import SYSTEM_ROLE, WorkflowDef
from engine.errors import AlreadyExists, Code, FieldProblem, InputError, PermissionDenied, UserNotFound
from engine.fields import EMAIL, check_text
from engine.models import AccessEntry, UserInfo, iso
from engine.store import access as access_store, logins as login_store, users as store
from engine.store.access import AccessRow
from engine.store.tables import UserRow
from engine.suggest import did_you_mean

__all__ = [
    "Declared",
    "Origin",
    "access_entry",
    "add_user",
    "check_new_user",
    "declared_by",
    "edit_user",
    "find_actor",
    "log_access",
    "refuse_system",
    "set_disabled",
    "user_info",
]

_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
#: the longest name a user may have (the column's size)
MAX_USER_NAME = 200


class Origin(NamedTuple):
    """Who did something through a shell: the process's OS user and host, and the named user (``--as``) if any."""

    os_user: str
    host: str
    actor: str | None = None


class Declared(NamedTuple):
    """What the loaded workflows declare about people: the roles, and the scopes a case can be in."""

    workflows: int
    roles: frozenset[str]
    #: None: some workflow's scope field takes free text, so any scope may be right
    scopes: frozenset[str] | None


def declared_by(definitions: Iterable[WorkflowDef]) -> Declared:
    """The roles and scopes every loaded version declares (a role of an old version still holds its cases)."""
    count, roles, scopes, free = 0, set[str](), set[str](), False
    for wf in definitions:
        count += 1
        roles.update(r for r in wf.roles if r != SYSTEM_ROLE)
        if wf.scope_field is not None:
            choices = wf.fields[wf.scope_field].choices
            scopes.update(choices)
            free = free or not choices
    return Declared(count, frozenset(roles), None if free else frozenset(scopes))


def check_new_user(
    username: str, name: str, roles: Sequence[str], scopes: Sequence[str], email: str | None
) -> tuple[str, str, str | None, list[str], list[str]]:
    """The user's details, cleaned; :class:`InputError` (:data:`Code.INVALID_USER`) listing every problem."""
    cleaned, problems = _check(username, name, roles, scopes, email)
    _refuse(problems)
    return cleaned


def _check(
    username: str, name: str, roles: Sequence[str], scopes: Sequence[str], email: str | None
) -> tuple[tuple[str, str, str | None, list[str], list[str]], list[FieldProblem]]:
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
    else:
        # one line of text, as every name casework keeps (a tab, ESC or ZWSP would be echoed back)
        try:
            name = check_text(name, multiline=False)
        except ValueError as exc:
            problems.append(FieldProblem("name", str(exc)))
        else:
            if len(name) > MAX_USER_NAME:
                problems.append(FieldProblem("name", f"is {len(name)} characters long; at most {MAX_USER_NAME}"))
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
    cleaned = (
        username,
        (name or "").strip(),
        email,
        list(dict.fromkeys(roles)),
        list(dict.fromkeys(s.strip() for s in scopes)),
    )
    return cleaned, problems


def _undeclared(roles: Sequence[str], scopes: Sequence[str], declared: Declared) -> list[FieldProblem]:
    """Roles and scopes no loaded workflow declares (checked only on values that are well formed)."""
    if declared.workflows == 0:
        return [
            FieldProblem(
                "role",
                "cannot be checked: no workflow is loaded yet, so none declares a role; "
                "load the workflow first, then add its people",
            )
        ]
    problems = [
        FieldProblem("role", f"{role!r} is not a role of any loaded workflow{did_you_mean(role, declared.roles)}")
        for role in roles
        if role != SYSTEM_ACTOR and _ROLE.match(role) and role not in declared.roles
    ]
    if declared.scopes is not None:
        for scope in scopes:
            if scope and scope != ALL_SCOPES and scope not in declared.scopes:
                hint = did_you_mean(scope, declared.scopes) if declared.scopes else "; no workflow has a scope field"
                problems.append(
                    FieldProblem(
                        "scope",
                        f"{scope!r} is not a scope of any loaded workflow (a value of its scope field, "
                        f"or * for all){hint}",
                    )
                )
    return problems


def _refuse(problems: list[FieldProblem]) -> None:
    if problems:
        raise InputError(
            "invalid user: " + "; ".join(str(p) for p in problems),
            code=Code.INVALID_USER,
            problems=[p.to_json() for p in problems],
        )


def add_user(
    conn: Connection,
    username: str,
    name: str,
    roles: Sequence[str],
    scopes: Sequence[str],
    email: str | None,
    now: dt.datetime,
    declared: Declared,
    origin: Origin,
) -> UserInfo:
    """Check and add a user (in the caller's transaction); the addition is written to the access log."""
    cleaned, problems = _check(username, name, roles, scopes, email)
    username, name, email, roles, scopes = cleaned
    _refuse(problems + _undeclared(roles, scopes, declared))
    row = store.add_user(conn, username, name, email, roles, scopes, now)
    if row is None:
        raise AlreadyExists(f"user {username!r} already exists", code=Code.USER_EXISTS, user=username)
    detail = {"user": username, "name": name, "email": email, "roles": roles, "scopes": scopes}
    _log(conn, now, origin, "add_user", detail)
    return user_info(row)


def edit_user(
    conn: Connection,
    username: str,
    changes: Mapping[str, Any],
    now: dt.datetime,
    declared: Declared,
    origin: Origin,
) -> tuple[UserInfo, dict[str, list[Any]]]:
    """Change some of a user's name, email, roles and scopes (the lists replaced whole); (the user, old → new).

    The same checks as adding apply to what is given; no change, no entry in
    the access log. A disabled user can be corrected too.
    """
    row = _existing(conn, username)
    merged = {"name": row.name, "email": row.email, "roles": row.roles, "scopes": row.scopes, **changes}
    cleaned, problems = _check(username, merged["name"], merged["roles"], merged["scopes"], merged["email"])
    _, name, email, roles, scopes = cleaned
    new = {"name": name, "email": email, "roles": roles, "scopes": scopes}
    # an unchanged list is not re-checked: a role stays declared as long as the version declaring it is stored
    given_roles = roles if "roles" in changes else []
    given_scopes = scopes if "scopes" in changes else []
    _refuse(problems + (_undeclared(given_roles, given_scopes, declared) if given_roles or given_scopes else []))
    old = {"name": row.name, "email": row.email, "roles": row.roles, "scopes": row.scopes}
    diff = {k: [old[k], new[k]] for k in new if new[k] != old[k]}
    if not diff:
        return user_info(row), {}
    updated = store.update_user(conn, username, {k: new[k] for k in diff})
    assert updated is not None  # found above, in this transaction; users are never deleted
    _log(conn, now, origin, "edit_user", {"user": username, "changes": diff})
    return user_info(updated), diff


def set_disabled(
    conn: Connection, username: str, disabled: bool, reason: str | None, now: dt.datetime, origin: Origin
) -> tuple[UserInfo, bool]:
    """Disable (or enable) a user; (the user, whether that changed anything).

    A disabled user is kept (the audit trail names them) but can no longer act
    and is sent no messages; enabling them undoes exactly that. The change is
    written to the access log, with ``reason``.
    """
    row = _existing(conn, username)
    if (row.disabled_at is not None) == disabled:
        return user_info(row), False
    updated = store.update_user(conn, username, {"disabled_at": now if disabled else None})
    assert updated is not None
    detail: dict[str, Any] = {"user": username}
    if disabled:
        # their web sessions end now, in the same transaction (every lookup also reads disabled_at)
        ended = login_store.end_sessions(conn, username, now, "disabled")
        if ended:
            detail["sessions_ended"] = ended
    if reason:
        detail["reason"] = reason
    if not disabled:
        detail["disabled_at"] = iso(row.disabled_at)
    _log(conn, now, origin, "disable_user" if disabled else "enable_user", detail)
    return user_info(updated), True


def _existing(conn: Connection, username: str) -> UserRow:
    refuse_system(username)
    row = store.find_user(conn, username)
    if row is None:
        raise UserNotFound(username)
    return row


#: the role that administers users and loads workflows when a person (not the operator's console) does it
ADMIN_ROLE = "supervisor"


def require_admin(conn: Connection, username: str) -> None:
    """Refuse (``role_needed``) unless ``username`` is an enabled user holding :data:`ADMIN_ROLE`.

    The operator's console passes no person and is not asked: whoever holds the database URL is
    trusted there. A person acting through the web application (or an API) is.
    """
    actor = find_actor(conn, username)
    if ADMIN_ROLE not in actor.roles:
        raise PermissionDenied(
            f"{username} ({', '.join(actor.roles)}) may not manage users or load workflows: that needs role "
            f"{ADMIN_ROLE}",
            code=Code.ROLE_NEEDED,
            user=username,
            roles=list(actor.roles),
            needed=[ADMIN_ROLE],
        )


def find_actor(conn: Connection, username: str) -> Actor:
    """The user acting as ``username``; refuses ``system``, unknown names and disabled users."""
    refuse_system(username)
    row = store.find_user(conn, username)
    if row is None:
        raise UserNotFound(username)
    if row.disabled_at is not None:
        raise PermissionDenied(
            f"{username} was disabled at {iso(row.disabled_at)} and can no longer act; "
            "if that was a mistake, an operator can enable them again",
            code=Code.USER_DISABLED,
            user=username,
            disabled_at=iso(row.disabled_at),
        )
    # a request through an API token acts with at most the token's roles and scopes (engine.acting)
    return narrowed(Actor(row.username, tuple(row.roles), tuple(row.scopes)))


def refuse_system(username: str) -> None:
    """No one acts as ``system`` from outside: it is the scheduler's own identity."""
    if username == SYSTEM_ACTOR:
        raise PermissionDenied(
            "'system' is the scheduler's own identity and cannot be used from outside; act as yourself",
            code=Code.SYSTEM_RESERVED,
            user=username,
        )


def log_access(conn: Connection, now: dt.datetime, origin: Origin, action: str, detail: Mapping[str, Any]) -> None:
    """Record a read of full personal data (``action``: what was read, ``detail``: which cases, which filters)."""
    _log(conn, now, origin, action, dict(detail))


def _log(conn: Connection, now: dt.datetime, origin: Origin, action: str, detail: dict[str, Any]) -> None:
    access_store.add_entry(conn, now, origin.os_user, origin.host, origin.actor, action, detail)


def user_info(row: UserRow) -> UserInfo:
    """The read model of a user row."""
    return UserInfo(
        username=row.username,
        name=row.name,
        email=row.email,
        roles=tuple(row.roles),
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def access_entry(row: AccessRow) -> AccessEntry:
    """The read model of an access-log row."""
    return AccessEntry(
        id=row.id,
        at=row.at,
        os_user=row.os_user,
        host=row.host,
        actor=row.actor,
        action=row.action,
        detail=row.detail,
    )
