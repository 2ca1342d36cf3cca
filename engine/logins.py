"""Logins to the web application: Argon2id passwords, server-side sessions, and lockout after failed attempts.

The CLI is the operator's console and needs no password; the web application
and (later) the HTTP API do. The rules here are the same for every front end:

* a password is stored only as an Argon2id hash (argon2-cffi's defaults), and
  rehashed at the next login when those defaults grow;
* a login opens a new session: a random token the browser keeps in a cookie,
  stored here only as its SHA-256, with its own form token (CSRF). A session
  ends at ``session_lifetime`` after login, after ``idle_timeout`` unused, at
  logout, when its user's password is set anew, and at once when the user is
  disabled (every lookup reads the user too);
* after ``max_failures`` failed logins within ``failure_window`` for one
  username (or ``max_client_failures`` from one address — an office may share
  one), nothing is tried until the window has passed since the failure that
  locked it; attempts while locked are not counted, so a lockout ends on time;
* every login, failure, logout and password change is written to the access log.

A wrong username and a wrong password get the same refusal, after the same work.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection

from engine import users
from engine.clock import Clock
from engine.errors import Code, LoginRefused, PermissionDenied, UserNotFound
from engine.models import ReadModel
from engine.store import logins as store
from engine.store.database import Database
from engine.users import Origin

__all__ = ["LoginPolicy", "Logins", "SessionView", "hash_token"]


@dataclass(frozen=True)
class LoginPolicy:
    """How long sessions live and when failed logins lock (the defaults suit an office)."""

    session_lifetime: dt.timedelta = dt.timedelta(hours=10)
    idle_timeout: dt.timedelta = dt.timedelta(minutes=30)
    max_failures: int = 5
    max_client_failures: int = 20
    failure_window: dt.timedelta = dt.timedelta(minutes=15)
    min_password_length: int = 10
    #: a session's last use is written at most this often (not on every request)
    touch_every: dt.timedelta = dt.timedelta(seconds=60)
    #: Argon2id's cost: argon2-cffi's defaults (RFC 9106's second recommendation: 3 passes over 64 MiB,
    #: 4 lanes). Only tests lower it, to log in hundreds of times; a hash records its own parameters,
    #: and one made with other parameters is rehashed at the next login.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4


class SessionView(ReadModel):
    """A live login: who, with which roles and scopes, and the form token its pages carry."""

    id: int
    username: str
    name: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    csrf: str
    client: str
    created_at: dt.datetime
    expires_at: dt.datetime


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a session token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def _hasher_for(time_cost: int, memory_kib: int, parallelism: int) -> tuple[PasswordHasher, str]:
    """An Argon2id hasher with these costs, and a hash it verifies against when a user does not exist or
    has no password, so that costs what a real check costs."""
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    return hasher, hasher.hash(secrets.token_urlsafe(16))


class Logins:
    """Passwords, sessions and lockouts, over the database; the façade's :class:`~engine.service.Casework` holds one."""

    def __init__(
        self, db: Database, clock: Clock, origin: Callable[[str | None], Origin], policy: LoginPolicy | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.origin = origin
        self.policy = policy or LoginPolicy()

    @property
    def hasher(self) -> PasswordHasher:
        """The Argon2id hasher of the policy's costs."""
        p = self.policy
        return _hasher_for(p.argon2_time_cost, p.argon2_memory_kib, p.argon2_parallelism)[0]

    # ------------------------------------------------------------------ passwords

    def check_password(self, username: str, password: str) -> None:
        """Refuse (``weak_password``) a new password the policy does not accept."""
        minimum = self.policy.min_password_length
        if len(password) < minimum:
            why = f"a password needs at least {minimum} characters, not {len(password)}"
        elif username.lower() in password.lower():
            why = "a password may not contain the username"
        elif len(set(password)) == 1:
            why = "a password may not be one character repeated"
        else:
            return
        raise LoginRefused(why, code=Code.WEAK_PASSWORD, user=username, min_length=minimum)

    def set_password(self, username: str, password: str, *, by: str | None = None) -> None:
        """Set ``username``'s password (an operator or a supervisor's reset); every session of theirs ends.

        ``by``: the person resetting it, who must hold :data:`engine.users.ADMIN_ROLE` (the CLI passes none).

        Raises:
            UserNotFound: no such user (``system`` included).
            LoginRefused: ``weak_password``.
        """
        users.refuse_system(username)
        self.check_password(username, password)
        new_hash = self.hasher.hash(password)

        def work(conn: Connection) -> None:
            if by is not None:
                users.require_admin(conn, by)
            if store.find_credentials(conn, username) is None:
                raise UserNotFound(username)
            now = self.clock.now()
            store.set_password_hash(conn, username, new_hash, now)
            ended = store.end_sessions(conn, username, now, "password_set")
            users.log_access(conn, now, self.origin(by), "set_password", {"user": username, "sessions_ended": ended})

        self.db.transaction(work)

    def change_password(self, session: SessionView, old: str, new: str) -> None:
        """The user of ``session`` changes their own password; their other sessions end, this one stays.

        Raises:
            LoginRefused: the old password is wrong (``login_failed``, counted
                towards the lockout) or the new one is weak.
        """
        self._verify_or_fail(session.username, old, session.client)
        self.check_password(session.username, new)
        new_hash = self.hasher.hash(new)

        def work(conn: Connection) -> None:
            now = self.clock.now()
            store.set_password_hash(conn, session.username, new_hash, now)
            ended = store.end_sessions(conn, session.username, now, "password_changed", keep=session.id)
            detail = {"user": session.username, "client": session.client, "sessions_ended": ended}
            users.log_access(conn, now, self.origin(session.username), "change_password", detail)

        self.db.transaction(work)

    def with_password(self) -> set[str]:
        """The usernames that have a password (the hashes themselves never leave this module)."""
        with self.db.read() as conn:
            return store.usernames_with_password(conn)

    # ------------------------------------------------------------------- sessions

    def login(
        self, username: str, password: str, client: str, *, replaces: str | None = None
    ) -> tuple[str, SessionView]:
        """Check the password and open a session; (the token for the cookie, the session).

        ``replaces``: the token the browser held before, ended here (the
        session id changes at every login).

        Raises:
            LoginRefused: ``login_locked`` (nothing was checked), ``login_failed``
                (recorded), or ``user_disabled`` after a right password.
        """
        self._verify_or_fail(username, password, client)
        token = secrets.token_urlsafe(32)

        def work(conn: Connection) -> SessionView:
            now = self.clock.now()
            if replaces:
                old = store.find_session(conn, hash_token(replaces))
                if old is not None:
                    store.end_session(conn, old.id, now, "replaced")
            store.clear_failures(conn, username)
            store.forget_failures_before(conn, now - self.policy.failure_window)
            session_id = store.add_session(
                conn,
                token_hash=hash_token(token),
                username=username,
                csrf=secrets.token_urlsafe(32),
                client=client,
                now=now,
                expires_at=now + self.policy.session_lifetime,
            )
            users.log_access(conn, now, self.origin(username), "login", {"client": client})
            row = store.find_session(conn, hash_token(token))
            assert row is not None and row.id == session_id
            return _view(row)

        return token, self.db.transaction(work)

    def session(self, token: str | None) -> SessionView | None:
        """The live session of ``token``; None when there is none, it expired, idled out, or its user is disabled."""
        if not token or len(token) > 200:
            return None
        digest = hash_token(token)
        now = self.clock.now()
        with self.db.read() as conn:
            row = store.find_session(conn, digest)
        if row is None:
            return None
        why = None
        if row.disabled_at is not None:
            why = "disabled"
        elif now >= row.expires_at:
            why = "expired"
        elif now - row.seen_at >= self.policy.idle_timeout:
            why = "idle"
        if why is not None:
            self.db.transaction(lambda conn: store.end_session(conn, row.id, now, why))
            return None
        if now - row.seen_at >= self.policy.touch_every:
            self.db.transaction(lambda conn: store.touch_session(conn, row.id, now))
        return _view(row)

    def logout(self, token: str | None) -> bool:
        """End the session of ``token``; whether there was one to end."""
        if not token:
            return False

        def work(conn: Connection) -> bool:
            row = store.find_session(conn, hash_token(token))
            if row is None:
                return False
            now = self.clock.now()
            store.end_session(conn, row.id, now, "logout")
            users.log_access(conn, now, self.origin(row.username), "logout", {"client": row.client})
            return True

        return self.db.transaction(work)

    def end_sessions(self, conn: Connection, username: str, why: str) -> int:
        """End every session of ``username`` inside the caller's transaction (a user disabled)."""
        return store.end_sessions(conn, username, self.clock.now(), why)

    # ------------------------------------------------------------------ internals

    def _verify_or_fail(self, username: str, password: str, client: str) -> None:
        """Refuse while locked; count the attempt; check the password; refuse when it is wrong.

        The attempt is written (as a failure) before the slow Argon2 check and removed when the
        password is right, so parallel guesses cannot all pass the lockout check before any of
        them is counted: on PostgreSQL the user's row is locked while counting, on SQLite the
        write serialises the counting.
        """
        now = self.clock.now()

        def claim(conn: Connection) -> tuple[store.Credentials | None, int]:
            found = store.find_credentials(conn, username, lock=True)
            self._refuse_locked(conn, username, client, now)
            return found, store.add_failure(conn, username, client, now)

        found, attempt = self.db.transaction(claim)
        stored = found.password_hash if found is not None else None
        p = self.policy
        hasher, dummy = _hasher_for(p.argon2_time_cost, p.argon2_memory_kib, p.argon2_parallelism)
        ok = _verify(hasher, stored or dummy, password) and stored is not None
        if ok:
            fresh = hasher.hash(password) if stored is not None and hasher.check_needs_rehash(stored) else None

            def passed(conn: Connection) -> None:
                store.remove_failure(conn, attempt)
                if fresh is not None:
                    store.set_password_hash(conn, username, fresh, now)

            self.db.transaction(passed)
            if found is not None and found.disabled_at is not None:
                raise PermissionDenied(
                    f"{username} is disabled and cannot log in; a supervisor can enable them again",
                    code=Code.USER_DISABLED,
                    user=username,
                )
            return

        def record(conn: Connection) -> None:
            detail = {"username": username[:63], "client": client}
            actor = username if found is not None else None
            users.log_access(conn, now, self.origin(actor), "login_failed", detail)

        self.db.transaction(record)
        # the same code, message and facts whether the user exists or not
        raise LoginRefused("wrong username or password", code=Code.LOGIN_FAILED)

    def _refuse_locked(self, conn: Connection, username: str, client: str, now: dt.datetime) -> None:
        window = self.policy.failure_window
        for locked, limit, times in (
            ("user", self.policy.max_failures, store.failures_since(conn, username=username, since=now - window)),
            ("client", self.policy.max_client_failures, store.failures_since(conn, client=client, since=now - window)),
        ):
            if len(times) >= limit:
                # locked until the window has passed since the failure that reached the limit
                until = times[limit - 1] + window
                retry = max(1, math.ceil((until - now).total_seconds()))
                raise LoginRefused(
                    f"too many failed logins; try again in {math.ceil(retry / 60)} minutes",
                    code=Code.LOGIN_LOCKED,
                    locked=locked,
                    retry_after=retry,
                )


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _view(row: store.SessionRow) -> SessionView:
    return SessionView(
        id=row.id,
        username=row.username,
        name=row.name,
        roles=tuple(row.roles),
        scopes=tuple(row.scopes),
        csrf=row.csrf,
        client=row.client,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )
