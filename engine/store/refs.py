"""Human references: ``ZZ-2026-000123`` (prefix, year, number), from a counter row per (prefix, year).

The counter is bumped inside the creating transaction, so references are
unique and gap-free per year even with several processes creating cases at
once (the row lock serialises them). The year's first reference creates the
row with ``INSERT … ON CONFLICT DO NOTHING``, so two first cases racing for
it both go ahead instead of one failing on the primary key.
"""

from __future__ import annotations

from sqlalchemy import Connection, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.store import tables

__all__ = ["allocate_refs", "format_ref"]

_counters = tables.counters


def format_ref(prefix: str, year: int, number: int) -> str:
    """``ZZ``, 2026, 123 → ``ZZ-2026-000123``."""
    return f"{prefix}-{year}-{number:06d}"


def allocate_refs(conn: Connection, prefix: str, year: int, count: int = 1) -> int:
    """Take ``count`` consecutive numbers for ``prefix`` in ``year`` (in the caller's transaction); return the first."""
    bump = (
        update(_counters)
        .where(_counters.c.prefix == prefix, _counters.c.year == year)
        .values(last=_counters.c.last + count)
        .returning(_counters.c.last)
    )
    last = conn.execute(bump).scalar_one_or_none()
    if last is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(_counters).values(prefix=prefix, year=year, last=0).on_conflict_do_nothing())
        last = conn.execute(bump).scalar_one()
    return int(last) - count + 1
