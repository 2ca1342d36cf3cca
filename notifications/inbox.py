"""Reading the in-app inbox and marking messages read.

Messages arrive through the inbox channel (:mod:`notifications.channels.inbox`);
a user sees only their own. Read through an API token limited to some
counties (:mod:`engine.acting`), a message about a case outside them is not
there: it would name the case and its county.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Connection, Engine, func, select, update

from db import schema
from engine import Clock, Code, NotFound, ReadModel, UserNotFound
from engine.access import covers
from engine.acting import current
from engine.users import find_actor

__all__ = ["InboxView", "inbox", "mark_read", "unread_count"]

logger = logging.getLogger(__name__)

_inbox = schema.inbox_messages
_users = schema.users
_cases = schema.cases


class InboxView(ReadModel):
    """One message in a user's inbox; ``read_at`` is None while unread."""

    id: int
    case_ref: str | None
    subject: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None


_COLUMNS = (_inbox.c.id, _inbox.c.case_ref, _inbox.c.subject, _inbox.c.body, _inbox.c.created_at, _inbox.c.read_at)


def inbox(engine: Engine, username: str, unread_only: bool = False) -> list[InboxView]:
    """``username``'s messages, newest first.

    Raises:
        UserNotFound: there is no such user.
    """
    with engine.connect() as conn:
        _check_user(conn, username)
        query = select(*_COLUMNS).where(_inbox.c.username == username)
        if unread_only:
            query = query.where(_inbox.c.read_at.is_(None))
        rows = list(conn.execute(query.order_by(_inbox.c.created_at.desc(), _inbox.c.id.desc())))
        hidden = _hidden(conn, username, {r.case_ref for r in rows if r.case_ref})
        return [InboxView(**r._mapping) for r in rows if r.case_ref not in hidden]


def unread_count(engine: Engine, username: str) -> int:
    """How many of ``username``'s messages are unread (0 for an unknown user)."""
    with engine.connect() as conn:
        query = select(func.count()).where(_inbox.c.username == username, _inbox.c.read_at.is_(None))
        return int(conn.execute(query).scalar_one())


def mark_read(engine: Engine, username: str, message_id: int, clock: Clock) -> InboxView:
    """Mark one of ``username``'s messages read (a message already read keeps its first time).

    Raises:
        NotFound: no such message in this user's inbox (including another user's message).
    """
    missing = NotFound(
        f"no message {message_id} in {username}'s inbox",
        code=Code.MESSAGE_NOT_FOUND,
        user=username,
        message=message_id,
    )
    if _narrowed(username):
        with engine.connect() as conn:
            ref = conn.execute(
                select(_inbox.c.case_ref).where(_inbox.c.id == message_id, _inbox.c.username == username)
            ).scalar()
            if ref is not None and _hidden(conn, username, {ref}):
                raise missing  # about a case outside the token's counties: as a message that does not exist
    with engine.begin() as conn:
        # the UPDATE first: on SQLite it takes the write lock before reading
        conn.execute(
            update(_inbox)
            .where(_inbox.c.id == message_id, _inbox.c.username == username, _inbox.c.read_at.is_(None))
            .values(read_at=clock.now())
        )
        row = conn.execute(select(*_COLUMNS).where(_inbox.c.id == message_id, _inbox.c.username == username)).first()
        if row is None:
            _check_user(conn, username)
            # the same answer whether the message is someone else's or does not exist
            raise missing
    return InboxView(**row._mapping)


def _narrowed(username: str) -> bool:
    """Whether ``username`` reads through an API token limited to some counties."""
    acting = current()
    return acting is not None and acting.username == username and acting.scopes is not None


def _hidden(conn: Connection, username: str, refs: set[str]) -> set[str]:
    """Those of ``refs`` whose case the current API token of ``username`` may not see (none for anyone else)."""
    if not refs or not _narrowed(username):
        return set()
    scopes = find_actor(conn, username).scopes  # narrowed to the token's counties
    found = conn.execute(select(_cases.c.ref, _cases.c.scope).where(_cases.c.ref.in_(sorted(refs))))
    return {ref for ref, scope in found if not covers(scopes, scope)}


def _check_user(conn: Connection, username: str) -> None:
    if conn.execute(select(_users.c.id).where(_users.c.username == username)).first() is None:
        raise UserNotFound(username)
