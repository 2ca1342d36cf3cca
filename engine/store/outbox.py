"""The ``outbox`` table, written: the messages a change queues, in the change's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from engine.store import tables

__all__ = ["add_messages"]


def add_messages(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert outbox rows (see :mod:`engine.outbox`); return how many."""
    if rows:
        conn.execute(insert(tables.outbox), rows)
    return len(rows)
