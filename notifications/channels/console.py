"""Messages printed to a stream (standard error by default): for development and demos."""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO

from sqlalchemy import Connection

from notifications.channels.base import Channel, Delivery

__all__ = ["ConsoleChannel"]


class ConsoleChannel(Channel):
    """Writes ``[console] to RECIPIENT: SUBJECT`` and the text to ``stream``.

    Args:
        stream: where to write; default ``sys.stderr`` as it is at delivery time.
    """

    name: ClassVar[str] = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def deliver(self, delivery: Delivery, conn: Connection | None) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        stream.write(f"[console] to {delivery.recipient}: {delivery.subject}\n{delivery.text.rstrip()}\n\n")
        stream.flush()
