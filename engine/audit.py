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
import getpass
import hashlib
import hmac
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from engine.acting import current
from engine.errors import InputError
from engine.models import ChainBreak
from engine.store.tables import EventRow

__all__ = [
    "CHECKPOINT_FORMAT",
    "GENESIS",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "Event",
    "Recorder",
    "checkpoint_mac",
    "load_key",
    "make_checkpoint",
    "origin",
    "read_checkpoint",
    "seal",
    "verify_chain",
]

#: the audit key (any string of at least 32 characters), or the file holding it
KEY_ENV = "CASEWORK_AUDIT_KEY"
KEY_FILE_ENV = "CASEWORK_AUDIT_KEY_FILE"
_MIN_KEY = 32

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
    context: Mapping[str, Any] | None = None

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
        if self.context:
            # events written before provenance was recorded have none and keep their hash
            payload["ctx"] = self.context
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
    "context",
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


def origin() -> dict[str, str]:
    """Who runs this process, where: the operating-system user and host recorded beside the named actor."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid:{os.getuid()}"
    return {"os_user": user[:63], "host": socket.gethostname()[:255]}


def load_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """The audit key from ``CASEWORK_AUDIT_KEY`` or the file ``CASEWORK_AUDIT_KEY_FILE`` names (None if neither).

    The key must not be kept in the database: it is what someone who can write
    the database lacks to forge a trail head.
    """
    env = os.environ if env is None else env
    text, where = env.get(KEY_ENV), KEY_ENV
    path = env.get(KEY_FILE_ENV)
    if text is None and path:
        where = f"{KEY_FILE_ENV} ({path})"
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the audit key from {where}: {exc}") from None
    if text is None:
        return None
    if len(text) < _MIN_KEY:
        raise InputError(
            f"the audit key in {where} is {len(text)} characters; use at least {_MIN_KEY} random ones "
            "(e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return text.encode("utf-8")


def seal(key: bytes, ref: str, seq: int, head: str) -> str:
    """HMAC-SHA256 of a case's trail head: its reference, last seq and last hash."""
    return hmac.new(key, f"{ref}\n{seq}\n{head}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Recorder:
    """What every event this process writes carries: its origin (in the hashed context) and the head's seal."""

    key: bytes | None = None
    source: Mapping[str, str] = field(default_factory=dict)

    def context(self, **extra: Any) -> dict[str, Any] | None:
        """The event's context: the process's origin, plus ``extra`` (e.g. the workflow a case opens on)."""
        source = dict(self.source)
        acting = current()
        if acting is not None:  # an API token: the channel and the token's name, beside the process
            source.update(via=acting.channel, token=acting.token)
        found = {**({"origin": source} if source else {}), **extra}
        return found or None

    def seal(self, ref: str, seq: int, head: str) -> str | None:
        """The case's ``audit_seal`` for this head (None without a key)."""
        return seal(self.key, ref, seq, head) if self.key is not None else None

    def check(self, ref: str, seq: int, head: str, stored: str | None) -> str | None:
        """Why the stored seal does not authenticate the head (None when it does, or without a key)."""
        if self.key is None:
            return None
        if stored is None:
            return "the trail head is not sealed (written without the audit key, or the seal was removed)"
        if not hmac.compare_digest(stored, seal(self.key, ref, seq, head)):
            return "the trail head's seal does not match (written or changed without the audit key)"
        return None


#: the format of a checkpoint file (``casework audit checkpoint``)
CHECKPOINT_FORMAT = "casework-audit-checkpoint/1"


def checkpoint_mac(key: bytes, body: Mapping[str, Any]) -> str:
    """HMAC-SHA256 of a checkpoint's content (everything but its ``mac``)."""
    return hmac.new(key, _CANONICAL.encode(body).encode("utf-8"), hashlib.sha256).hexdigest()


def make_checkpoint(
    made_at: dt.datetime, heads: Mapping[str, tuple[int, str]], notices: Mapping[str, str], key: bytes | None
) -> dict[str, Any]:
    """A checkpoint: every case's trail head and every notice's SHA-256 now, MAC'd with the key if there is one.

    Kept outside the database (printed, mailed, in another system), it lets a
    later ``audit verify --checkpoint`` prove that no trail was cut back,
    rebuilt or removed, and no notice replaced, since it was made — even by
    someone who could rewrite the whole database consistently.
    """
    body: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "made_at": _canonical_time(made_at),
        "cases": {ref: [seq, head] for ref, (seq, head) in sorted(heads.items())},
        "notices": dict(sorted(notices.items())),
    }
    if key is not None:
        body["mac"] = checkpoint_mac(key, body)
    return body


def read_checkpoint(text: str, key: bytes | None) -> tuple[dict[str, tuple[int, str]], dict[str, str], bool]:
    """(case heads, notice hashes, whether the MAC was checked) of a checkpoint file's content.

    Raises :class:`InputError` for a file that is not a checkpoint, or whose
    MAC does not match the key (changed since it was made, or made with
    another key).
    """
    try:
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a casework checkpoint")
        cases = {str(ref): (int(seq), str(head)) for ref, (seq, head) in body["cases"].items()}
        notices = {str(n): str(sha) for n, sha in body.get("notices", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"the checkpoint file is not one `casework audit checkpoint` wrote ({exc}); give the file it wrote"
        ) from None
    mac = body.pop("mac", None)
    if mac is None or key is None:
        return cases, notices, False
    if not hmac.compare_digest(str(mac), checkpoint_mac(key, body)):
        raise InputError(
            "the checkpoint's MAC does not match the audit key: the file was changed after it was made, "
            "or made with another key"
        )
    return cases, notices, True
