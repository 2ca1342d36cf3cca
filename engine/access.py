"""Who may do what: roles, scopes and the four-eyes rule.

Pure functions over plain values, so every rule can be tested without a
database and every path (a single step, an import, a bulk step, the
scheduler) applies the same rules. The ``check_*``/``*_role`` functions
raise the refusal that says what was wrong; the others answer yes or no.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from engine.definition.model import SYSTEM_ROLE, TransitionDef, WorkflowDef
from engine.errors import Code, PermissionDenied

__all__ = [
    "ALL_SCOPES",
    "SYSTEM",
    "SYSTEM_ACTOR",
    "Actor",
    "Person",
    "acting_role",
    "check_scope",
    "covers",
    "four_eyes_conflict",
    "opening_role",
    "role_in_state",
    "roles_acting_in",
]

ALL_SCOPES = "*"
SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user's name, roles and scopes, or the scheduler (``system``)."""

    username: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    system: bool = False


class Person(NamedTuple):
    """A user as a notification rule sees them."""

    username: str
    name: str
    email: str | None
    roles: list[str]
    scopes: list[str]


# The scheduler's identity. Only engine code paths (timers, campaigns) use it;
# no user can be called 'system' and no shell lets anyone act as it.
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


def check_scope(user: Actor, ref: str | None, scope: str | None) -> None:
    """Refuse (:data:`Code.SCOPE_NOT_COVERED`) unless ``user`` covers ``scope``; ``ref`` None: a case being opened."""
    if covers(user.scopes, scope):
        return
    held = ", ".join(user.scopes)
    if ref is None:
        message = (
            f"{user.username} covers {held}, not {scope}; a case in {scope} must be opened by someone who covers it"
        )
    else:
        message = f"{user.username} covers {held}, not {scope}, where case {ref} belongs; ask a colleague who covers it"
    raise PermissionDenied(
        message, code=Code.SCOPE_NOT_COVERED, ref=ref or "", user=user.username, scopes=list(user.scopes), scope=scope
    )


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


def roles_acting_in(wf: WorkflowDef, state: str) -> set[str]:
    """The roles that may take some step out of ``state`` (``system`` included)."""
    return {r for t in wf.transitions_from(state) for r in t.by}


def role_in_state(wf: WorkflowDef, ref: str, state: str, user: Actor, doing: str) -> str:
    """The user's role that may act on a case in ``state`` (edit it, pause it …): one that can take a step from it.

    Raises :class:`PermissionDenied` (:data:`Code.ROLE_NEEDED`) naming the
    roles that could, for the action described by ``doing`` ("edit", "pause").
    """
    allowed = roles_acting_in(wf, state) - {SYSTEM_ROLE}
    role = next((r for r in user.roles if r in allowed), None)
    if role is None:
        raise PermissionDenied(
            f"{user.username} may not {doing} case {ref} in {state}: that needs role {' or '.join(sorted(allowed))}",
            ref=ref,
            state=state,
            user=user.username,
            roles=list(user.roles),
            needed=sorted(allowed),
        )
    return role


def opening_role(wf: WorkflowDef, user: Actor) -> str:
    """The role in which ``user`` opens a case of ``wf``: one that may act in its initial state.

    The scheduler opens cases only for a workflow's own declared schedules
    (campaigns), as ``system``.
    """
    if user.system:
        return SYSTEM_ACTOR
    openers = roles_acting_in(wf, wf.initial_state)
    role = next((r for r in user.roles if r in openers), None)
    if role is None:
        raise PermissionDenied(
            f"{user.username} ({', '.join(user.roles)}) may not open a {wf.name} case: "
            f"that needs role {' or '.join(sorted(openers))}",
            user=user.username,
            roles=list(user.roles),
            needed=sorted(openers),
            workflow=wf.name,
        )
    return role
