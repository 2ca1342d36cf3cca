"""One case acting on another, and a field naming another workflow's case.

**Fields linked to a case** (a text field's ``link: {workflow, states, fill}``): warmth's
``archive_ref`` holds the reference of a ``poverty_archive`` case that must be filed (已建档).
Whenever such a value is set or changed — a case opened, edited, given data with a step,
imported, opened by a campaign — :func:`fill_links` finds that case and refuses unless it exists,
is of the linked workflow and is in one of ``states``
(:data:`~engine.errors.Code.LINKED_CASE_NOT_FOUND`, :data:`~engine.errors.Code.LINKED_CASE_STATE`);
then it copies the ``fill`` fields from it into this case's data, overwriting, so they are recorded
old → new in the same event and the trail replays them. While a link field holds a value, its
filled fields cannot be typed (they are that case's). :func:`recheck_links` checks the link again
at each step whose ``require:`` names the field (an archive that exited after the application
blocks the grant). A linked case outside the actor's counties is answered as one nobody has; filling
happens before the scope check, so a filled county must still be one the actor covers. A workflow
without links pays nothing: its ``linked_fields`` is empty.

**A transition's** ``then:`` takes a step on a linked case, in the same transaction.

A step such as annual_review's ``exit`` declares ``then: {case: archive_ref,
fire: exit}``: once the review has moved, the archive whose reference is in
the review's ``archive_ref`` takes its own ``exit`` step, as the same actor
and by every rule of the archive's workflow version (roles, scopes,
four-eyes, comment, guards, publicity). :func:`follow` runs at the end of
:meth:`engine.steps.Steps.fire`, inside the caller's transaction, so both
steps are written or neither is:

* the linked step's refusal is raised with its own code and facts, plus
  ``linked_from`` (the case and step whose ``then:`` took it), and the
  caller's transaction rolls back, so nothing of either case changes;
* an empty link field, or a reference that names no case, is refused
  (:data:`~engine.errors.Code.LINKED_CASE_NOT_FOUND`);
* a ``then:`` on the linked step is followed too, up to :data:`MAX_DEPTH`
  cases deep, and a chain that comes back to a case it already acted on is
  refused (:data:`~engine.errors.Code.LINKED_CHAIN`).

The linked case's event records what caused it in its comment (``… — by
annual_review FH-2026-000012 exit``), which the event's hash covers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import Actor, covers
from engine.definition import WorkflowDef
from engine.definition.model import ThenDef, TransitionDef
from engine.errors import CODES, LINKED_FROM, Code, FieldProblem, InvalidCaseData, RefusedError, TransitionRefused
from engine.fields import coerce_value, is_empty
from engine.store.cases import read_case
from engine.store.database import VersionPin
from engine.store.tables import CaseRow

if TYPE_CHECKING:
    from engine.catalog import Catalog
    from engine.steps import Steps

__all__ = [
    "MAX_DEPTH",
    "LinkReader",
    "Linked",
    "check_link",
    "fill_links",
    "follow",
    "in_hand",
    "link_reader",
    "recheck_links",
]


@dataclass(frozen=True)
class Linked:
    """A case that a ``link:`` field names, as the link's checks see it."""

    ref: str
    workflow: str
    title: str  # its workflow's title (金秋助学 …), for messages
    state: str
    labels: Mapping[str, str]  # its workflow version's state labels
    data: Mapping[str, Any]
    scope: str | None = None

    def label(self, state: str) -> str:
        """``已建档 (filed)``: a state of the linked workflow as a clerk reads it."""
        shown = self.labels.get(state, state)
        return f"{shown} ({state})" if shown != state else state


#: finds the case a reference names (None: no case has it)
LinkReader = Callable[[str], Linked | None]


def link_reader(conn: Connection, catalog: Catalog) -> LinkReader:
    """A reader of linked cases in ``conn``'s transaction (one read of the case per reference)."""

    def read(ref: str) -> Linked | None:
        row = read_case(conn, ref)
        if row is None:
            return None
        wf = catalog.get(conn, row.workflow_version_id).definition
        labels = {name: s.label for name, s in wf.states.items()}
        return Linked(row.ref, row.workflow, wf.title, row.state, labels, row.data, row.scope)

    return read


def in_hand(source: WorkflowDef, state: str, cases: Iterable[tuple[str, Mapping[str, Any]]]) -> LinkReader:
    """A reader over cases already read (a campaign's: every case of ``source`` in ``state``), no query."""
    labels = {name: s.label for name, s in source.states.items()}
    found = {ref: Linked(ref, source.name, source.title, state, labels, data) for ref, data in cases}
    return found.get


def _no_reader(ref: str) -> Linked | None:
    raise RuntimeError("a linked field was set on a path that cannot read cases")  # pragma: no cover


