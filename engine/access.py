"""Who may do what: roles, scopes and the four-eyes rule.

Pure functions over plain values, so every rule can be tested without a
database and every path (a single step, an import, a bulk step, the
scheduler) applies the same rules. The ``check_*``/``*_role`` functions
raise the refusal that says what was wrong; the others answer yes or no.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from engine.definition.model import SYSTEM_ROLE, TransitionDef, WorkflowDef
from engine.errors import Code, PermissionDenied

__all__ = [
    "ALL_SCOPES",
    "DATA_ENTRY",
    "SYSTEM",
    "SYSTEM_ACTOR",
    "Actor",
    "Person",
    "TrailEvent",
    "acting_role",
    "add_four_eyes_fact",
    "check_edit",
    "check_scope",
    "covers",
    "data_key",
    "four_eyes_conflict",
    "four_eyes_facts",
    "is_step_back",
    "opening_role",
    "role_in_state",
    "roles_acting_in",
    "waits_for",
    "with_data_entry",
    "with_fired",
]

ALL_SCOPES = "*"
SYSTEM_ACTOR = "system"

#: What the four-eyes rule reads is a case's ``fired_by``: each trigger maps to everyone who fired it;
#: ``@`` to everyone who ever entered or changed the case's data (who opened it, edited it, or gave data
#: with a step); and ``@TRIGGER`` to everyone who had done so by the time ``TRIGGER`` was fired (the data it
#: passed on). A trigger is a name ``[a-z][a-z0-9_]*``, so no key starting with ``@`` is one.
DATA_ENTRY = "@"

#: The audit actions whose ``changes`` are the case's data (a note's changes are about the note).
_DATA_ACTIONS = ("created", "fired", "updated")


def data_key(trigger: str) -> str:
    """The ``fired_by`` key of who had entered or changed the data by the time ``trigger`` was fired."""
    return DATA_ENTRY + trigger


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
    """The earlier trigger that ``actor`` took part in and that forbids this one, or None.

    Taking part in a step is firing it, or having entered or changed the
    case's data before it was fired (:func:`data_key`): a four-eyes step
    checks the earlier step's work, and the data it passed on is part of that
    work. Changes made after the earlier step are not (an approver may set an
    amount in the approval state and grant it; the step after the grant, if
    it names ``grant``, may not be theirs). The rule is about the person, not
    the role: holding two roles or a ``*`` scope does not lift it. It covers
    everyone who ever took part in the earlier step on this case (after a
    return and resubmission, both submitters and everyone who changed data).
    """
    for earlier in transition.not_by:
        if actor in fired_by.get(earlier, ()) or actor in fired_by.get(data_key(earlier), ()):
            return earlier
    return None


class TrailEvent(Protocol):
    """What :func:`four_eyes_facts` reads of an audit event (an :class:`engine.audit.Event` or a stored row)."""

    @property
    def actor(self) -> str: ...

    @property
    def action(self) -> str: ...

    @property
    def trigger(self) -> str | None: ...

    @property
    def changes(self) -> Mapping[str, Any] | None: ...


def with_fired(
    fired_by: Mapping[str, Sequence[str]], trigger: str, actor: str, *, edited: bool = False
) -> dict[str, list[str]]:
    """``fired_by`` after ``actor`` fired ``trigger`` (``edited``: with data that changed something); a new mapping."""
    out = {k: list(v) for k, v in fired_by.items()}
    _fired(out, trigger, actor, edited)
    return out


def with_data_entry(fired_by: Mapping[str, Sequence[str]], actor: str) -> dict[str, list[str]]:
    """``fired_by`` after ``actor`` entered or changed the case's data; a new mapping."""
    out = {k: list(v) for k, v in fired_by.items()}
    _add(out, DATA_ENTRY, actor)
    return out


def four_eyes_facts(events: Iterable[TrailEvent]) -> dict[str, list[str]]:
    """What the four-eyes rule reads, replayed from a case's audit trail: the ``fired_by`` its row keeps.

    ``created`` and ``updated`` events add their actor under :data:`DATA_ENTRY`;
    a ``fired`` event adds its actor under its trigger (and, if it changed
    data, under :data:`DATA_ENTRY`), then copies everyone under
    :data:`DATA_ENTRY` to ``@TRIGGER``. Other events (objections, pauses,
    notices) are not data and count for nothing.
    """
    facts: dict[str, list[str]] = {}
    for e in events:
        add_four_eyes_fact(facts, e)
    return facts


def add_four_eyes_fact(facts: dict[str, list[str]], e: TrailEvent) -> None:
    """Add what one event (the next of the trail) tells the four-eyes rule to ``facts``, in place."""
    if e.action not in _DATA_ACTIONS:
        return
    if e.action == "fired" and e.trigger is not None:
        _fired(facts, e.trigger, e.actor, bool(e.changes))
    elif e.action == "created" or e.changes:
        _add(facts, DATA_ENTRY, e.actor)


def _fired(facts: dict[str, list[str]], trigger: str, actor: str, edited: bool) -> None:
    if edited:
        _add(facts, DATA_ENTRY, actor)
    for editor in facts.get(DATA_ENTRY, ()):
        _add(facts, data_key(trigger), editor)
    _add(facts, trigger, actor)


