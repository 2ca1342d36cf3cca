"""One case acting on another: a transition's ``then:`` takes a step on a linked case, in the same transaction.

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

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from engine.access import Actor
from engine.definition import WorkflowDef
from engine.definition.model import ThenDef
from engine.errors import CODES, LINKED_FROM, Code, RefusedError, TransitionRefused
from engine.store.cases import read_case
from engine.store.database import VersionPin
from engine.store.tables import CaseRow

if TYPE_CHECKING:
    from engine.steps import Steps

__all__ = ["MAX_DEPTH", "follow"]

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
