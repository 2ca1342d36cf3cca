"""The SQL of API tokens (``api_tokens``) and of idempotency keys (``idempotency_keys``).

Only :mod:`engine.tokens` calls these; it owns the rules (expiry, narrowing,
the rate limit). A token row is found by the SHA-256 of its secret.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from db import schema

__all__ = [
    "KeyRow",
    "TokenRow",
    "add_token",
    "claim_key",
    "count_use",
    "find_key",
    "find_token",
    "live_token",
    "revoke_token",
    "set_key_ref",
    "tokens",
]

_tokens = schema.api_tokens
_keys = schema.idempotency_keys
_users = schema.users


class TokenRow(NamedTuple):
    """An ``api_tokens`` row joined with what its user now holds."""

    id: int
    username: str
    name: str
    roles: list[str] | None
    scopes: list[str] | None
    created_at: dt.datetime
    created_by: str | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    window_start: dt.datetime | None
    window_count: int
    user_disabled_at: dt.datetime | None


def _select() -> Any:
    t = _tokens.c
    return select(
        t.id,
        t.username,
        t.name,
        t.roles,
        t.scopes,
        t.created_at,
        t.created_by,
        t.expires_at,
        t.revoked_at,
        t.last_used_at,
        t.window_start,
        t.window_count,
        _users.c.disabled_at,
    ).join_from(_tokens, _users, _users.c.username == t.username)


def add_token(conn: Connection, **values: Any) -> int:
    """Insert a token row; returns its id."""
    return int(conn.execute(insert(_tokens).values(**values).returning(_tokens.c.id)).scalar_one())


def find_token(conn: Connection, token_hash: str, *, lock: bool = False) -> TokenRow | None:
    """The token whose secret hashes to ``token_hash`` (``lock``: hold its row to count a use)."""
    query = _select().where(_tokens.c.token_hash == token_hash)
    if lock:
        query = query.with_for_update(of=_tokens)
    row = conn.execute(query).first()
    return TokenRow._make(row) if row is not None else None


def live_token(conn: Connection, username: str, name: str, now: dt.datetime) -> TokenRow | None:
    """The user's token called ``name`` that is neither revoked nor expired, if any."""
    query = _select().where(
        _tokens.c.username == username,
        _tokens.c.name == name,
        _tokens.c.revoked_at.is_(None),
        (_tokens.c.expires_at.is_(None)) | (_tokens.c.expires_at > now),
    )
    row = conn.execute(query).first()
    return TokenRow._make(row) if row is not None else None


def tokens(conn: Connection, username: str | None = None) -> list[TokenRow]:
    """Every token (of one user), oldest first."""
    query = _select().order_by(_tokens.c.id)
    if username is not None:
        query = query.where(_tokens.c.username == username)
    return [TokenRow._make(row) for row in conn.execute(query)]


def revoke_token(conn: Connection, token_id: int, now: dt.datetime) -> None:
    """Mark the token revoked at ``now``."""
    conn.execute(update(_tokens).where(_tokens.c.id == token_id).values(revoked_at=now))


def count_use(conn: Connection, token_id: int, now: dt.datetime, window_start: dt.datetime, count: int) -> None:
    """Record a use: when, and the rate window's start and count."""
    conn.execute(
        update(_tokens)
        .where(_tokens.c.id == token_id)
        .values(last_used_at=now, window_start=window_start, window_count=count)
    )


class KeyRow(NamedTuple):
    """An ``idempotency_keys`` row."""

    username: str
    token: str
    key: str
    fingerprint: str
    ref: str
    created_at: dt.datetime


def claim_key(conn: Connection, username: str, token: str, key: str, fingerprint: str, now: dt.datetime) -> bool:
    """Insert the key (its case filled in later); False if it is there already.

    On PostgreSQL a second transaction claiming the same key waits here until
    the first commits or rolls back, then finds it taken or claims it: two
    retries sent at once never both go on to make a change.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    claim = (
        dialect.insert(_keys)
        .values(username=username, token=token, key=key, fingerprint=fingerprint, ref="", created_at=now)
        .on_conflict_do_nothing()
        .returning(_keys.c.key)  # a row back: ours (rowcount is not reliable for ON CONFLICT on every driver)
    )
    return conn.execute(claim).first() is not None


def set_key_ref(conn: Connection, username: str, token: str, key: str, ref: str) -> None:
    """Name the case the key's request made or moved (in the same transaction as the change)."""
    mine = (_keys.c.username == username) & (_keys.c.token == token) & (_keys.c.key == key)
    conn.execute(update(_keys).where(mine).values(ref=ref))


def find_key(conn: Connection, username: str, token: str, key: str) -> KeyRow | None:
    """The key, if this user sent it before through this token."""
    mine = (_keys.c.username == username) & (_keys.c.token == token) & (_keys.c.key == key)
    row = conn.execute(select(_keys).where(mine)).first()
    return KeyRow._make(row) if row is not None else None
