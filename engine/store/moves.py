"""Reads for moving cases to a newer workflow version: the cases on older versions, streamed or held.

:mod:`engine.version_moves` decides which cases move and builds their rows;
they are written with :func:`engine.store.writes.write_changes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, select

from engine.store import tables
from engine.store.tables import CaseRow

__all__ = ["hold_cases", "stream_cases"]

_cases = tables.cases


def stream_cases(conn: Connection, version_ids: Sequence[int]) -> Iterator[CaseRow]:
    """Every case pinned to one of ``version_ids``, by id, streamed (a province's worth does not fit in memory)."""
    if not version_ids:
        return
    query = select(_cases).where(_cases.c.workflow_version_id.in_(list(version_ids))).order_by(_cases.c.id)
    for row in conn.execute(query.execution_options(yield_per=2000)):
        yield CaseRow._make(row)


def hold_cases(conn: Connection, ids: Sequence[int]) -> list[CaseRow]:
    """The cases with these row ids, by id; held ``FOR UPDATE`` on PostgreSQL until the transaction ends.

    Locked in id order, as a bulk step locks its batch, so a move and a bulk
    step never deadlock; a single step on one of these cases waits for the
    batch and then finds it moved.
    """
    if not ids:
        return []
    query = select(_cases).where(_cases.c.id.in_(list(ids))).order_by(_cases.c.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=_cases)
    return [CaseRow._make(r) for r in conn.execute(query)]
