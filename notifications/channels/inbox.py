"""The in-app inbox: a message lands as a row in ``inbox_messages``, exactly once.

``inbox_messages.outbox_id`` is unique and the insert skips a row that is
already there, inside the transaction that marks the outbox row sent: a
retry, a crash or a second relay can never make a second copy. The
message is dated by the change that caused it (``created_at``), not by
when the relay got round to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Connection, String, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from db import schema
from notifications.channels.base import Channel, Delivery, DeliveryError

__all__ = ["InboxChannel"]

_inbox = schema.inbox_messages
_SUBJECT_TYPE = _inbox.c.subject.type
_SUBJECT_MAX = (_SUBJECT_TYPE.length if isinstance(_SUBJECT_TYPE, String) else None) or 300


class InboxChannel(Channel):
    """Delivers to the recipient's in-app inbox (the recipient is a username)."""

    name: ClassVar[str] = "inbox"
    transactional: ClassVar[bool] = True

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        if conn is None:
            raise DeliveryError("the inbox channel needs the relay's transaction", permanent=True)
        values: dict[str, Any] = {
            "outbox_id": delivery.outbox_id,
            "username": delivery.recipient,
            "case_ref": delivery.case_ref,
            "subject": delivery.subject[:_SUBJECT_MAX],
            "body": delivery.text,
            "created_at": delivery.created_at,
            "read_at": None,
        }
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            # a write as the first statement: on SQLite it takes the write lock at
            # once instead of upgrading a read lock later (which can fail as busy)
            module = sqlite if dialect == "sqlite" else postgresql
            conn.execute(module.insert(_inbox).values(values).on_conflict_do_nothing(index_elements=["outbox_id"]))
            return
        if conn.execute(select(_inbox.c.id).where(_inbox.c.outbox_id == delivery.outbox_id)).first() is None:
            conn.execute(insert(_inbox).values(values))
