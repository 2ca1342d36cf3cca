"""Idempotency keys: a retried create or step (same key, same request) is answered, never done twice.

A client that sends ``Idempotency-Key`` with a request may send it again when
it did not hear the answer. The key is claimed in the same transaction as the
change it makes, so either both are stored or neither: a retry finds the key
and is answered with the case the first request made or moved; the same key
with a different request is refused (``idempotency_key_reused``). A refused
request stores no key, so sending it again is tried again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import Connection

from engine.acting import current
from engine.errors import Code, InputError, RefusedError
from engine.store import tokens as store

__all__ = ["check_key", "claim", "fingerprint", "settle"]

_MAX_KEY = 255


def check_key(key: str) -> str:
    """``key`` if it is usable: 1 to 255 printable ASCII characters (a UUID is the usual choice)."""
    if not 1 <= len(key) <= _MAX_KEY or not all(" " < ch <= "~" for ch in key):
        raise InputError(
            f"an Idempotency-Key must be 1 to {_MAX_KEY} printable ASCII characters without spaces "
            "(e.g. a UUID), not one of "
            f"{len(key)} characters",
            code=Code.INVALID_INPUT,
            option="Idempotency-Key",
            value=key[:80],
        )
    return key


def fingerprint(*request: Any) -> str:
    """The SHA-256 of what a request asks for (its kind, its target and its data, in canonical JSON)."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def claim(conn: Connection, username: str, key: str, print_: str, now: Any) -> str | None:
    """Claim ``key`` for this request (None: go on and make the change), or the case an earlier request with it made.

    Keys are the user's through one API token (or through none): two systems acting as one user, each with
    its own token, never meet each other's keys. Refuses (``idempotency_key_reused``) a key sent before with
    a different request.
    """
    token = _token(username)
    if store.claim_key(conn, username, token, key, print_, now):
        return None
    earlier = store.find_key(conn, username, token, key)
    assert earlier is not None  # claimed by a transaction that committed (else our claim would have won)
    if earlier.fingerprint != print_:
        raise RefusedError(
            f"the Idempotency-Key {key!r} was already used for another request (case {earlier.ref}); "
            "nothing was done: send a new key for a new request",
            code=Code.IDEMPOTENCY_KEY_REUSED,
            key=key,
            case=earlier.ref,
        )
    return earlier.ref


def settle(conn: Connection, username: str, key: str, ref: str) -> None:
    """Name the case the keyed request made or moved (in its transaction)."""
    store.set_key_ref(conn, username, _token(username), key, ref)


def _token(username: str) -> str:
    """The name of the API token ``username`` acts through now ("" for none)."""
    acting = current()
    return acting.token if acting is not None and acting.username == username else ""
