"""The ``limit_counts`` table: what each case counted toward a limit across cases (``limits:``).

:mod:`engine.quotas` decides; this module locks, reads and writes. A row is
one case's amount toward one limit, under the SHA-256 of its key value and
the period it was counted in. What is *used* of a limit is the sum of the
rows of that (workflow, limit, key, period) whose case is now in one of the
limit's states, so a case later rejected or withdrawn stops counting without
anyone touching its row.

Concurrency. Two steps on different cases of one person must not both read
"20,000 left" and both take 30,000:

* PostgreSQL: :func:`lock` takes a transaction-level advisory lock per
  (workflow, limit, key, period) before the sum is read; the second step waits
  for the first to commit, and since every statement under READ COMMITTED sees
  what was committed before it began, its sum then includes the first step.
* SQLite: a write transaction reads from a snapshot, and a transaction whose
  snapshot is no longer the newest cannot write (SQLITE_BUSY_SNAPSHOT), so
  :class:`engine.store.database.Database` runs it again from the start, and
  the sum it reads then includes the other step. Nothing to lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, delete, or_, select, text

from db.schema import audit_events as _events, cases as _cases, limit_counts as _counts
from engine.definition.model import WorkflowDef
from engine.store.writes import insert_rows

__all__ = ["Counted", "Slot", "counted", "ledger_problems", "lock", "record"]

# IN lists of a size every backend takes
_CHUNK = 500


class Slot(NamedTuple):
    """What one limit counts per: a workflow's limit, one key (hashed) and one period."""

    workflow: str
    limit: str
    key_hash: str
    period: str

    def lock_id(self) -> int:
        """A signed 64-bit number for ``pg_advisory_xact_lock`` (collisions only make unrelated steps wait)."""
        digest = hashlib.sha256("\x1f".join(("casework-limit", *self)).encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big", signed=True)


class Counted(NamedTuple):
    """One case's row toward a slot: the case and the amount (decimal text)."""

    slot: Slot
    case_id: int
    amount: str


def lock(conn: Connection, slots: Iterable[Slot]) -> None:
    """Hold the slots until the transaction ends (PostgreSQL; see the module's docstring for SQLite).

    The locks are taken in one order (by number), so two steps or batches
    that need the same slots never wait for each other in a circle.
    """
    if conn.dialect.name != "postgresql":
        return
    for number in sorted({s.lock_id() for s in slots}):
        conn.execute(text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})


def counted(conn: Connection, slots: Sequence[tuple[Slot, Sequence[str]]]) -> list[Counted]:
    """The rows of these slots whose case is in one of the slot's states (given with each slot).

    Every case's row is returned, the caller's own cases' too: it leaves out
    the case it is deciding (whose row the step replaces).
    """
    out: list[Counted] = []
    for start in range(0, len(slots), _CHUNK):
        chunk = slots[start : start + _CHUNK]
        match = or_(
            *(
                and_(
                    _counts.c.workflow == slot.workflow,
                    _counts.c.limit_name == slot.limit,
                    _counts.c.key_hash == slot.key_hash,
                    _counts.c.period == slot.period,
                    _cases.c.state.in_(list(states)),
                )
                for slot, states in chunk
            )
        )
        query = (
            select(
                _counts.c.workflow,
                _counts.c.limit_name,
                _counts.c.key_hash,
                _counts.c.period,
                _counts.c.case_id,
                _counts.c.amount,
            )
            .join(_cases, _cases.c.id == _counts.c.case_id)
            .where(match)
        )
        out += [Counted(Slot(w, lim, k, p), case_id, amount) for w, lim, k, p, case_id, amount in conn.execute(query)]
    return out


def record(conn: Connection, rows: Sequence[tuple[Counted, int, dt.datetime]]) -> None:
    """Write each case's row (``(counted, event seq, when)``), replacing the row it had for the same limit."""
    if not rows:
        return
    owners: dict[tuple[str, str], set[int]] = {}
    for c, _, _ in rows:
        owners.setdefault((c.slot.workflow, c.slot.limit), set()).add(c.case_id)
    for (workflow, limit), ids in owners.items():
        ordered = sorted(ids)
        for start in range(0, len(ordered), _CHUNK):
            conn.execute(
                delete(_counts).where(
                    _counts.c.workflow == workflow,
                    _counts.c.limit_name == limit,
                    _counts.c.case_id.in_(ordered[start : start + _CHUNK]),
                )
            )
    insert_rows(
        conn,
        _counts,
        [
            {
                "workflow": c.slot.workflow,
                "limit_name": c.slot.limit,
                "case_id": c.case_id,
                "key_hash": c.slot.key_hash,
                "period": c.slot.period,
                "amount": c.amount,
                "event_seq": seq,
                "counted_at": at,
            }
            for c, seq, at in rows
        ],
    )


def ledger_problems(conn: Connection, workflows: Mapping[int, WorkflowDef]) -> Iterator[tuple[str, str]]:
    """(case ref, what is wrong) for each row no step of its case's trail accounts for (``casework check``).

    A row must name an event of its case that fired a step the limit is
    checked at (by the case's workflow version), in the row's period.
    ``workflows`` maps version ids to their definitions.
    """
    query = (
        select(
            _cases.c.ref,
            _cases.c.workflow_version_id,
            _counts.c.limit_name,
            _counts.c.event_seq,
            _counts.c.period,
            _events.c.action,
            _events.c.trigger,
            _events.c.at,
        )
        .join(_cases, _cases.c.id == _counts.c.case_id)
        .outerjoin(_events, and_(_events.c.case_id == _counts.c.case_id, _events.c.seq == _counts.c.event_seq))
        .order_by(_counts.c.id)
    )
    for ref, version_id, name, seq, period, action, trigger, at in conn.execute(
        query.execution_options(yield_per=5000)
    ):
        wf = workflows.get(version_id)
        limit = next((lim for lim in wf.limits if lim.name == name), None) if wf is not None else None
        if action is None:
            yield ref, f"counts toward limit {name} by event {seq}, which its trail does not have"
        elif action != "fired" or (limit is not None and trigger not in limit.at):
            yield ref, f"counts toward limit {name} by event {seq}, which is not a step the limit is checked at"
        elif wf is not None and period != "all" and period != str(at.astimezone(ZoneInfo(wf.timezone)).year):
            yield ref, f"counts toward limit {name} in {period}, but event {seq} is of another year"
