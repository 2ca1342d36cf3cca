"""Steps on one case: plan a step or an edit by the rules, then apply it in the caller's transaction.

:class:`Steps` is the part every change of a single case goes through — a
clerk's step, the scheduler's automatic step, an upheld objection's return
to review, an edit of the case's data, and the notes (objections, pauses,
notices) that change nothing but the trail. It reads the case once
(:func:`engine.store.cases.read_step`), decides with :mod:`engine.rules`,
computes the rows with :func:`engine.changes.plan_change` and writes them
with :func:`engine.store.writes.write_change`. Transactions belong to the
caller (the :class:`~engine.service.Casework` façade or another part).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection

from engine import links, quotas
from engine.access import (
    Actor,
    Person,
    check_edit,
    check_scope,
    covers,
    four_eyes_facts,
    with_data_entry,
    with_fired,
)
from engine.acting import narrowed
from engine.audit import Recorder
from engine.caseview import case_view
from engine.catalog import Catalog, Loaded
from engine.changes import Change, note, plan_change
from engine.clock import Clock
from engine.compute import EDITED, compute_fields
from engine.deadlines import Deadlines
from engine.definition import WorkflowDef
from engine.errors import (
    CaseNotFound,
    Code,
    DuplicateCase,
    InvalidCaseData,
    InvalidTransition,
    PermissionDenied,
    TransitionRefused,
    UserNotFound,
)
from engine.machine import move
from engine.models import Action, CaseView
from engine.publication import check_publicity_exit
from engine.rules import check_actor, check_comment, check_ready, data_changes, find_transition, merge_data, new_scope
from engine.store import audit as audit_store, keys as key_store
from engine.store.cases import StepRead, read_case, read_step
from engine.store.database import VersionPin
from engine.store.tables import CaseRow
from engine.store.writes import ChangeRows, write_change
from engine.users import find_actor, refuse_system

__all__ = ["Planned", "Steps", "TrailFacts"]

#: case id → who fired each trigger and who entered the data, as the case's audit trail proves it
TrailFacts = Callable[[int], Mapping[str, Sequence[str]]]

Planned = tuple[ChangeRows, CaseRow, dict[str, Any]]


class Steps:
    """Plan and apply steps, edits and notes on single cases.

    Args:
        catalog: where a case's workflow version comes from.
        deadlines: the calendar the new state's deadline and timers are counted on.
        clock: what "now" is.
        recorder: the origin every event carries and the key sealing trail heads.
    """

    def __init__(self, catalog: Catalog, deadlines: Deadlines, clock: Clock, recorder: Recorder) -> None:
        self.catalog = catalog
        self.deadlines = deadlines
        self.clock = clock
        self.recorder = recorder

    # ------------------------------------------------------------------ reading

    def read(self, conn: Connection, ref: str, user: str | Actor) -> tuple[StepRead, Actor]:
        """The case with what a step needs, and the actor; refuses an unknown user or case and a scope not covered.

        An unknown user is reported before an unknown case, and a case outside
        the user's scope is refused before anything else is said about it.
        """
        username = user if isinstance(user, str) else None
        if username is not None:
            refuse_system(username)
            if "\x00" in username:
                raise UserNotFound(username)  # no such name can exist (PostgreSQL refuses NUL in text)
        found = read_step(conn, ref, username)
        if found is None:
            if username is not None:
                find_actor(conn, username)
            raise CaseNotFound(ref)
        # read with the case in one statement, so narrowed here as find_actor narrows (an API token's limits)
        actor = user if isinstance(user, Actor) else narrowed(found.actor) if found.actor is not None else None
        if actor is None:
            find_actor(conn, str(username))  # refuses a disabled user, saying so
            raise UserNotFound(str(username))
        check_scope(actor, ref, found.case.scope)
        return found, actor

    def case(self, conn: Connection, ref: str, user: Actor | None) -> CaseRow:
        """The case ``ref`` (seen by ``user``, if given: scope checked)."""
        row = read_case(conn, ref)
        if row is None:
            raise CaseNotFound(ref)
        if user is not None:
            check_scope(user, ref, row.scope)
        return row

    def view(self, wf: WorkflowDef, row: CaseRow, actions: tuple[Action, ...] | None = None) -> CaseView:
        """The case as shown now."""
        return case_view(wf, row, self.clock.now(), self.deadlines, actions)

    # ------------------------------------------------------------------ steps

    def fire(
        self,
        conn: Connection,
        ref: str,
        trigger: str,
        user: str | Actor,
        comment: str | None,
        data: Mapping[str, Any] | None,
        pin: VersionPin,
        before: Callable[[CaseRow], None] | None = None,
    ) -> CaseView:
        """The whole of one step inside the caller's transaction (see :meth:`engine.Casework.fire`).

        ``user`` is a username to look up, or an :class:`Actor` already known
        (the scheduler, an objection's resolver). ``before`` runs once the
        step's own checks pass and before its guard is evaluated (an upheld
        objection closes itself there, so the guard sees it closed).
        """
        found, actor = self.read(conn, ref, user)
        case = found.case
        seen = pin.hold(case.ref, case.version)
        loaded = self.catalog.get(conn, case.workflow_version_id)
        change, written, values = self.plan_fire(
            loaded,
            case,
            found.open_objections,
            found.directory,
            actor,
            trigger,
            comment,
            data,
            seen,
            self.clock.now(),
            lambda case_id: four_eyes_facts(audit_store.data_events(conn, [case_id])[case_id]),
            before,
            links.link_reader(conn, self.catalog) if loaded.definition.linked_fields else None,
        )
        # limits across cases: checked on the data as the step leaves it, recorded with the step
        counted = quotas.check_step(conn, loaded.definition, case, trigger, values, written)
        write_change(conn, change)
        quotas.record_step(conn, counted, written)
        wf = loaded.definition
        if wf.states[written.state].void:
            # the archive came to nothing: its ID number may be filed again
            key_store.release_keys(conn, [case.id])
        else:
            self.claim_keys(conn, wf, case.id, case.data, values, actor)
        # a then: step on a linked case, in this transaction: its refusal undoes this step too
        links.follow(self, conn, wf, written, trigger, actor, comment)
        return self.view(wf, written)

    def plan_fire(
        self,
        loaded: Loaded,
        case: CaseRow,
        open_objections: int,
        people: Sequence[Person],
        user: Actor,
        trigger: str,
        comment: str | None,
        data: Mapping[str, Any] | None,
        seen_version: int,
        now: dt.datetime,
        trail: TrailFacts,
        before: Callable[[CaseRow], None] | None = None,
        read: links.LinkReader | None = None,
    ) -> Planned:
        """Every check of one step, then what it would write: (rows, the case as written, its data).

        Nothing is written here, so a bulk caller can batch the writes of many steps.
        ``trail(case_id)`` gives what the four-eyes rule reads, replayed from the
        case's audit trail (asked only for a step with a ``not_by``): a
        ``fired_by`` column changed behind the engine's back lifts nothing.
        ``read`` finds the cases the workflow's ``link:`` fields name (needed
        only if it has some: to fill them when given, and at a step requiring one).
        """
        wf = loaded.definition
        ref, state = case.ref, case.state
        t = find_transition(wf, ref, state, trigger)
        facts = trail(case.id) if t.not_by else case.fired_by
        role = check_actor(wf, ref, state, facts, t, user)
        check_publicity_exit(wf, case, t, now)  # 公示: not out before the published period is over
        check_comment(t, ref, state, comment)
        values, changes = merge_data(wf, case.data, data or {}, now)
        if changes:
            # data given with a step is an edit in the state the step leaves
            check_edit(wf, ref, state, user, list(changes), trigger)
        if wf.linked_fields:
            # a link given with the step fills its fields (the editor's right to the link covers them)
            values = links.fill_links(
                wf, case.data, values, data or {}, now, read, user, ref=ref, state=state, trigger=trigger
            )
            changes = data_changes(wf, case.data, values)
        if before is not None:
            before(case)
        if wf.computed_fields:
            # computed at this step (and first as an edit, if data came with it): recorded with the step,
            # so the trail replays them
            for moment in (EDITED, trigger) if changes else (trigger,):
                values, _ = compute_fields(wf, moment, values)
            changes = data_changes(wf, case.data, values)
        check_ready(wf, ref, state, t, values, open_objections)
        if wf.linked_fields:
            # the linked case must still qualify at a step that requires its link (an archive that exited
            # since the application blocks the grant)
            links.recheck_links(wf, t, values, read, user, ref=ref, state=state)
        dest = move(loaded.machine, state, trigger)
        if dest is None:  # pragma: no cover - check_actor already checked the source
            raise InvalidTransition(f"{trigger} cannot be fired from {state}", ref=ref, state=state, trigger=trigger)
        fired_by = with_fired(facts, trigger, user.username, edited=bool(changes))
        decided = Change(
            actor=user.username,
            role=role,
            action="fired",
            to_state=dest,
            data=values,
            changes=changes,
            scope=new_scope(wf, values, user, ref, state, case.scope),
            fired_by=fired_by,
            trigger=trigger,
            comment=comment,
        )
        rows, written = plan_change(wf, case, decided, seen_version, now, self.deadlines, people, self.recorder)
        return rows, written, values

    def actions(self, wf: WorkflowDef, case: CaseRow, open_objections: int, user: Actor) -> tuple[Action, ...]:
        """The steps ``user`` may take on the case now (every rule but the comment, which they would give)."""
        found = []
        now = self.clock.now()
        for t in wf.transitions_from(case.state):
            try:
                check_actor(wf, case.ref, case.state, case.fired_by, t, user)
                check_publicity_exit(wf, case, t, now)
                values = compute_fields(wf, t.name, case.data)[0] if wf.computed_fields else case.data
                check_ready(wf, case.ref, case.state, t, values, open_objections)
            except (TransitionRefused, InvalidCaseData):  # a value that cannot be computed refuses the step
                continue
            found.append(Action(trigger=t.name, label=t.label, to=t.dest, comment_required=t.comment_required))
        return tuple(found)

    # ------------------------------------------------------------------ edits

    def update(self, conn: Connection, ref: str, username: str, data: Mapping[str, Any], pin: VersionPin) -> CaseView:
        """Change case data; audited with old → new. No change, no event.

        Each changed field must be one the user's roles may change in the
        case's state (its ``edit:``; by default the initial state only, by the
        roles acting there), with a scope covering the case (before and
        after). The editor is recorded for the four-eyes rule.
        """
        user = find_actor(conn, username)
        case = self.case(conn, ref, user)
        seen = pin.hold(case.ref, case.version)
        loaded = self.catalog.get(conn, case.workflow_version_id)
        wf = loaded.definition
        state = wf.states[case.state]
        if state.final:
            raise PermissionDenied(
                f"case {ref} is {state.label} ({case.state}), a final state; its data can no longer be edited",
                code=Code.FINAL_STATE,
                ref=ref,
                state=case.state,
            )
        now = self.clock.now()
        values, changes = merge_data(wf, case.data, data, now)
        if not changes:
            return self.view(wf, case)
        role = check_edit(wf, ref, case.state, user, list(changes))
        if wf.linked_fields:
            values = links.fill_links(
                wf, case.data, values, data, now, links.link_reader(conn, self.catalog), user, ref=ref, state=case.state
            )
        if wf.computed_fields or wf.linked_fields:
            # fields computed when the data is edited follow it (the editor's right covers the typed fields)
            values, _ = compute_fields(wf, EDITED, values)
            changes = data_changes(wf, case.data, values)
        decided = Change(
            actor=username,
            role=role,
            action="updated",
            to_state=case.state,
            data=values,
            changes=changes,
            scope=new_scope(wf, values, user, ref, case.state, case.scope),
            fired_by=with_data_entry(case.fired_by, username),
        )
        rows, written = plan_change(wf, case, decided, seen, now, self.deadlines, (), self.recorder)
        write_change(conn, rows)
        self.claim_keys(conn, wf, case.id, case.data, values, user)
        return self.view(wf, written)

    def note(
        self,
        conn: Connection,
        wf: WorkflowDef,
        case: CaseRow,
        seen_version: int,
        now: dt.datetime,
        *,
        actor: str,
        role: str | None,
        action: str,
        comment: str | None,
        changes: dict[str, list[Any]],
        extra: Mapping[str, Any] | None = None,
    ) -> CaseRow:
        """Append an event that changes no state or data (an objection, a pause, a notice) — version-checked."""
        decided = note(case, actor=actor, role=role, action=action, comment=comment, changes=changes, extra=extra)
        rows, written = plan_change(wf, case, decided, seen_version, now, self.deadlines, (), self.recorder)
        write_change(conn, rows)
        return written

    @staticmethod
    def claim_keys(
        conn: Connection, wf: WorkflowDef, case_id: int, old: Mapping[str, Any], new: Mapping[str, Any], user: Actor
    ) -> None:
        """Move the case's unique keys from its old values to its new ones; :class:`DuplicateCase` if one is taken.

        The case holding a taken value is named only if ``user`` covers its scope.
        """
        for name in wf.unique_fields:
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            if before is not None:
                key_store.release_keys(conn, [case_id], name)
            if after is None:
                continue
            holder = key_store.holder(conn, wf.name, name, str(after))
            if holder is not None:
                raise DuplicateCase.held(name, holder.ref, holder.state, visible=covers(user.scopes, holder.scope))
            row = {"workflow": wf.name, "field": name, "value": str(after), "case_id": case_id}
            if not key_store.claim_keys(conn, [row]):
                # a concurrent case claimed it between our check and our insert
                raise DuplicateCase(name, None, None)
