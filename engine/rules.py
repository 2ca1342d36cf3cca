"""The rules of a step: which step, from which state, by whom, with what data, under which condition.

Pure functions over the definition and plain values — no database, no
clock of their own — so every path applies the same checks and each can be
tested alone. Each raises the typed refusal (a :class:`~engine.errors.Code`
and the facts) whose default message says what was wrong and what would be
right; none of them writes anything. A step applies them in the documented
order (``docs/rules.md``): scope, trigger, role, state, four-eyes, comment,
data, required fields, guard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from engine.access import Actor, acting_role, covers, four_eyes_conflict
from engine.compute import computed_from
from engine.definition import WorkflowDef
from engine.definition.model import TransitionDef
from engine.definition.typecheck import snapshot
from engine.errors import (
    Code,
    CommentRequired,
    FieldProblem,
    GuardFailed,
    InvalidCaseData,
    InvalidTransition,
    MissingFields,
    PermissionDenied,
    SameActorForbidden,
)
from engine.expressions import BudgetExceeded, ExpressionError
from engine.fields import check_text, coerce_value, is_empty, shown
from engine.limits import MAX_COMMENT
from engine.suggest import close_match, did_you_mean

__all__ = [
    "check_actor",
    "check_comment",
    "check_ready",
    "clean_comment",
    "clean_text",
    "data_changes",
    "find_transition",
    "merge_data",
    "new_scope",
]


def find_transition(wf: WorkflowDef, ref: str, state: str, trigger: str) -> TransitionDef:
    """The step called ``trigger``; :data:`Code.UNKNOWN_STEP` if the workflow has none."""
    t = wf.transitions.get(trigger)
    if t is None:
        raise InvalidTransition(
            f"{wf.name} has no step {trigger!r}{did_you_mean(trigger, wf.transitions)}",
            code=Code.UNKNOWN_STEP,
            ref=ref,
            state=state,
            trigger=trigger,
            workflow=wf.name,
            suggestion=close_match(trigger, wf.transitions),
        )
    return t


def check_actor(
    wf: WorkflowDef, ref: str, state: str, fired_by: Mapping[str, Sequence[str]], t: TransitionDef, user: Actor
) -> str:
    """The role in which ``user`` takes ``t`` on the case; refuses on role, state or four-eyes."""
    role = acting_role(user.roles, t, system=user.system)
    if role is None:
        needed = " or ".join(r for r in t.by) or "none"
        held = ", ".join(user.roles) or "no role"
        raise PermissionDenied(
            f"{user.username} ({held}) may not {t.name} case {ref}: that step needs role {needed}",
            ref=ref,
            state=state,
            trigger=t.name,
            user=user.username,
            roles=list(user.roles),
            needed=list(t.by),
        )
    if state not in t.sources:
        possible = [x.name for x in wf.transitions_from(state)]
        raise InvalidTransition(
            f"case {ref} is in {state} ({wf.states[state].label}); {t.name} applies only "
            f"from {', '.join(t.sources)}. Possible from {state}: {', '.join(possible) or 'nothing (final)'}",
            code=Code.WRONG_STATE,
            ref=ref,
            state=state,
            trigger=t.name,
            state_label=wf.states[state].label,
            sources=list(t.sources),
            possible=possible,
        )
    earlier = four_eyes_conflict(user.username, t, fired_by)
    if earlier:
        if user.username in fired_by.get(earlier, ()):
            did = f"fired {earlier} on case {ref}"
        else:
            did = f"entered or changed the data of case {ref} before {earlier}"
        raise SameActorForbidden(
            f"{user.username} {did}, so someone else must {t.name} it (four-eyes rule)",
            ref=ref,
            state=state,
            trigger=t.name,
            user=user.username,
            earlier=earlier,
        )
    return role


def check_comment(t: TransitionDef, ref: str, state: str, comment: str | None) -> None:
    """Refuse (:data:`Code.COMMENT_REQUIRED`) a step that needs a comment and has none."""
    if t.comment_required and not comment:
        raise CommentRequired(f"{t.name} needs a comment saying why", ref=ref, state=state, trigger=t.name)


def check_ready(
    wf: WorkflowDef, ref: str, state: str, t: TransitionDef, values: Mapping[str, Any], open_objections: int
) -> None:
    """Refuse unless the fields ``t`` needs are filled in and its ``when``/``unless`` guard lets it through."""
    needed = [*t.require, *(f.name for f in wf.fields.values() if f.required and f.name not in t.require)]
    missing = [f for f in needed if is_empty(values.get(f))]
    if missing:
        labels = {f: wf.fields[f].label for f in missing}
        raise MissingFields(
            f"{t.name} needs {', '.join(f'{f} ({label})' for f, label in labels.items())} filled in first",
            missing,
            labels=labels,
            ref=ref,
            state=state,
            trigger=t.name,
        )
    snapshot = _snapshot(wf, ref, state, values, open_objections)
    for kind, guard in (("when", t.when), ("unless", t.unless)):
        if guard is None:
            continue
        try:
            result = guard.evaluate(snapshot)
        except ExpressionError as exc:  # a BudgetExceeded too
            costly = isinstance(exc, BudgetExceeded)
            raise GuardFailed(
                f"{t.name} refused: its condition '{guard.text}' "
                + (
                    f"is too costly to check ({exc}); the workflow's condition must be simplified"
                    if costly
                    else f"could not be checked ({exc}); fill in the fields it reads"
                ),
                code=Code.GUARD_TOO_COSTLY if costly else Code.GUARD_UNCHECKABLE,
                ref=ref,
                state=state,
                trigger=t.name,
                guard=guard.text,
                error=str(exc),
            ) from None
        why = f": {t.explain}" if t.explain else ""
        if kind == "when" and not result:
            raise GuardFailed(
                f"{t.name} refused{why}: the condition '{guard.text}' is not met",
                ref=ref,
                state=state,
                trigger=t.name,
                guard=guard.text,
                explain=t.explain,
            )
        if kind == "unless" and result:
            raise GuardFailed(
                f"{t.name} is held{why} ('{guard.text}' is true)",
                code=Code.GUARD_HELD,
                ref=ref,
                state=state,
                trigger=t.name,
                guard=guard.text,
                explain=t.explain,
            )


def merge_data(
    wf: WorkflowDef, old: Mapping[str, Any], raw: Mapping[str, Any], now: dt.datetime
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Merge ``raw`` into ``old``; returns (new values, changes old → new) or raises :class:`InvalidCaseData`."""
    today = now.astimezone(ZoneInfo(wf.timezone)).date()
    values = dict(old)
    problems = []
    for name, value in raw.items():
        field = wf.fields.get(name)
        if field is None:
            # the name is the caller's text: quoted with control characters escaped, and cut short
            label = name if name.isprintable() and len(name) <= 63 else shown(name)
            problems.append(
                FieldProblem(label, f"no such field in {wf.name}{did_you_mean(name, wf.fields)}", "unknown_field")
            )
            continue
        if field.compute is not None:
            # worked out by the engine (engine.compute) on every path: open, import, edit, step, bulk step
            problems.append(FieldProblem(name, f"is computed {computed_from(field)}; it cannot be typed", "computed"))
            continue
        try:
            values[name] = coerce_value(field, value, today)
        except ValueError as exc:
            problems.append(FieldProblem.of(name, exc))
    if problems:
        raise InvalidCaseData(problems)
    values = {k: v for k, v in values.items() if v is not None}
    return values, data_changes(wf, old, values)


