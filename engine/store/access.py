"""The ``access_log`` table: the operator's console's own trail.

A row says who (the operating-system user and host of the process, and the
named ``--as`` user if any) read full personal data, or changed the people
who may act, and what. Rows are only ever added.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select

from engine.store import tables

__all__ = ["AccessRow", "Standing", "add_entry", "entries", "standing_at", "user_standings"]

_log = tables.access_log
_users = tables.users

#: the entries that change what a user may do or is told
_USER_CHANGES = ("edit_user", "disable_user", "enable_user")


class AccessRow(NamedTuple):
    """An ``access_log`` row."""

    id: int
    at: dt.datetime
    os_user: str
    host: str
    actor: str | None
    action: str
    detail: dict[str, Any]


def add_entry(
    conn: Connection,
    at: dt.datetime,
    os_user: str,
    host: str,
    actor: str | None,
    action: str,
    detail: dict[str, Any],
) -> None:
    """Append one entry (in the caller's transaction)."""
    conn.execute(insert(_log).values(at=at, os_user=os_user, host=host, actor=actor, action=action, detail=detail))


def entries(
    conn: Connection, *, since: dt.datetime | None = None, action: str | None = None, limit: int | None = None
) -> list[AccessRow]:
    """Entries oldest first (from ``since`` on, of one ``action``); with ``limit``, the newest that many."""
    query = select(_log)
    if since is not None:
        query = query.where(_log.c.at >= since)
    if action is not None:
        query = query.where(_log.c.action == action)
    if limit is None:
        return [AccessRow._make(r) for r in conn.execute(query.order_by(_log.c.id))]
    newest = conn.execute(query.order_by(_log.c.id.desc()).limit(limit))
    return [AccessRow._make(r) for r in reversed(list(newest))]


class Standing(NamedTuple):
    """What a user was from ``since`` on (None: from the start): roles, scopes, and whether they could act."""

    since: dt.datetime | None
    roles: list[str]
    scopes: list[str]
    enabled: bool


def user_standings(conn: Connection) -> dict[str, tuple[dt.datetime, list[Standing]]]:
    """Each user's creation time and standings, newest first, rebuilt from the access log.

    The users table holds only what a user is now; walking the log's edits,
    disables and enables back from there gives what they were when an earlier
    event happened (``casework check`` asks who should have been told). A
    change made before the access log existed is not known: the oldest
    standing is then taken as it was from the start.
    """
    current = {
        r.username: (r.created_at, [r.roles, r.scopes, r.disabled_at is None])
        for r in conn.execute(
            select(_users.c.username, _users.c.roles, _users.c.scopes, _users.c.created_at, _users.c.disabled_at)
        )
    }
    changes = conn.execute(
        select(_log.c.at, _log.c.action, _log.c.detail)
        .where(_log.c.action.in_(_USER_CHANGES))
        .order_by(_log.c.id.desc())
    )
    found: dict[str, list[Standing]] = {name: [] for name in current}
    for at, action, detail in changes:
        name = detail.get("user")
        if name not in current:
            continue
        state = current[name][1]
        found[name].append(Standing(at, *state))
        # undo the change: what the user was before it
        if action == "edit_user":
            for i, field in enumerate(("roles", "scopes")):
                if field in detail.get("changes", {}):
                    state[i] = detail["changes"][field][0]
        else:
            state[2] = action == "disable_user"
    return {name: (created_at, [*found[name], Standing(None, *state)]) for name, (created_at, state) in current.items()}


def standing_at(standings: list[Standing], at: dt.datetime) -> Standing:
    """The standing (from :func:`user_standings`, newest first) in force at ``at``."""
    return next(s for s in standings if s.since is None or s.since <= at)
