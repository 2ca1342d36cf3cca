"""A case's deadline clock: pausing it while materials are missing (补正), resuming it, recomputing it.

Pausing stops the clock of the case's current state: the working time left
is kept, reminders and escalations are cancelled (the state's automatic step
runs on from its entry). Resuming sets a new deadline that much later, with
new reminders. After a calendar update, every provisional deadline is
recomputed on the new calendar. Each is audited on the case.
"""

from __future__ import annotations

import datetime as dt
from functools import partial

from sqlalchemy import Connection

from engine.access import SYSTEM_ACTOR, Actor, role_in_state, roles_acting_in
from engine.catalog import Catalog
from engine.clock import Clock
from engine.deadlines import Deadlines, Left
from engine.definition import WorkflowDef
from engine.definition.model import SYSTEM_ROLE
from engine.errors import Code, ConflictError, FieldProblem, InvalidCaseData, InvalidTransition
from engine.models import iso
from engine.rules import clean_text
from engine.steps import Steps
from engine.store import cases as case_store, timers as timer_store
from engine.store.database import Database, VersionPin
from engine.store.tables import CaseRow
from engine.users import find_actor

__all__ = ["Pauses", "clock_action"]


def clock_action(wf: WorkflowDef, case: CaseRow, user: Actor) -> str | None:
    """``"pause"`` or ``"resume"`` when ``user`` may do that to the case's clock now, else None.

    What :meth:`Pauses.pause` and :meth:`Pauses.resume` check (bar the version): a role acting in the
    state, and for a pause a deadline that is not a publicity period's and is not already stopped.
    """
    if not (roles_acting_in(wf, case.state) - {SYSTEM_ROLE}) & set(user.roles):
        return None
    if case.paused_at is not None:
        return "resume"
    if case.deadline_at is None or (wf.publicity is not None and case.state == wf.publicity.state):
        return None
    return "pause"


