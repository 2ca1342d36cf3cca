"""Firing due timers: reminders, escalations and automatic steps, each once, however late.

* each timer is claimed and its effect applied **in one transaction**
  (on PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``, on SQLite the
  claim is the transaction's first write), so two schedulers never fire it
  twice, and a crash mid-sweep leaves it pending to fire on the next sweep;
* a timer whose case has moved on (another state, or the same state entered
  again, or paused) is discarded, never fired;
* a timeout fires its step as ``system`` through the same path as a clerk
  (permissions, guards, audit, outbox). If a guard holds it (an open
  objection), it stays pending and is retried each sweep; the hold is
  reported to ``held_to`` once;
* the publicity state's automatic end is written when the case is published
  and due at the end of the notice's period (:mod:`engine.publicity`); the
  step's own check refuses it before then, so an early one is held;
* due timers fire however late they are: after downtime every missed one
  fires once (no misfire window).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from enum import StrEnum
from functools import partial

from sqlalchemy import Connection

from engine.access import SYSTEM
from engine.catalog import Catalog
from engine.clock import Clock
from engine.deadlines import Deadlines, describe_left, describe_left_zh
from engine.definition.model import WorkflowDef
from engine.errors import LINKED_FROM, Code, ConflictError, TransitionRefused
from engine.models import SweepReport, TimerView, iso
from engine.outbox import case_context, role_messages
from engine.steps import Steps
from engine.store import timers as store
from engine.store.cases import read_case_by_id
from engine.store.database import Database, VersionPin
from engine.store.outbox import add_messages
from engine.store.tables import CaseRow, TimerRow
from engine.store.users import directory

__all__ = ["Outcome", "Sweeper", "timer_view"]

logger = logging.getLogger(__name__)

# a refused timeout that will never succeed (the step is gone or not the scheduler's, or the case is
# in publicity but on no published notice — publication writes its own timer): drop it
_HOPELESS = {Code.ROLE_NEEDED, Code.SCOPE_NOT_COVERED, Code.UNKNOWN_STEP, Code.WRONG_STATE, Code.NOT_PUBLICISED}


class Outcome(StrEnum):
    """What became of one due timer."""

    FIRED = "fired"
    HELD = "held"
    DISCARDED = "discarded"
    SKIPPED = "skipped"  # another sweeper has it, or it is no longer pending


class Sweeper:
    """Fires due timers.

    Args:
        db: each timer is one transaction.
        catalog, steps, deadlines, clock: as a clerk's step uses them.
    """

    def __init__(self, db: Database, catalog: Catalog, steps: Steps, deadlines: Deadlines, clock: Clock) -> None:
        self.db = db
        self.catalog = catalog
        self.steps = steps
        self.deadlines = deadlines
        self.clock = clock

    def due(self, limit: int = 500, before: dt.datetime | None = None) -> list[int]:
        """Ids of pending timers due at ``before`` (default now), oldest first."""
        with self.db.read() as conn:
            return store.due_timer_ids(conn, before or self.clock.now(), limit)

    def sweep(self, limit: int = 500, should_stop: Callable[[], bool] | None = None) -> SweepReport:
        """Fire every due timer (up to ``limit``), each in its own transaction; one failure skips only that one.

        ``should_stop`` is asked between timers, so a scheduler told to stop
        does not first finish a long batch.
        """
        report = SweepReport()
        for timer_id in self.due(limit):
            if should_stop is not None and should_stop():
                break
            try:
                outcome = self.db.transaction(partial(self.fire_timer, timer_id=timer_id))
            except Exception as exc:
                report.failed += 1
                report.errors.append(f"timer {timer_id}: {type(exc).__name__}: {exc}")
                logger.warning("timer %s failed: %s", timer_id, type(exc).__name__)
                continue
            if outcome is Outcome.FIRED:
                report.fired += 1
            elif outcome is Outcome.HELD:
                report.held += 1
            elif outcome is Outcome.DISCARDED:
                report.discarded += 1
        return report

    def fire_timer(self, conn: Connection, timer_id: int) -> Outcome:
        """Claim one timer and apply it, in the caller's transaction."""
        now = self.clock.now()
        timer = store.claim_timer(conn, timer_id)
        if timer is None:
            return Outcome.SKIPPED
        case = read_case_by_id(conn, timer.case_id)
        if case.state != timer.state or case.entered_at != timer.entered_at or case.paused_at is not None:
            store.mark_timer(conn, timer_id, status="discarded")
            return Outcome.DISCARDED
        wf = self.catalog.get(conn, case.workflow_version_id).definition
        if timer.kind in ("remind", "escalate"):
            self._tell(conn, wf, case, timer, timer.payload["to"], timer.payload["template"], now)
            store.mark_timer(conn, timer_id, status="fired", fired_at=now)
            return Outcome.FIRED
        savepoint = conn.begin_nested()
        try:
            self.steps.fire(conn, case.ref, timer.payload["fire"], SYSTEM, None, None, VersionPin(case.version))
        except TransitionRefused as exc:
            savepoint.rollback()
            # hopeless for this case; a linked case's refusal (then:) may pass later, so it holds instead
            if exc.code in _HOPELESS and LINKED_FROM not in exc.facts:
                store.mark_timer(conn, timer_id, status="discarded", error=exc.message)
                return Outcome.DISCARDED
            if timer.held_at is None:
                # report the hold once, not on every sweep
                store.mark_timer(conn, timer_id, held_at=now, error=exc.message)
                held_to = timer.payload.get("held_to")
                if held_to:
                    self._tell(conn, wf, case, timer, held_to, timer.payload["held_template"], now)
            return Outcome.HELD
        except ConflictError:
            savepoint.rollback()
            raise
        savepoint.commit()
        store.mark_timer(conn, timer_id, status="fired", fired_at=now)
        return Outcome.FIRED

    def _tell(
        self,
        conn: Connection,
        wf: WorkflowDef,
        case: CaseRow,
        timer: TimerRow,
        to: str,
        template: str,
        now: dt.datetime,
    ) -> None:
        deadline = None
        if case.deadline_at is not None:
            left = self.deadlines.left(wf, case.state, now, case.deadline_at)
            deadline = {
                "at": iso(case.deadline_at, wf.timezone),
                "left": describe_left_zh(left),
                "left_en": describe_left(left),
                "provisional": case.deadline_provisional,
            }
        rows = role_messages(
            wf,
            version_id=case.workflow_version_id,
            case_id=case.id,
            scope=case.scope,
            data=case.data,
            key=f"timer:{timer.id}:{to}",
            to=to,
            template=template,
            channels=("inbox", "email"),
            context={
                "case": case_context(wf, case.ref, case.state, case.data),
                "event": {"trigger": None, "kind": timer.kind, "at": iso(now, wf.timezone)},
                "deadline": deadline,
            },
            now=now,
            people=directory(conn),
        )
        add_messages(conn, rows)

    def timers(self, due_before: dt.datetime | None = None, status: str | None = "pending") -> list[TimerView]:
        """Timers (pending by default), soonest first."""
        with self.db.read() as conn:
            return [timer_view(t, ref) for t, ref in store.list_timers(conn, status=status, due_before=due_before)]


def timer_view(t: TimerRow, ref: str) -> TimerView:
    """The read model of a timer row."""
    return TimerView(
        id=t.id,
        case_ref=ref,
        kind=t.kind,
        state=t.state,
        due_at=t.due_at,
        provisional=t.provisional,
        status=t.status,
        payload=t.payload,
        held_at=t.held_at,
        fired_at=t.fired_at,
        last_error=t.last_error,
    )
