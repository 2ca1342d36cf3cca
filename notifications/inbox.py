"""Reading the in-app inbox and marking messages read.

Messages arrive through the inbox channel (:mod:`notifications.channels.inbox`);
a user sees only their own.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from db.models import InboxMessage, User
from engine import Clock, NotFound, UserNotFound
from engine.views import iso

__all__ = ["InboxView", "inbox", "mark_read"]

logger = logging.getLogger(__name__)

_inbox = InboxMessage.__table__
_users = User.__table__


@dataclass(frozen=True)
class InboxView:
    """One message in a user's inbox; ``read_at`` is None while unread."""

    id: int
    case_ref: str | None
    subject: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None

    def to_json(self, tz: str = "Asia/Shanghai") -> dict[str, Any]:
        return {
            "id": self.id,
            "case_ref": self.case_ref,
            "subject": self.subject,
            "body": self.body,
            "created_at": iso(self.created_at, tz),
            "read_at": iso(self.read_at, tz),
        }


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
        return [InboxView(*r) for r in conn.execute(query.order_by(_inbox.c.created_at.desc(), _inbox.c.id.desc()))]


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
            raise NotFound(f"no message {message_id} in {username}'s inbox; see 'casework inbox {username}'")
    return InboxView(*row)


def _check_user(conn: Connection, username: str) -> None:
    if conn.execute(select(_users.c.id).where(_users.c.username == username)).first() is None:
        raise UserNotFound(username)