class Pauses:
    """Pause, resume and recompute deadlines.

    Args:
        db: each operation is one transaction (recomputing: one per case).
        catalog, steps, deadlines, clock: as a step uses them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock

    def pause(self, ref: str, actor: str, reason: str, *, expected_version: int | None = None) -> Left:
        """Stop the deadline clock of the case's current state (补正); audited. Returns the time left.

        ``expected_version``: refuse (``conflict``) unless the case is still at that version.
        """
        reason = clean_text("reason", reason) or ""
        if not reason:
            raise InvalidCaseData(
                [FieldProblem("reason", "is needed: say what is missing (补正 what?)", "required")], case=ref
            )
        pin = VersionPin(expected_version)

        def work(conn: Connection) -> Left:
            case, wf, role, seen = self._clock_of(conn, ref, actor, pin)
            if wf.publicity is not None and case.state == wf.publicity.state:
                # the period is the published notice's: pausing would move its end away from what the public read
                raise InvalidTransition(
                    f"case {ref} is in publicity (公示); its period is the one on the published notice and cannot "
                    "be paused. To stop it, uphold an objection or withdraw the application",
                    code=Code.NO_DEADLINE,
                    ref=ref,
                    state=case.state,
                )
            if case.deadline_at is None:
                raise InvalidTransition(
                    f"case {ref} has no deadline in {case.state}; there is no clock to pause",
                    code=Code.NO_DEADLINE,
                    ref=ref,
                    state=case.state,
                )
            if case.paused_at is not None:
                raise ConflictError(ref, "it is already paused; resume it first", code=Code.ALREADY_PAUSED)
            now = self.clock.now()
            left = self.deadlines.left(wf, case.state, now, case.deadline_at)
            left["amount"] = max(left["amount"], 0)
            timer_store.cancel_pending(conn, case.id, keep_timeout=True)
            self.steps.note(
                conn,
                wf,
                case,
                seen,
                now,
                actor=actor,
                role=role,
                action="paused",
                comment=reason,
                changes={"deadline": [iso(case.deadline_at), None]},
                extra={"paused_at": now, "paused_left": left},
            )
            return left

        return self.db.transaction(work)

    def resume(
        self, ref: str, actor: str, comment: str | None = None, *, expected_version: int | None = None
    ) -> dt.datetime:
        """Restart the clock with the time that was left; returns the new deadline."""
        comment = clean_text("comment", comment)
        pin = VersionPin(expected_version)

        def work(conn: Connection) -> dt.datetime:
            case, wf, role, seen = self._clock_of(conn, ref, actor, pin)
            if case.paused_at is None:
                raise ConflictError(ref, "it is not paused", code=Code.NOT_PAUSED)
            now = self.clock.now()
            left = case.paused_left or {"unit": "working_days", "amount": 0}
            deadline = self.deadlines.resumed(left, now, wf.timezone)
            _, rows = self.deadlines.plan(wf, case.state, now, deadline)
            # a timeout runs on from the state's entry; reminders and escalations start again
            timer_store.add_timers(
                conn,
                [
                    {**r, "case_id": case.id, "created_at": now, "entered_at": case.entered_at}
                    for r in rows
                    if r["kind"] != "timeout"
                ],
            )
            new_at = deadline.at.astimezone(dt.UTC)
            self.steps.note(
                conn,
                wf,
                case,
                seen,
                now,
                actor=actor,
                role=role,
                action="resumed",
                comment=comment,
                changes={"deadline": [None, iso(new_at)]},
                extra={
                    "paused_at": None,
                    "paused_left": None,
                    "deadline_at": new_at,
                    "deadline_provisional": deadline.provisional,
                },
            )
            return new_at

        return self.db.transaction(work)

    def _clock_of(
        self, conn: Connection, ref: str, actor: str, pin: VersionPin
    ) -> tuple[CaseRow, WorkflowDef, str, int]:
        """The case whose clock ``actor`` pauses or resumes, its workflow, their role and the version seen.

        Pausing or resuming is for whoever may take a step from the case's state, in its scope.
        """
        user = find_actor(conn, actor)
        case = self.steps.case(conn, ref, user)
        seen = pin.hold(case.ref, case.version)
        wf = self.catalog.get(conn, case.workflow_version_id).definition
        return case, wf, role_in_state(wf, ref, case.state, user, "pause or resume"), seen

    def provisional_refs(self) -> list[str]:
        """Refs of the cases whose current deadline is provisional (counted over a year with no official data)."""
        with self.db.read() as conn:
            return case_store.provisional_refs(conn)

    def recompute_provisional(self) -> list[tuple[str, str | None, str | None]]:
        """After a calendar update: recompute every provisional deadline; audited on each changed case.

        Returns (ref, old deadline, new deadline) for each case that changed.
        """
        with self.db.read() as conn:
            refs = case_store.provisional_refs(conn, running_only=True)
        changed = []
        for ref in refs:
            result = self.db.transaction(partial(self._recompute, ref=ref))
            if result:
                changed.append(result)
        return changed

    def _recompute(self, conn: Connection, ref: str) -> tuple[str, str | None, str | None] | None:
        case = self.steps.case(conn, ref, None)
        wf = self.catalog.get(conn, case.workflow_version_id).definition
        now = self.clock.now()
        deadline, rows = self.deadlines.plan(wf, case.state, case.entered_at)
        new_at = deadline.at.astimezone(dt.UTC) if deadline else None
        provisional = bool(deadline and deadline.provisional)
        if new_at == case.deadline_at and provisional == case.deadline_provisional:
            return None
        timer_store.cancel_pending(conn, case.id)
        timer_store.add_timers(
            conn,
            [{**r, "case_id": case.id, "created_at": now} for r in rows if r["due_at"] > now or r["kind"] == "timeout"],
        )
        old, new = iso(case.deadline_at, wf.timezone), iso(new_at, wf.timezone)
        self.steps.note(
            conn,
            wf,
            case,
            case.version,
            now,
            actor=SYSTEM_ACTOR,
            role=None,
            action="deadline_recomputed",
            comment="working-day calendar updated",
            changes={"deadline": [old, new]},
            extra={"deadline_at": new_at, "deadline_provisional": provisional},
        )
        return ref, old, new
