"""One change to a case, decided: the rows it writes and the case as it will be.

Every change — a step, an edit, an objection noted, a pause, a notice linked
— appends one audit event and updates the case row; entering a new state
also replaces the state's timers and may queue notifications. :func:`plan_change`
computes all of that from the case as read and the :class:`Change` decided
by the rules, without touching the database, so a single step and a bulk
step of a thousand cases write exactly the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.access import Person
from engine.audit import Event, Recorder
from engine.deadlines import Deadlines, has_timers
from engine.definition import WorkflowDef
from engine.outbox import event_messages
from engine.store.tables import CaseRow
from engine.store.writes import ChangeRows

__all__ = ["Change", "note", "plan_change"]


@dataclass(frozen=True)
class Change:
    """What happens to a case, as the rules decided it.

    ``trigger`` is set for a step (which may notify); ``to_state`` equals the
    case's state for a change that moves nothing. ``extra`` are further case
    columns to set (a pause's ``paused_at``, a recomputed deadline).
    """

    actor: str
    role: str | None
    action: str
    to_state: str
    data: dict[str, Any]
    changes: dict[str, list[Any]]
    scope: str | None
    fired_by: dict[str, list[str]]
    trigger: str | None = None
    comment: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def note(
    case: CaseRow,
    *,
    actor: str,
    role: str | None,
    action: str,
    comment: str | None,
    changes: dict[str, list[Any]],
    extra: Mapping[str, Any] | None = None,
) -> Change:
    """A change that moves nothing and edits no data: an objection, a pause, a notice linked into the trail."""
    return Change(
        actor=actor,
        role=role,
        action=action,
        to_state=case.state,
        data=case.data,
        changes=changes,
        scope=case.scope,
        fired_by=case.fired_by,
        comment=comment,
        extra=extra or {},
    )


def plan_change(
    wf: WorkflowDef,
    case: CaseRow,
    change: Change,
    seen_version: int,
    now: dt.datetime,
    deadlines: Deadlines,
    people: Sequence[Person],
    recorder: Recorder,
) -> tuple[ChangeRows, CaseRow]:
    """The rows ``change`` writes (version-checked against ``seen_version``), and the case as written.

    ``recorder`` puts this process's origin into the event and seals the new trail head.
    """
    values: dict[str, Any] = dict(change.extra)
    timers: list[dict[str, Any]] = []
    cancel = False
    to_state = change.to_state
    entering = to_state != case.state
    if entering:
        # a new state: its deadline and timers replace the old state's, in this transaction
        deadline, planned = deadlines.plan(wf, to_state, now)
        timers = [{**r, "case_id": case.id, "created_at": now} for r in planned]
        # timers only ever come from the state's own deadline/remind/escalate/timeout:
        # a state without any has nothing pending to cancel
        cancel = has_timers(wf.states[case.state])
        values.update(
            deadline_at=deadline.at.astimezone(dt.UTC) if deadline else None,
            deadline_provisional=bool(deadline and deadline.provisional),
            paused_at=None,
            paused_left=None,
        )
    event = Event(
        case.ref,
        case.audit_seq + 1,
        now,
        change.actor,
        change.role,
        change.action,
        change.trigger,
        case.state,
        to_state,
        change.comment,
        change.changes,
        case.audit_head,
        recorder.context(),
    )
    values.update(
        state=to_state,
        data=change.data,
        scope=change.scope,
        fired_by=change.fired_by,
        audit_seq=event.seq,
        audit_head=event.hash,
        audit_seal=recorder.seal(case.ref, event.seq, event.hash),
        entered_at=now if entering else case.entered_at,
        updated_at=now,
    )
    outbox: list[dict[str, Any]] = []
    if change.trigger is not None:
        outbox = event_messages(
            wf,
            version_id=case.workflow_version_id,
            case_id=case.id,
            ref=case.ref,
            scope=change.scope,
            data=change.data,
            seq=event.seq,
            trigger=change.trigger,
            from_state=case.state,
            to_state=to_state,
            actor=change.actor,
            now=now,
            people=people,
        )
    rows = ChangeRows(case.ref, case.id, seen_version, values, event.row(case.id), cancel, timers, outbox)
    # once written, the row matched version == seen_version, so it is one more: no need to read it back
    return rows, case._replace(**values, version=case.version + 1)
