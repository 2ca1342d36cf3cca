"""Reading the in-app inbox and marking messages read.

Messages arrive through the inbox channel (:mod:`notifications.channels.inbox`);
a user sees only their own.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Connection, Engine, func, select, update

from db import schema
from engine import Clock, Code, NotFound, ReadModel, UserNotFound

__all__ = ["InboxView", "inbox", "mark_read", "unread_count"]

logger = logging.getLogger(__name__)

_inbox = schema.inbox_messages
_users = schema.users


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
        rows = conn.execute(query.order_by(_inbox.c.created_at.desc(), _inbox.c.id.desc()))
        return [InboxView(**r._mapping) for r in rows]


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
            raise NotFound(
                f"no message {message_id} in {username}'s inbox",
                code=Code.MESSAGE_NOT_FOUND,
                user=username,
                message=message_id,
            )
    return InboxView(**row._mapping)


def _check_user(conn: Connection, username: str) -> None:
    if conn.execute(select(_users.c.id).where(_users.c.username == username)).first() is None:
        raise UserNotFound(username)