def data_changes(wf: WorkflowDef, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each field whose value differs, old → new, in the workflow's field order (as an event records them)."""
    return {k: [old.get(k), new.get(k)] for k in wf.fields if old.get(k) != new.get(k)}


def new_scope(
    wf: WorkflowDef, values: Mapping[str, Any], user: Actor, ref: str, state: str, scope: str | None
) -> str | None:
    """The case's scope after a change to ``values``; moving it needs a user who covers the new one."""
    if not wf.scope_field:
        return None
    after = values.get(wf.scope_field)
    if after is None:
        raise InvalidCaseData(
            [FieldProblem(wf.scope_field, "cannot be cleared: it decides who may see the case", "required")]
        )
    if after != scope and not covers(user.scopes, after):
        raise PermissionDenied(
            f"{user.username} does not cover {after}; moving case {ref} there needs someone who does",
            code=Code.SCOPE_NOT_COVERED,
            ref=ref,
            state=state,
            user=user.username,
            scopes=list(user.scopes),
            scope=after,
        )
    return str(after)


def clean_text(name: str, text: str | None, limit: int = MAX_COMMENT) -> str | None:
    """Free text (a comment, a reason, an objection): at most ``limit`` characters, as :func:`check_text` keeps it.

    Such text may run to several lines; anything else :func:`~engine.fields.check_text`
    refuses (a tab, ESC, ZWSP …) is refused here, named with its position.
    """
    if text is None:
        return None
    try:
        text = check_text(text, multiline=True)
    except ValueError as exc:
        raise InvalidCaseData([FieldProblem.of(name, exc)]) from None
    if len(text) > limit:
        raise InvalidCaseData(
            [
                FieldProblem(
                    name, f"is {len(text)} characters; at most {limit}", "too_long", {"length": len(text), "max": limit}
                )
            ]
        )
    return text or None


def clean_comment(comment: str | None) -> str | None:
    """A step's comment, checked (see :func:`clean_text`); None if blank."""
    return clean_text("comment", comment)


def _snapshot(wf: WorkflowDef, ref: str, state: str, values: Mapping[str, Any], open_objections: int) -> dict[str, Any]:
    # the same function the type check runs guards through when the workflow loads (an empty checklist is [])
    return snapshot(wf.fields, ref, state, values, open_objections)
