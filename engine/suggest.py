""" "Did you mean" suggestions for names a person mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_match", "did_you_mean"]


def close_match(name: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to ``name``, if one is near enough."""
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for a near name, else a list of what exists."""
    options = sorted(set(choices))
    close = close_match(name, options)
    if close:
        return f"; did you mean {close!r}?"
    if not options:
        return ""
    shown = ", ".join(options[:12]) + (", …" if len(options) > 12 else "")
    return f"; known: {shown}"
