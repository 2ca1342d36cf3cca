"""Opening cases: one plan, whether one case is opened, a file of them imported, or a campaign run.

:func:`plan_opening` checks a case to open — its data, the opener's role
and scope — and returns what its rows need, without touching the database.
:func:`write_openings` writes any number of planned cases in the caller's
transaction: consecutive references, the case rows, their first audit
events, their unique keys and their initial state's timers, each with one
statement per table. A single create is a batch of one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from engine.access import DATA_ENTRY, Actor, check_scope, opening_role
from engine.audit import GENESIS, Event, Recorder
from engine.calendar import Deadline
from engine.catalog import Loaded
from engine.compute import OPENED, compute_fields
from engine.deadlines import Deadlines
from engine.definition import WorkflowDef
from engine.errors import FieldProblem, InvalidCaseData
from engine.fields import is_empty
from engine.links import LinkReader, fill_links
from engine.rules import merge_data
from engine.store import keys as key_store, tables
from engine.store.cases import insert_cases
from engine.store.keys import Holder
from engine.store.refs import allocate_refs, format_ref
from engine.store.tables import CaseRow
from engine.store.writes import insert_rows

__all__ = [
    "KeyClash",
    "Opened",
    "Planned",
    "opening_event",
    "opening_row",
    "plan_opening",
    "unique_clashes",
    "workflow_pin",
    "write_openings",
]


@dataclass(frozen=True)
class Planned:
    """A case ready to open: checked data, its scope, and who opens it in which role."""

    values: dict[str, Any]
    scope: str | None
    actor: str
    role: str


@dataclass(frozen=True)
class Opened:
    """A case as written: its id and the values of its row (:meth:`row` makes the typed row)."""

    id: int
    values: dict[str, Any]

    @property
    def ref(self) -> str:
        """The case's reference."""
        return str(self.values["ref"])

    def row(self) -> CaseRow:
        """The case's row as written."""
        return CaseRow(id=self.id, paused_at=None, paused_left=None, **self.values)


class KeyClash(Exception):
    """A unique value was taken by a case opened while these were being written (nothing of the batch is)."""


def plan_opening(
    wf: WorkflowDef,
    user: Actor,
    data: Mapping[str, Any],
    now: dt.datetime,
    role: str | None = None,
    links: LinkReader | None = None,
) -> Planned:
    """Check a case of ``wf`` that ``user`` wants to open with ``data``.

    Checks, in order: the data (every field), the linked cases its ``link:``
    fields name (found with ``links``, their ``fill`` fields copied in), the
    user's right to open one (a role acting in the initial state; ``role`` if
    already known), the scope field (given or filled, and covered by the
    user's scopes: a linked case's county is no way around the opener's).
    """
    values, _ = merge_data(wf, {}, data, now)
    if wf.linked_fields:
        values = fill_links(wf, {}, values, data, now, links, user)
    values, _ = compute_fields(wf, OPENED, values)  # recorded with the opening values, like typed ones
    role = role or opening_role(wf, user)
    scope = None
    if wf.scope_field:
        scope = values.get(wf.scope_field)
        if scope is None:
            raise InvalidCaseData(
                [FieldProblem(wf.scope_field, "is needed to open a case: it decides who may see it", "required")]
            )
        check_scope(user, None, scope)
    return Planned(values, scope, user.username, role)


def unique_clashes(conn: Connection, wf: WorkflowDef, planned: Sequence[Planned]) -> list[tuple[int, str, Holder]]:
    """(index in ``planned``, field, the case holding it) for every unique value already taken."""
    out = []
    for name in wf.unique_fields:
        index = {str(p.values[name]): i for i, p in enumerate(planned) if p.values.get(name) is not None}
        for found in key_store.holders(conn, wf.name, name, list(index)):
            out.append((index[found.value], name, found))
    return sorted(out)


def opening_event(wf: WorkflowDef, planned: Planned, ref: str, at: dt.datetime, recorder: Recorder) -> Event:
    """The first event of the case's audit trail: created, with every value given and the workflow version."""
    changes = {k: [None, v] for k, v in planned.values.items() if not is_empty(v)}
    context = recorder.context(workflow=workflow_pin(wf))
    return Event(
        ref,
        1,
        at,
        planned.actor,
        planned.role,
        "created",
        None,
        None,
        wf.initial_state,
        None,
        changes,
        GENESIS,
        context,
    )


def workflow_pin(wf: WorkflowDef) -> dict[str, Any]:
    """The workflow version a case is opened on, as its first event records it."""
    return {"name": wf.name, "version": wf.version, "source_hash": wf.source_hash}


def opening_row(
    wf: WorkflowDef, version_id: int, planned: Planned, event: Event, deadline: Deadline | None, seal: str | None
) -> dict[str, Any]:
    """The new case's row (without its id), at its first event."""
    return {
        "ref": event.ref,
        "workflow": wf.name,
        "workflow_version_id": version_id,
        "state": wf.initial_state,
        "scope": planned.scope,
        "data": planned.values,
        "fired_by": {DATA_ENTRY: [planned.actor]},  # the opener entered the data (four-eyes)
        "version": 1,
        "audit_seq": 1,
        "audit_head": event.hash,
        "entered_at": event.at,
        "deadline_at": deadline.at.astimezone(dt.UTC) if deadline else None,
        "deadline_provisional": bool(deadline and deadline.provisional),
        "created_by": planned.actor,
        "created_at": event.at,
        "updated_at": event.at,
        "audit_seal": seal,
    }


def write_openings(
    conn: Connection,
    loaded: Loaded,
    planned: Sequence[Planned],
    now: dt.datetime,
    deadlines: Deadlines,
    recorder: Recorder,
) -> list[Opened]:
    """Write ``planned`` cases (in the caller's transaction), references consecutive in their order.

    Raises :class:`KeyClash` if a unique value turns out taken after all (a
    case opened meanwhile): nothing of the batch is written then.
    """
    if not planned:
        return []
    wf = loaded.definition
    year = now.astimezone(ZoneInfo(wf.timezone)).year
    first = allocate_refs(conn, wf.ref_prefix, year, len(planned))
    deadline, timer_plan = deadlines.plan(wf, wf.initial_state, now)
    rows, events = [], []
    for i, p in enumerate(planned):
        event = opening_event(wf, p, format_ref(wf.ref_prefix, year, first + i), now, recorder)
        events.append(event)
        rows.append(opening_row(wf, loaded.id, p, event, deadline, recorder.seal(event.ref, 1, event.hash)))
    ids = insert_cases(conn, rows)
    insert_rows(conn, tables.events, [e.row(case_id) for e, case_id in zip(events, ids, strict=True)])
    held = [
        {"workflow": wf.name, "field": name, "value": str(p.values[name]), "case_id": case_id}
        for p, case_id in zip(planned, ids, strict=True)
        for name in wf.unique_fields
        if p.values.get(name) is not None
    ]
    if not key_store.claim_keys(conn, held):
        raise KeyClash()
    if timer_plan:
        insert_rows(
            conn, tables.timers, [{**r, "case_id": case_id, "created_at": now} for case_id in ids for r in timer_plan]
        )
    return [Opened(case_id, row) for case_id, row in zip(ids, rows, strict=True)]
