"""The ``case_keys`` table: who holds each ``unique`` value (a household is filed once).

A UNIQUE constraint on (workflow, field, value) enforces it under
concurrency; a case in a void final state gives its keys back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, select

from engine.store import tables
from engine.store.failures import Failure, classify
from engine.store.writes import insert_rows

__all__ = ["Holder", "claim_keys", "holder", "holders", "release_keys"]

_keys = tables.keys
_cases = tables.cases

# IN lists of a size every backend takes
_CHUNK = 500


class Holder(NamedTuple):
    """The case that holds a unique value (its scope decides whether the one who clashes may be told which)."""

    value: str
    ref: str
    state: str
    scope: str | None


def holder(conn: Connection, workflow: str, field: str, value: str) -> Holder | None:
    """The case holding ``value`` of ``field``, or None."""
    found = holders(conn, workflow, field, [value])
    return found[0] if found else None


def holders(conn: Connection, workflow: str, field: str, values: Sequence[str]) -> list[Holder]:
    """The cases holding any of ``values`` of ``field``."""
    out: list[Holder] = []
    for start in range(0, len(values), _CHUNK):
        chunk = list(values[start : start + _CHUNK])
        out += [
            Holder(*r)
            for r in conn.execute(
                select(_keys.c.value, _cases.c.ref, _cases.c.state, _cases.c.scope)
                .join(_cases, _cases.c.id == _keys.c.case_id)
                .where(_keys.c.workflow == workflow, _keys.c.field == field, _keys.c.value.in_(chunk))
            )
        ]
    return out


def claim_keys(conn: Connection, rows: list[dict[str, Any]]) -> bool:
    """Insert ``{workflow, field, value, case_id}`` rows; False (nothing inserted) if one is already held.

    Runs in a savepoint, so a clash leaves the caller's transaction usable.
    """
    if not rows:
        return True
    try:
        with conn.begin_nested():
            insert_rows(conn, _keys, rows)
    except Exception as exc:
        if classify(exc) is Failure.UNIQUE:
            return False
        raise
    return True


def release_keys(conn: Connection, case_ids: Sequence[int], field: str | None = None) -> None:
    """Give back the keys of these cases (of ``field`` only, if given)."""
    query = delete(_keys).where(_keys.c.case_id.in_(list(case_ids)))
    if field is not None:
        query = query.where(_keys.c.field == field)
    conn.execute(query)
