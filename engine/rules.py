"""The rules of a step: trigger, role, state, four-eyes, data, required fields, guards.

Part of the :class:`engine.Casework` service (mixed in). Each check raises
the typed refusal whose message says what was wrong and what would be right;
none of them writes anything. :meth:`Casework.fire` applies them in the
documented order (README, "Rules the engine enforces").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from engine.access import acting_role, covers, four_eyes_conflict
from engine.definition import WorkflowDef
from engine.definition.model import TransitionDef
from engine.errors import (
    FieldProblem,
    GuardFailed,
    InvalidCaseData,
    InvalidTransition,
    MissingFields,
    PermissionDenied,
    SameActorForbidden,
)
from engine.expressions import ExpressionError
from engine.fields import coerce_value, is_empty, shown
from engine.suggest import did_you_mean

if TYPE_CHECKING:
    from engine.access import Actor

__all__ = ["MAX_COMMENT", "RulesMixin", "clean_comment"]

MAX_COMMENT = 2000


class RulesMixin:
    """The checks of a step; mixed into :class:`engine.Casework`."""

    @staticmethod
    def _transition(wf: WorkflowDef, row: Any, trigger: str) -> TransitionDef:
        t = wf.transitions.get(trigger)
        if t is None:
            raise InvalidTransition(
                f"{wf.name} has no step {trigger!r}{did_you_mean(trigger, wf.transitions)}",
                ref=row.ref,
                state=row.state,
                trigger=trigger,
            )
        return t

    @staticmethod
    def _check_actor(wf: WorkflowDef, row: Any, t: TransitionDef, user: Actor) -> str:
        role = acting_role(user.roles, t, system=user.system)
        if role is None:
            needed = " or ".join(r for r in t.by) or "none"
            held = ", ".join(user.roles) or "no role"
            raise PermissionDenied(
                f"{user.username} ({held}) may not {t.name} case {row.ref}: that step needs role {needed}",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        if row.state not in t.sources:
            possible = [x.name for x in wf.transitions_from(row.state)]
            raise InvalidTransition(
                f"case {row.ref} is in {row.state} ({wf.states[row.state].label}); {t.name} applies only "
                f"from {', '.join(t.sources)}. Possible from {row.state}: {', '.join(possible) or 'nothing (final)'}",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        earlier = four_eyes_conflict(user.username, t, row.fired_by)
        if earlier:
            raise SameActorForbidden(
                f"{user.username} fired {earlier} on case {row.ref}, so someone else must {t.name} it (four-eyes rule)",
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        return role

    @staticmethod
    def _check_ready(
        wf: WorkflowDef, row: Any, t: TransitionDef, values: Mapping[str, Any], open_objections: int
    ) -> None:
        needed = [*t.require, *(f.name for f in wf.fields.values() if f.required and f.name not in t.require)]
        missing = [f for f in needed if is_empty(values.get(f))]
        if missing:
            labels = ", ".join(f"{f} ({wf.fields[f].label})" for f in missing)
            raise MissingFields(
                f"{t.name} needs {labels} filled in first; set them with --set FIELD=VALUE",
                missing,
                ref=row.ref,
                state=row.state,
                trigger=t.name,
            )
        snapshot = _snapshot(wf, row, values, open_objections)
        for kind, guard in (("when", t.when), ("unless", t.unless)):
            if guard is None:
                continue
            try:
                result = guard.evaluate(snapshot)
            except ExpressionError as exc:
                raise GuardFailed(
                    f"{t.name} refused: its condition '{guard.text}' could not be checked ({exc}); "
                    "fill in the fields it reads",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                ) from None
            why = f": {t.explain}" if t.explain else ""
            if kind == "when" and not result:
                raise GuardFailed(
                    f"{t.name} refused{why}: the condition '{guard.text}' is not met",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                )
            if kind == "unless" and result:
                raise GuardFailed(
                    f"{t.name} is held{why} ('{guard.text}' is true)",
                    ref=row.ref,
                    state=row.state,
                    trigger=t.name,
                )

    def _validate(
        self, wf: WorkflowDef, old: Mapping[str, Any], raw: Mapping[str, Any], now: dt.datetime
    ) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        """Merge ``raw`` into ``old``; returns (new values, changes old → new) or raises InvalidCaseData."""
        today = now.astimezone(ZoneInfo(wf.timezone)).date()
        values = dict(old)
        problems = []
        for name, value in raw.items():
            field = wf.fields.get(name)
            if field is None:
                # the name is the caller's text: quoted with control characters escaped, and cut short
                label = name if name.isprintable() and len(name) <= 63 else shown(name)
                problems.append(FieldProblem(label, f"no such field in {wf.name}{did_you_mean(name, wf.fields)}"))
                continue
            try:
                values[name] = coerce_value(field, value, today)
            except ValueError as exc:
                problems.append(FieldProblem(name, str(exc)))
        if problems:
            raise InvalidCaseData(problems)
        values = {k: v for k, v in values.items() if v is not None}
        changes = {
            k: [old.get(k), values.get(k)]
            for k in sorted(set(old) | set(values), key=list(wf.fields).index)
            if old.get(k) != values.get(k)
        }
        return values, changes

    @staticmethod
    def _new_scope(wf: WorkflowDef, values: Mapping[str, Any], user: Actor, row: Any) -> str | None:
        if not wf.scope_field:
            return None
        scope = values.get(wf.scope_field)
        if scope is None:
            raise InvalidCaseData([FieldProblem(wf.scope_field, "cannot be cleared: it decides who may see the case")])
        if scope != row.scope and not covers(user.scopes, scope):
            raise PermissionDenied(
                f"{user.username} does not cover {scope}; moving case {row.ref} there needs someone who does",
                ref=row.ref,
                state=row.state,
            )
        return scope


def _snapshot(wf: WorkflowDef, row: Any, values: Mapping[str, Any], open_objections: int) -> dict[str, Any]:
    snap: dict[str, Any] = dict.fromkeys(wf.fields)
    for name, value in values.items():
        kind = wf.fields[name].type if name in wf.fields else None
        if kind == "decimal" and value is not None:
            value = Decimal(value)
        elif kind == "date" and value is not None:
            value = dt.date.fromisoformat(value)
        snap[name] = value
    snap.update(state=row.state, ref=row.ref, open_objections=open_objections)
    return snap


def clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise InvalidCaseData([FieldProblem("comment", f"is {len(comment)} characters; at most {MAX_COMMENT}")])
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in comment):
        raise InvalidCaseData([FieldProblem("comment", "contains control characters; remove them")])
    return comment or None
