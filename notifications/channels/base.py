"""The contract between the relay and a way of delivering a message (a channel).

The relay (:mod:`notifications.relay`) claims an outbox row, renders it into
a :class:`Delivery` and hands it to the channel named by the row. A channel
only delivers; retries, backoff and bookkeeping are the relay's.

Two kinds of channel, by where their effect lands:

* **transactional** (``transactional = True``): the effect is a write to the
  casework database itself (the in-app inbox). The relay calls
  :meth:`Channel.deliver` with the connection of the transaction that also
  marks the row sent, so the effect and the mark commit together or not at
  all: exactly once.
* **external** (the default): the effect is outside the database (SMTP, HTTP).
  The relay calls :meth:`Channel.deliver` with ``conn=None``, outside any
  transaction, then marks the row sent. A crash between the two means the
  row is delivered again once its lease expires: at least once. Such a
  channel should pass :attr:`Delivery.key` on (a Message-ID, an idempotency
  header) so the receiver can drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Connection

if TYPE_CHECKING:
    from typing import Self

    from notifications.config import NotificationConfig

__all__ = ["Channel", "Delivery", "DeliveryError"]


@dataclass(frozen=True)
class Delivery:
    """One outbox row, rendered: everything a channel needs to deliver it.

    Attributes:
        outbox_id: the outbox row's id.
        key: its idempotency key, stable across re-sends.
        kind: ``message`` (rendered from a template).
        channel: the channel's name (``inbox``, ``email``, ...).
        recipient: a username (inbox), an email address (email), or the
            channel name for endpoints that have no per-person recipient (webhook).
        case_ref: the case's reference (e.g. ZZ-2026-000123), if about a case.
        subject: the rendered one-line subject.
        text: the rendered plain-text body.
        html: the rendered HTML body, when the template has one.
        context: the masked context the templates saw (``case``, ``event``, ...).
        created_at: when the change that caused the message was made.
    """

    outbox_id: int
    key: str
    kind: str
    channel: str
    recipient: str
    case_ref: str | None
    subject: str
    text: str
    html: str | None
    context: Mapping[str, Any]
    created_at: dt.datetime


class DeliveryError(Exception):
    """A delivery failed; the relay retries it later unless ``permanent``.

    The message becomes the row's ``last_error``, which an operator reads:
    say what failed and what would fix it; do not quote the message body.

    Args:
        message: what went wrong.
        permanent: True when sending the same thing again cannot succeed
            (refused recipient, rejected request, missing configuration):
            the row goes dead at once instead of being retried.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Channel(ABC):
    """A way of delivering rendered messages.

    To add a channel: subclass this in a module of :mod:`notifications.channels`,
    set :attr:`name`, implement :meth:`deliver` (and :meth:`from_config` if it
    needs settings), and list the class in ``CHANNELS`` in
    ``notifications/channels/__init__.py``. The engine needs no change: a
    workflow names the channel in a ``notify`` rule's ``channels``.

    Attributes:
        name: the channel's name as written in workflows and stored in outbox rows.
        transactional: True if :meth:`deliver` writes to the casework database
            with ``conn``, in the same transaction that marks the row sent
            (exactly-once effects); False if it talks to the outside world and
            is called with ``conn=None`` (at-least-once).
    """

    name: ClassVar[str]
    transactional: ClassVar[bool] = False

    @classmethod
    def from_config(cls, config: NotificationConfig) -> Self:
        """Build the channel from the settings (the default takes none)."""
        return cls()

    @abstractmethod
    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        """Deliver one message, or raise :class:`DeliveryError`.

        Must be safe to call again for the same :attr:`Delivery.key` (a retry
        after a failure or a crash). Any other exception counts as a
        retryable failure. Must not log personal data (recipients, bodies).

        Args:
            delivery: what to deliver and to whom.
            conn: for a transactional channel, the open transaction to write
                in (do not commit or roll it back); otherwise None.

        Raises:
            DeliveryError: it failed; ``permanent`` says whether to retry.
        """