def check_link(
    wf: WorkflowDef,
    name: str,
    value: str,
    read: LinkReader,
    actor: Actor | None,
    *,
    ref: str = "",
    state: str = "",
    trigger: str = "",
) -> Linked:
    """The case field ``name`` names by ``value``, refused unless it is of the linked workflow and in its states.

    With ``actor``, a linked case outside the actor's scopes is refused as if no case had the reference:
    a reference is no way to learn of another county's archive, or that it exists.
    """
    link = wf.fields[name].link
    assert link is not None
    found = read(value)
    if found is not None and actor is not None and not covers(actor.scopes, found.scope):
        # answered as a reference nobody has: a reference is no way to learn that another county's archive exists
        found = None
    facts: dict[str, Any] = {"field": name, "linked_case": value, "linked_workflow": link.workflow}
    if found is None or found.workflow != link.workflow:
        what = (
            f"no {link.workflow} case {value}" + (" in the counties you cover" if actor is not None else "")
            if found is None
            else f"{value} is a {found.workflow} case, not a {link.workflow} case"
        )
        raise TransitionRefused(
            f"{name}: {what}; check the reference ({wf.fields[name].label})",
            code=Code.LINKED_CASE_NOT_FOUND,
            ref=ref,
            state=state,
            trigger=trigger,
            **facts,
        )
    if found.state not in link.states:
        allowed = ", ".join(found.label(s) for s in link.states)
        raise TransitionRefused(
            f"{name}: {value} is {found.label(found.state)}; {wf.title} is only for {found.title} cases in {allowed}",
            code=Code.LINKED_CASE_STATE,
            ref=ref,
            state=state,
            trigger=trigger,
            linked_state=found.state,
            allowed=list(link.states),
            **facts,
        )
    return found


def fill_links(
    wf: WorkflowDef,
    old: Mapping[str, Any],
    values: dict[str, Any],
    given: Mapping[str, Any],
    now: dt.datetime,
    read: LinkReader | None,
    actor: Actor | None,
    *,
    ref: str = "",
    state: str = "",
    trigger: str = "",
) -> dict[str, Any]:
    """``values`` with each link set or changed (vs. ``old``) checked and its ``fill`` fields copied in.

    ``given`` is the data typed in this action: a filled field typed while its link holds a value is
    refused like a computed one (:class:`InvalidCaseData`), whatever else changes.
    """
    if not wf.linked_fields:
        return values
    today = now.astimezone(ZoneInfo(wf.timezone)).date()
    out = dict(values)
    for name in wf.linked_fields:
        link = wf.fields[name].link
        assert link is not None
        after = out.get(name)
        typed = [f for f in link.fill if not is_empty(given.get(f))]
        if typed and not is_empty(after):
            raise InvalidCaseData(
                [
                    FieldProblem(
                        f,
                        f"is filled from the {link.workflow} case in {name} ({wf.fields[name].label}); it cannot "
                        f"be typed while {name} is set: correct it on that case, or change {name}",
                    )
                    for f in typed
                ],
                case=ref or None,
            )
        if is_empty(after) or after == old.get(name):
            continue
        found = check_link(wf, name, str(after), read or _no_reader, actor, ref=ref, state=state, trigger=trigger)
        problems = []
        for f in link.fill:
            try:
                out[f] = coerce_value(wf.fields[f], found.data.get(f), today)
            except ValueError as exc:
                problems.append(FieldProblem.of(f, exc, prefix=f"as {found.ref} holds it: "))
            if out.get(f) is None:
                out.pop(f, None)
        if problems:
            raise InvalidCaseData(problems, case=ref or None)
    return out


def recheck_links(
    wf: WorkflowDef,
    t: TransitionDef,
    values: Mapping[str, Any],
    read: LinkReader | None,
    actor: Actor,
    *,
    ref: str,
    state: str,
) -> None:
    """Refuse the step ``t`` if a link field it requires names a case no longer in the link's states."""
    for name in wf.linked_fields:
        if name in t.require and not is_empty(values.get(name)):
            check_link(wf, name, str(values[name]), read or _no_reader, actor, ref=ref, state=state, trigger=t.name)


#: how many linked cases one step may act on in a row (the step's own case not counted)
MAX_DEPTH = 3


@dataclass(frozen=True)
class Link:
    """A step whose ``then:`` acts on another case: the cause recorded on the linked case's event."""

    workflow: str
    ref: str
    trigger: str

    def __str__(self) -> str:
        return f"{self.workflow} {self.ref} {self.trigger}"


# the steps of the chain being followed, outermost first, and the comment the linked step was given before its
# cause was added (a then: on a linked step runs inside follow(), and passes on that text, not the cause)
_CHAIN: ContextVar[tuple[tuple[Link, ...], str | None]] = ContextVar("casework_linked_chain", default=((), None))


