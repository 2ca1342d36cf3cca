"""Who is acting through which channel: an API token narrows its user, and every event it writes names it.

A token of the HTTP API acts as its user, with at most the user's roles and
scopes (a token may be given fewer). Every rule in the engine reads the actor
through :func:`engine.users.find_actor` (or, where a step reads the actor
with the case in one statement, :meth:`engine.steps.Steps.read`), and both
apply :func:`narrowed`: the limits of the token the current request runs
under. Every audit event the request writes
carries the channel and the token's name in its origin. The front end sets it
around its engine calls with :func:`acting_through`; the command line and the
web pages never set it, and act with the user's full rights.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from engine.access import Actor, covers

__all__ = ["Acting", "acting_through", "current", "narrowed"]


@dataclass(frozen=True)
class Acting:
    """A request made with a token: whose, which, and the roles and scopes it is limited to (None: all)."""

    username: str
    token: str
    roles: frozenset[str] | None = None
    scopes: tuple[str, ...] | None = None
    channel: str = "api"


_current: ContextVar[Acting | None] = ContextVar("casework_acting", default=None)


@contextmanager
def acting_through(acting: Acting) -> Iterator[Acting]:
    """Run the engine calls inside as ``acting`` (its narrowing applied, its token named on every event)."""
    reset = _current.set(acting)
    try:
        yield acting
    finally:
        _current.reset(reset)


def current() -> Acting | None:
    """The token the current call acts through, or None (the console, the web pages, the scheduler)."""
    return _current.get()


def narrowed(actor: Actor) -> Actor:
    """``actor`` with the current token's limits applied (unchanged for anyone else)."""
    acting = _current.get()
    if acting is None or acting.username != actor.username or actor.system:
        return actor
    roles = actor.roles if acting.roles is None else tuple(r for r in actor.roles if r in acting.roles)
    # a token's scopes are named counties, each one its user covered when it was made (never ``*``)
    scopes = actor.scopes if acting.scopes is None else tuple(s for s in acting.scopes if covers(actor.scopes, s))
    return Actor(actor.username, roles, scopes)
