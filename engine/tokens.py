"""Tokens of the HTTP API: made once, stored as a hash, narrowed, expiring, revocable, rate-limited.

* ``create`` returns the secret once; the database keeps only its SHA-256, so
  a copy of the database holds no usable token.
* A token acts as its user with at most the user's roles and scopes; it may be
  given fewer (``roles``/``scopes``), never more. What the user loses later the
  token loses too: its rights are read from the user at every request.
* Every use is counted on the token's row (``last_used_at`` and the rate
  window, shared by every worker and host) and written to the access log with
  the token's name, method and path; every audit event a request writes names
  the token in its origin (:mod:`engine.acting`).
* More than ``requests_per_window`` requests in a window are refused with the
  seconds until it ends (HTTP 429 with ``Retry-After``).
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from engine import users
from engine.access import ALL_SCOPES, covers
from engine.acting import Acting
from engine.clock import Clock
from engine.errors import AlreadyExists, Code, InputError, NotFound, TokenRefused
from engine.fields import check_text
from engine.logins import hash_token
from engine.models import ReadModel
from engine.store import tokens as store
from engine.store.database import Database
from engine.users import Origin

__all__ = ["TOKEN_PREFIX", "TokenInfo", "TokenPolicy", "Tokens"]

#: every secret starts with this, so a leaked one is recognisable (and secret scanners can find it)
TOKEN_PREFIX = "cwk_"


@dataclass(frozen=True)
class TokenPolicy:
    """The rate limit and the longest life of a token."""

    requests_per_window: int = 600
    window: dt.timedelta = dt.timedelta(minutes=1)
    max_days: int = 3650


class TokenInfo(ReadModel):
    """A token as ``token list`` shows it (never its secret)."""

    id: int
    username: str
    name: str
    #: the roles and scopes it is limited to (None: all its user's)
    roles: tuple[str, ...] | None = None
    scopes: tuple[str, ...] | None = None
    created_at: dt.datetime
    created_by: str | None = None
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None
    status: str


class Tokens:
    """API tokens over the database; the façade's :class:`~engine.service.Casework` holds one."""

    def __init__(
        self, db: Database, clock: Clock, origin: Callable[[str | None], Origin], policy: TokenPolicy | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.origin = origin
        self.policy = policy or TokenPolicy()

    def create(
        self,
        username: str,
        name: str,
        *,
        days: int | None = None,
        roles: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        by: str | None = None,
    ) -> tuple[str, TokenInfo]:
        """Make a token for ``username``; returns (its secret, shown only now; the token).

        ``days``: it expires that many days from now (None: it lives until revoked). ``roles``/``scopes``:
        fewer than the user's (each must be the user's). ``by``: a person making it for someone, who must
        hold :data:`engine.users.ADMIN_ROLE` (the console passes none).
        """
        name = _clean_name(name)
        if days is not None and not 1 <= days <= self.policy.max_days:
            raise InputError(
                f"--expires must be a number of days from 1 to {self.policy.max_days}, not {days}",
                code=Code.INVALID_INPUT,
                option="--expires",
                value=days,
            )

        def work(conn: Connection) -> tuple[str, TokenInfo]:
            if by is not None and by != username:
                users.require_admin(conn, by)
            actor = users.find_actor(conn, username)
            _check_subset("role", roles, lambda r: r in actor.roles, actor.roles)
            _check_subset("scope", scopes, lambda s: s != ALL_SCOPES and covers(actor.scopes, s), actor.scopes)
            now = self.clock.now()
            if store.live_token(conn, username, name, now) is not None:
                raise AlreadyExists(
                    f"{username} already has a live token called {name!r}: revoke it first "
                    f"(casework token revoke {username} {name}) or choose another name",
                    code=Code.TOKEN_EXISTS,
                    user=username,
                    token=name,
                )
            secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
            expires = now + dt.timedelta(days=days) if days is not None else None
            token_id = store.add_token(
                conn,
                token_hash=hash_token(secret),
                username=username,
                name=name,
                roles=sorted(set(roles)) if roles else None,
                scopes=sorted(set(scopes)) if scopes else None,
                created_at=now,
                created_by=by,
                expires_at=expires,
            )
            detail = {"user": username, "token": name, "expires_at": expires.isoformat() if expires else None}
            users.log_access(conn, now, self.origin(by), "create_token", detail)
            row = store.find_token(conn, hash_token(secret))
            assert row is not None and row.id == token_id
            return secret, _info(row, now)

        return self.db.transaction(work)

    def revoke(self, username: str, name: str, *, by: str | None = None) -> TokenInfo:
        """Revoke ``username``'s live token ``name`` at once (every later request with it gets 401)."""

        def work(conn: Connection) -> TokenInfo:
            if by is not None and by != username:
                users.require_admin(conn, by)
            now = self.clock.now()
            row = store.live_token(conn, username, name, now)
            if row is None:
                live = sorted(t.name for t in store.tokens(conn, username) if _status(t, now) == "live")
                raise NotFound(
                    f"{username} has no live token called {name!r}"
                    + (f"; their live tokens: {', '.join(live)}" if live else "; they have no live token"),
                    code=Code.TOKEN_NOT_FOUND,
                    user=username,
                    token=name,
                )
            store.revoke_token(conn, row.id, now)
            users.log_access(conn, now, self.origin(by), "revoke_token", {"user": username, "token": name})
            return _info(row._replace(revoked_at=now), now)

        return self.db.transaction(work)

    def list(self, username: str | None = None) -> list[TokenInfo]:
        """Every token (of one user), oldest first, with its status: ``live``, ``expired`` or ``revoked``."""
        now = self.clock.now()
        with self.db.read() as conn:
            return [_info(row, now) for row in store.tokens(conn, username)]

    def authenticate(self, secret: str | None, method: str, path: str, client: str | None = None) -> Acting:
        """The grant of a request bearing ``secret``: counted, logged and rate-limited, or refused.

        ``method``, ``path`` and ``client`` (its address) go into the access-log entry.

        Refuses with ``token_invalid`` (missing, unknown, expired, revoked, or its user disabled) or
        ``rate_limited`` (with ``retry_after`` seconds). A refused request whose token is known is still
        logged (``api_refused``, ``api_limited``), so neither a flood nor a revoked token's use goes unseen.
        """
        if not secret:
            raise TokenRefused(
                "this request has no API token: send 'Authorization: Bearer <token>' "
                "(an operator makes one with `casework token create USER --name NAME`)",
                why="missing",
            )
        token_hash = hash_token(secret)
        policy = self.policy

        def work(conn: Connection) -> Acting | TokenRefused:
            row = store.find_token(conn, token_hash, lock=True)
            if row is None:
                return TokenRefused("the API token is not one casework made (or it was mistyped)", why="unknown")
            now = self.clock.now()
            status = _status(row, now)
            detail = {"token": row.name, "method": method, "path": path[:200]}
            if client is not None:
                detail["client"] = client[:64]
            if status != "live" or row.user_disabled_at is not None:
                why = status if status != "live" else "user_disabled"
                # a revoked or expired token still in use is what an inspector most needs to see
                users.log_access(conn, now, self.origin(row.username), "api_refused", {**detail, "why": why})
                return TokenRefused(_REFUSED[why].format(name=row.name, user=row.username), why=why)
            fresh = row.window_start is None or now - row.window_start >= policy.window or now < row.window_start
            start = now if fresh or row.window_start is None else row.window_start
            count = 1 if fresh else row.window_count + 1
            store.count_use(conn, row.id, now, start, count)
            if count > policy.requests_per_window:
                retry = max(1, math.ceil((start + policy.window - now).total_seconds()))
                users.log_access(conn, now, self.origin(row.username), "api_limited", detail)
                return TokenRefused(
                    f"token {row.name!r} sent more than {policy.requests_per_window} requests in "
                    f"{int(policy.window.total_seconds())} s; nothing was done: retry after {retry} s",
                    code=Code.RATE_LIMITED,
                    token=row.name,
                    limit=policy.requests_per_window,
                    window=int(policy.window.total_seconds()),
                    retry_after=retry,
                )
            users.log_access(conn, now, self.origin(row.username), "api", detail)
            return Acting(
                row.username,
                row.name,
                roles=frozenset(row.roles) if row.roles is not None else None,
                scopes=tuple(row.scopes) if row.scopes is not None else None,
            )

        # the refusal is returned, not raised, so the count and the log entry commit
        found = self.db.transaction(work)
        if isinstance(found, TokenRefused):
            raise found
        return found


_REFUSED = {
    "expired": "the API token {name!r} of {user} has expired: the operator makes a new one",
    "revoked": "the API token {name!r} of {user} was revoked: the operator makes a new one",
    "user_disabled": "{user}, whose API token {name!r} this is, was disabled and can no longer act",
}


def _status(row: store.TokenRow, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "live"


def _info(row: store.TokenRow, now: dt.datetime) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        username=row.username,
        name=row.name,
        roles=tuple(row.roles) if row.roles is not None else None,
        scopes=tuple(row.scopes) if row.scopes is not None else None,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
        status=_status(row, now),
    )


def _clean_name(name: str) -> str:
    try:
        cleaned = check_text(name, multiline=False)
    except ValueError as exc:
        raise InputError(f"a token's name: {exc}", code=Code.INVALID_INPUT, option="--name", value=name) from None
    if not 1 <= len(cleaned) <= 63:
        raise InputError(
            f"a token's name must be 1 to 63 characters, not {len(cleaned)} (e.g. provincial-platform)",
            code=Code.INVALID_INPUT,
            option="--name",
            value=name,
        )
    return cleaned


def _check_subset(kind: str, asked: Sequence[str] | None, held: Callable[[str], bool], has: Sequence[str]) -> None:
    if not asked:
        return
    beyond = sorted(a for a in set(asked) if not held(a))
    if beyond:
        raise InputError(
            f"a token can have only its user's {kind}s, fewer never more: {', '.join(beyond)} "
            f"{'is' if len(beyond) == 1 else 'are'} not the user's (theirs: {', '.join(has)})",
            code=Code.INVALID_INPUT,
            option=f"--{kind}",
            value=beyond,
        )