def _add(facts: dict[str, list[str]], key: str, name: str) -> None:
    names = facts.setdefault(key, [])
    if name not in names:
        names.append(name)


def editable_fields(wf: WorkflowDef, state: str, user: Actor) -> tuple[str, ...]:
    """The fields ``user`` may change by an edit in ``state``, in the workflow's order (what :func:`check_edit`
    allows): none in a final state, none computed or filled from a linked case."""
    st = wf.states[state]
    if st.final:
        return ()
    allowed = st.editable(r for r in user.roles if r != SYSTEM_ROLE)
    filled = wf.filled_by
    return tuple(
        name for name, fd in wf.fields.items() if name in allowed and fd.compute is None and name not in filled
    )


def check_edit(
    wf: WorkflowDef, ref: str, state: str, user: Actor, fields: Sequence[str], trigger: str | None = None
) -> str | None:
    """The user's role that may change ``fields`` of a case in ``state`` (the state's ``edit:``).

    The fields are those whose value would change (by an edit, or as data
    given with the step ``trigger`` leaving ``state``); each must be one a
    role of the user may change there. Otherwise raises
    :class:`PermissionDenied` (:data:`Code.NOT_EDITABLE`) naming the fields,
    what the user may change there, and the correction steps — steps back
    from ``state``, comment required, to a state where someone may change
    them — that would allow it. None for the scheduler, which edits nothing.
    """
    st = wf.states[state]
    held = [r for r in user.roles if r != SYSTEM_ROLE]
    allowed = st.editable(held)
    refused = [f for f in fields if f not in allowed]
    if not refused:
        return next((e.role for r in held for e in st.edit if e.role == r), None)
    corrections = [
        t
        for t in wf.transitions_from(state)
        if t.comment_required and t.dest != state and not wf.states[t.dest].final and wf.states[t.dest].editors(refused)
    ]
    named = ", ".join(f"{f} ({wf.fields[f].label})" for f in refused)
    them = "them" if len(refused) > 1 else "it"
    may = [f for f in wf.fields if f in allowed]
    here = f"in {state} ({st.label})"
    if may:
        here += f", where they may change only {', '.join(may)}"
    elif st.edit:
        here += f": only {' or '.join(e.role for e in st.edit)} may change data there"
    else:
        here += ": nothing may be changed there"
    if corrections:
        ways = "; or ".join(
            f"send the case back with {t.name} ({' or '.join(r for r in t.by if r != SYSTEM_ROLE)}, comment required) "
            f"to {t.dest} ({wf.states[t.dest].label}), where {' or '.join(wf.states[t.dest].editors(refused))} "
            f"may change {them}"
            for t in corrections
        )
        then = f"to correct {them}, {ways}; the steps after it are then taken again"
    else:
        then = f"no step of this workflow sends the case back to a state where {them} may be changed"
    who = f"{user.username} ({', '.join(held) or 'no role'})"
    raise PermissionDenied(
        f"{who} may not change {named} of case {ref} {here}; {then}",
        code=Code.NOT_EDITABLE,
        ref=ref,
        state=state,
        trigger=trigger or "",
        user=user.username,
        roles=held,
        fields=refused,
        editable=may,
        corrections=[t.name for t in corrections],
    )


def is_step_back(wf: WorkflowDef, t: TransitionDef, source: str) -> bool:
    """Whether ``t`` taken from ``source`` sends the case back to a state nearer its start.

    A return for correction (退回补正), an upheld objection, a ``correct``
    step: something a role *may* do, not what the case waits for. Nearer
    means fewer steps from the initial state; a step into a final state (a
    withdrawal, a rejection) is never a step back.
    """
    if wf.states[t.dest].final:
        return False
    depth = _depths(wf)
    return depth.get(t.dest, 0) < depth.get(source, 0)


def _depths(wf: WorkflowDef) -> dict[str, int]:
    """How many steps each state is from the initial state, at the fewest."""
    depth = {wf.initial_state: 0}
    todo = [wf.initial_state]
    while todo:
        state = todo.pop(0)
        for t in wf.transitions_from(state):
            if t.dest not in depth:
                depth[t.dest] = depth[state] + 1
                todo.append(t.dest)
    return depth


def waits_for(wf: WorkflowDef, state: str) -> set[str]:
    """The roles a case in ``state`` waits for (whose inbox it is in): those that may move it forward.

    A step counts by its ``inbox:`` if it declares one. Otherwise a step back
    (:func:`is_step_back`) does not count, nor does a step into a ``void``
    final state (a withdrawal, a rejection: something a role *may* do, not
    the work the case waits for) — unless every step out of the state that
    is not a step back is one (annual_review's ``confirm``: closing the
    review is the work), so a case always waits for someone while some
    step moves it forward.
    """
    leaving = wf.transitions_from(state)
    onward = [t for t in leaving if not is_step_back(wf, t, state)]
    work = [t for t in onward if not _voids(wf, t)] or onward
    counted = [t for t in leaving if t.inbox is True or (t.inbox is None and t in work)]
    return {r for t in counted for r in t.by}


def _voids(wf: WorkflowDef, t: TransitionDef) -> bool:
    """Whether ``t`` ends the case as having come to nothing (a ``void`` final state)."""
    dest = wf.states[t.dest]
    return dest.final and dest.void


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