def follow(
    steps: Steps,
    conn: Connection,
    wf: WorkflowDef,
    case: CaseRow,
    trigger: str,
    actor: Actor,
    comment: str | None,
) -> None:
    """Take the ``then:`` step of ``trigger`` (if it has one) on the linked case, in ``conn``'s transaction.

    ``case`` is the case as the step wrote it (its data is what the link is
    read from); ``comment`` is the step's own. Raises the linked step's
    refusal (with ``linked_from``), or :data:`Code.LINKED_CASE_NOT_FOUND` /
    :data:`Code.LINKED_CHAIN`; the caller must then roll its transaction back.
    """
    then = wf.transitions[trigger].then
    if then is None:
        return
    cause = Link(wf.name, case.ref, trigger)
    outer, given = _CHAIN.get()
    if outer:
        comment = given  # this step is itself a linked one: its comment without the cause
    chain = (*outer, cause)
    linked = _linked_ref(wf, case, trigger, then)
    row = read_case(conn, linked)
    if row is None:
        raise _not_found(wf, case, trigger, then, f"but no case is {linked!r}: correct the reference first", linked)
    looped = linked in {link.ref for link in chain}
    if looped or len(chain) > MAX_DEPTH:
        steps_taken = [str(link) for link in chain]
        why = (
            f"comes back to {linked}, which it already acted on"
            if looped
            else f"would go more than {MAX_DEPTH} cases deep"
        )
        raise TransitionRefused(
            f"{trigger} on {case.ref} would take {then.fire} on {linked}, but the chain of linked steps "
            f"({' → '.join(steps_taken)}) {why}; the workflows' then: steps must not loop",
            code=Code.LINKED_CHAIN,
            ref=case.ref,
            trigger=trigger,
            linked_case=linked,
            chain=steps_taken,
            limit=MAX_DEPTH,
        )
    target = steps.catalog.get(conn, row.workflow_version_id).definition.transitions.get(then.fire)
    text = then.comment or comment
    # a step that needs a comment is refused without one (in its own order of checks), not given the cause as one
    said = None if text is None and target is not None and target.comment_required else linked_comment(text, cause)
    token = _CHAIN.set((chain, text))
    try:
        steps.fire(conn, linked, then.fire, actor, said, None, VersionPin())
    except RefusedError as exc:
        raise _refused(exc, cause, then, linked) from exc
    finally:
        _CHAIN.reset(token)


def linked_comment(text: str | None, cause: Link) -> str:
    """The linked step's comment: the text given, then what caused it."""
    return f"{text} — by {cause}" if text else f"by {cause}"


def _linked_ref(wf: WorkflowDef, case: CaseRow, trigger: str, then: ThenDef) -> str:
    value = case.data.get(then.case)
    linked = str(value).strip() if value is not None else ""
    if not linked:
        raise _not_found(wf, case, trigger, then, "which is empty: fill in that case's reference first", None)
    return linked


def _not_found(
    wf: WorkflowDef, case: CaseRow, trigger: str, then: ThenDef, why: str, linked: str | None
) -> TransitionRefused:
    """:data:`Code.LINKED_CASE_NOT_FOUND`: the field ``then.case`` names no case (``why`` says how)."""
    facts: dict[str, str] = {"linked_case": linked} if linked is not None else {}
    return TransitionRefused(
        f"{trigger} on {case.ref} also takes {then.fire} on the case in {then.case} "
        f"({wf.fields[then.case].label}), {why}",
        code=Code.LINKED_CASE_NOT_FOUND,
        ref=case.ref,
        trigger=trigger,
        field=then.case,
        **facts,
    )


def _refused(exc: RefusedError, cause: Link, then: ThenDef, linked: str) -> RefusedError:
    """The linked step's refusal, of the same class and code, saying which step took it and that nothing changed."""
    message = (
        f"{cause.trigger} on {cause.ref} also takes {then.fire} on {linked} (its {then.case}), which was refused, "
        f"so neither was done: {exc.message}"
    )
    facts: dict[str, Any] = dict(exc.facts)
    if LINKED_FROM not in facts and LINKED_FROM in CODES[exc.code].facts:
        # the innermost cause is kept: the step that the refused one was taken by
        facts[LINKED_FROM] = {
            "case": cause.ref,
            "workflow": cause.workflow,
            "trigger": cause.trigger,
            "field": then.case,
        }
    # a copy of the same class (every attribute kept), so callers branching on the class still can
    clone = type(exc).__new__(type(exc))
    clone.__dict__.update(exc.__dict__)
    clone.args = (message,)
    clone.message = message
    clone.facts = facts
    return clone
