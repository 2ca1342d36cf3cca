"""The audit trail: hash-chained, append-only evidence of what happened.

Each event's hash covers its content and the previous event's hash, so an
edited, deleted or reordered event breaks the chain. The case row keeps the
last ``seq`` and hash (``audit_seq``/``audit_head``), so removing the newest
event is detected too. The database refuses UPDATE/DELETE on the table (and
TRUNCATE on PostgreSQL); :func:`verify_chain` catches what a superuser with
the triggers disabled could still do.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from engine.models import ChainBreak
from engine.store.tables import EventRow

__all__ = ["GENESIS", "Event", "verify_chain"]

GENESIS = "0" * 64


# one encoder, reused: json.dumps with options builds a new one per call (a tenth of a hash's cost)
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _canonical_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Event:
    """One audit event as it is hashed and stored (``changes``: field → [old, new])."""

    ref: str
    seq: int
    at: dt.datetime
    actor: str
    role: str | None
    action: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    changes: Mapping[str, Any]
    prev_hash: str

    @classmethod
    def from_row(cls, ref: str, row: EventRow) -> Event:
        """The event as read back from ``audit_events``."""
        return cls(ref, *(getattr(row, name) for name in _STORED))

    @cached_property
    def hash(self) -> str:
        """SHA-256 over a canonical JSON form of the event and its predecessor's hash."""
        payload = {
            "v": 1,
            "case": self.ref,
            "seq": self.seq,
            "at": _canonical_time(self.at),
            "actor": self.actor,
            "role": self.role,
            "action": self.action,
            "trigger": self.trigger,
            "from": self.from_state,
            "to": self.to_state,
            "comment": self.comment,
            "changes": self.changes,
            "prev": self.prev_hash,
        }
        return hashlib.sha256(_CANONICAL.encode(payload).encode("utf-8")).hexdigest()

    def row(self, case_id: int) -> dict[str, Any]:
        """The values to insert into ``audit_events``."""
        return {"case_id": case_id, **{name: getattr(self, name) for name in _STORED}, "hash": self.hash}


_STORED = (
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "trigger",
    "from_state",
    "to_state",
    "comment",
    "changes",
    "prev_hash",
)


def verify_chain(ref: str, events: Iterable[EventRow], head_seq: int, head_hash: str) -> ChainBreak | None:
    """Check one case's events (ordered by id, i.e. by insertion) against the chain.

    Events are checked in the order they were written (their row id), so
    swapping two events' ``seq`` values shows up as a break even though the
    seq column alone would look tidy.
    """
    prev = GENESIS
    expected_seq = 1
    last_seq = 0
    for e in events:
        if e.seq != expected_seq:
            what = "missing" if e.seq > expected_seq else "out of order"
            return _break(ref, e, f"expected seq {expected_seq}: an event is {what}")
        if e.prev_hash != prev:
            return _break(ref, e, "does not follow the previous event (chain broken)")
        if Event.from_row(ref, e).hash != e.hash:
            return _break(ref, e, "content does not match its hash (edited)")
        prev = e.hash
        last_seq = e.seq
        expected_seq += 1
    if last_seq != head_seq or prev != (head_hash if head_seq else GENESIS):
        return ChainBreak(
            ref=ref,
            seq=None,
            event_id=None,
            reason=f"the case records {head_seq} events but the trail ends at seq {last_seq} (events removed)",
        )
    return None


def _break(ref: str, event: EventRow, reason: str) -> ChainBreak:
    return ChainBreak(ref=ref, seq=event.seq, event_id=event.id, reason=reason)
