"""Errors of the web layer itself (the engine's refusals are :class:`engine.CaseworkError`)."""

from __future__ import annotations

__all__ = ["CsrfRejected", "NotLoggedIn"]


class NotLoggedIn(Exception):
    """The request has no live session: pages redirect to the login form."""


class CsrfRejected(Exception):
    """A form was posted without the session's form token (or with another): nothing is done."""
