"""Human case references: ``ZZ-2026-000123`` (prefix, year, number).

Numbers come from a counter row per (prefix, year), bumped inside the
creating transaction, so references are unique and gap-free per year even
with several processes creating cases at once (the row lock serialises them).
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, update

from db.models import RefCounter

__all__ = ["allocate_ref", "format_ref"]

_counters = RefCounter.__table__


def format_ref(prefix: str, year: int, number: int) -> str:
    """``ZZ``, 2026, 123 → ``ZZ-2026-000123``."""
    return f"{prefix}-{year}-{number:06d}"


def allocate_ref(conn: Connection, prefix: str, year: int) -> str:
    """Take the next reference for ``prefix`` in ``year`` (inside the caller's transaction)."""
    bumped = conn.execute(
        update(_counters)
        .where(_counters.c.prefix == prefix, _counters.c.year == year)
        .values(last=_counters.c.last + 1)
        .returning(_counters.c.last)
    ).scalar_one_or_none()
    if bumped is None:
        # First case of the year. A concurrent first insert raises IntegrityError,
        # which the service's retry turns into a fresh attempt that finds the row.
        conn.execute(insert(_counters).values(prefix=prefix, year=year, last=1))
        bumped = 1
    return format_ref(prefix, year, bumped)
