"""Who may do what: roles, scopes and the four-eyes rule.

Pure functions over plain values, so every rule can be tested without a
database and the service applies the same rules to every path (CLI,
scheduler, bulk operations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.definition.model import SYSTEM_ROLE, TransitionDef

__all__ = ["ALL_SCOPES", "SYSTEM", "SYSTEM_ACTOR", "Actor", "acting_role", "covers", "four_eyes_conflict"]

ALL_SCOPES = "*"
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user's name, roles and scopes, or the scheduler (``system``)."""

    username: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    system: bool = False


# The scheduler's identity. Only engine code paths (timers, campaigns) use it;
# no user can be called 'system' and the CLI refuses '--as system'.
SYSTEM = Actor(SYSTEM_ACTOR, (), (ALL_SCOPES,), system=True)


def acting_role(user_roles: Sequence[str], transition: TransitionDef, *, system: bool = False) -> str | None:
    """The role in which the actor may fire ``transition``, or None.

    The first of the transition's ``by`` roles that the user holds wins, so
    the audit trail records a role the workflow names. ``system`` is never a
    role a user can hold: only the engine's own scheduler path passes
    ``system=True``.
    """
    if system:
        return SYSTEM_ROLE if SYSTEM_ROLE in transition.by else None
    held = set(user_roles) - {SYSTEM_ROLE}
    return next((r for r in transition.by if r in held), None)


def covers(user_scopes: Sequence[str], case_scope: str | None) -> bool:
    """True if a user with ``user_scopes`` may see and act on a case in ``case_scope``."""
    if case_scope is None:
        return True
    return ALL_SCOPES in user_scopes or case_scope in user_scopes


def four_eyes_conflict(actor: str, transition: TransitionDef, fired_by: Mapping[str, Sequence[str]]) -> str | None:
    """The earlier trigger that ``actor`` fired and that forbids this one, or None.

    The rule is about the person, not the role: holding two roles or a ``*``
    scope does not lift it. It covers everyone who ever fired the earlier
    trigger on this case (after a return and resubmission, both submitters).
    """
    for earlier in transition.not_by:
        if actor in fired_by.get(earlier, ()):
            return earlier
    return None
