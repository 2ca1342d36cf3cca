"""Durable time: deadlines, reminders, escalations and automatic steps, as rows.

Time is data (DESIGN.md core idea 4). Entering a state computes its
deadline on the working-day calendar and writes one ``timers`` row per
reminder, escalation and timeout — in the same transaction as the state
change; leaving the state cancels them. The sweeper (mixed into the
:class:`engine.Casework` service) fires due rows:

* each timer is claimed and its effect applied **in one transaction**
  (on PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``, on SQLite the
  claim is the transaction's first write), so two schedulers never fire it
  twice, and a crash mid-sweep leaves it pending to fire on the next sweep;
* a timer whose case has moved on (another state, or the same state entered
  again) is discarded, never fired;
* a timeout fires its step as ``system`` through the same path as a clerk
  (permissions, guards, audit, outbox). If a guard holds it (an open
  objection), it stays pending and is retried each sweep; the hold is
  reported to ``held_to`` once;
* due timers fire however late they are: after downtime every missed one
  fires once (no misfire window).

Pausing a case (补正, missing materials) stops its deadline clock: the
working time left is kept, reminders and escalations are cancelled, and
resuming sets a new deadline that much later.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from db.models import Case, Timer
from engine.access import SYSTEM
from engine.calendar import Deadline, WorkingCalendar
from engine.definition.model import Duration, StateDef, WorkflowDef
from engine.errors import ConflictError, InvalidTransition, PermissionDenied, TransitionRefused
from engine.outbox import case_context, queue_message, queue_to_user
from engine.views import iso

__all__ = ["KINDS", "SweepReport", "TimerView", "TimersMixin", "has_timers", "plan_state", "time_left"]

logger = logging.getLogger(__name__)

KINDS = ("remind", "escalate", "timeout")
_timers = Timer.__table__
_cases = Case.__table__


@dataclass
class SweepReport:
    fired: int = 0
    held: int = 0
    discarded: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimerView:
    id: int
    case_ref: str
    kind: str
    state: str
    due_at: dt.datetime
    provisional: bool
    status: str
    payload: dict[str, Any]
    held_at: dt.datetime | None
    fired_at: dt.datetime | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_ref": self.case_ref,
            "kind": self.kind,
            "state": self.state,
            "due_at": iso(self.due_at),
            "provisional": self.provisional,
            "status": self.status,
            "payload": dict(self.payload),
            "held_at": iso(self.held_at),
            "fired_at": iso(self.fired_at),
            "last_error": self.last_error,
        }


def _utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC)


def _after(calendar: WorkingCalendar, start: dt.datetime, duration: Duration, tz: str) -> Deadline:
    return calendar.deadline(start, duration.amount, duration.unit, tz)


def _before(calendar: WorkingCalendar, deadline: dt.datetime, duration: Duration, tz: str) -> dt.datetime:
    """``duration`` before a deadline; "N working days before" is the start of the Nth-last working day."""
    if duration.unit == "hours":
        return deadline - dt.timedelta(hours=duration.amount)
    if duration.unit == "days":
        return deadline - dt.timedelta(days=duration.amount)
    zone = ZoneInfo(tz)
    day = (deadline.astimezone(zone) - dt.timedelta(microseconds=1)).date()  # the deadline's last day
    counted = 1 if calendar.is_working_day(day) else 0
    while counted < duration.amount:
        day -= dt.timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
    return dt.datetime.combine(day, dt.time(), zone)


def plan_state(
    wf: WorkflowDef, state: str, entered: dt.datetime, calendar: WorkingCalendar, deadline: Deadline | None = None
) -> tuple[Deadline | None, list[dict[str, Any]]]:
    """The deadline of ``state`` entered at ``entered``, and the timer rows to write.

    ``deadline`` overrides the computed one (resuming after a pause).
    """
    st = wf.states[state]
    if deadline is None and st.deadline is not None:
        deadline = _after(calendar, entered, st.deadline, wf.timezone)
    rows: list[dict[str, Any]] = []
    if deadline is not None:
        at = _utc(deadline.at)
        for i, r in enumerate(st.remind):
            due = _before(calendar, at, r.before, wf.timezone)
            if due > entered:  # a reminder already due on entry would only be noise
                rows.append(
                    _row(
                        "remind",
                        state,
                        entered,
                        due,
                        deadline.provisional,
                        {"to": r.to, "template": r.template, "index": i},
                    )
                )
        if st.escalate is not None:
            late = _after(calendar, at - dt.timedelta(microseconds=1), st.escalate.after, wf.timezone)
            rows.append(
                _row(
                    "escalate",
                    state,
                    entered,
                    _utc(late.at),
                    deadline.provisional or late.provisional,
                    {"to": st.escalate.to, "template": st.escalate.template},
                )
            )
    if st.timeout is not None:
        due = _after(calendar, entered, st.timeout.after, wf.timezone)
        rows.append(
            _row(
                "timeout",
                state,
                entered,
                _utc(due.at),
                due.provisional,
                {"fire": st.timeout.fire, "held_to": st.timeout.held_to, "held_template": st.timeout.held_template},
            )
        )
    return deadline, rows


def _row(kind: str, state: str, entered: dt.datetime, due: dt.datetime, provisional: bool, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
    return {
        "kind": kind,
        "state": state,
        "entered_at": entered,
        "due_at": _utc(due),
        "provisional": provisional,
        "payload": payload,
        "status": "pending",
    }


def has_timers(state: StateDef) -> bool:
    """Whether entering ``state`` can leave timers behind (so leaving it must cancel them)."""
    return bool(state.deadline or state.remind or state.escalate or state.timeout)


def schedule(
    conn: Connection,
    wf: WorkflowDef,
    case_id: int,
    state: str,
    entered: dt.datetime,
    calendar: WorkingCalendar,
    now: dt.datetime,
) -> Deadline | None:
    """Cancel the case's pending timers and write the new state's; return its deadline."""
    conn.execute(
        update(_timers).where(_timers.c.case_id == case_id, _timers.c.status == "pending").values(status="cancelled")
    )
    deadline, rows = plan_state(wf, state, entered, calendar)
    if rows:
        conn.execute(insert(_timers), [{**r, "case_id": case_id, "created_at": now} for r in rows])
    return deadline


def time_left(
    calendar: WorkingCalendar, wf: WorkflowDef, state: str, now: dt.datetime, deadline: dt.datetime
) -> dict[str, Any]:
    """How much of the state's deadline unit is left at ``now`` (negative: overdue by that much)."""
    st = wf.states[state]
    unit = st.deadline.unit if st.deadline else "hours"
    zone = ZoneInfo(wf.timezone)
    if unit == "hours":
        hours = int((deadline - now).total_seconds() // 3600)
        return {"unit": "hours", "amount": hours}
    today = now.astimezone(zone).date()
    last = (deadline.astimezone(zone) - dt.timedelta(microseconds=1)).date()
    if unit == "days":
        return {"unit": "days", "amount": (last - today).days}
    if last >= today:
        return {"unit": "working_days", "amount": calendar.working_days_between(today, last)}
    return {"unit": "working_days", "amount": -calendar.working_days_between(last, today)}


def describe_left_zh(left: dict[str, Any]) -> str:
    """The same in Chinese, for messages: "剩余 3 个工作日" / "已超期 2 个工作日"."""
    amount = left["amount"]
    unit = {"working_days": "个工作日", "days": "天", "hours": "小时"}[left["unit"]]
    if amount > 0:
        return f"剩余 {amount} {unit}"
    if amount == 0:
        return "今日到期"
    return f"已超期 {-amount} {unit}"


def describe_left(left: dict[str, Any]) -> str:
    """``{"unit": "working_days", "amount": 3}`` → "3 working days left" / "overdue by 2 working days"."""
    amount, unit = left["amount"], left["unit"].replace("_", " ")
    if amount == 1 or amount == -1:
        unit = unit.rstrip("s")
    if amount > 0:
        return f"{amount} {unit} left"
    if amount == 0:
        return "due today" if left["unit"] != "hours" else "due within the hour"
    return f"overdue by {-amount} {unit}"


def latest_fire_time(
    cron: str, tz: str, now: dt.datetime, lookback: dt.timedelta = dt.timedelta(days=7)
) -> dt.datetime | None:
    """The latest time at or before ``now`` that ``cron`` was due (within ``lookback``), or None.

    After downtime a job runs once, for its latest due time (coalesced), not
    once per missed time.
    """
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=tz)
    last = None
    at = trigger.get_next_fire_time(None, now - lookback)
    for _ in range(20_000):  # a minutely job over a week, bounded
        if at is None or at > now:
            break
        last = at
        at = trigger.get_next_fire_time(at, at + dt.timedelta(seconds=1))
    return last


class TimersMixin:
    """Sweeping timers, pausing and resuming cases; mixed into :class:`engine.Casework`."""

    clock: Any
    engine: Any
    calendar: WorkingCalendar
    _write: Any
    _actor: Any
    _case_row: Any
    _load_version: Any
    _note: Any
    _fire_in: Any
    _resolve_workflow: Any
    _create_in: Any
    _pin: Any

    # ------------------------------------------------------------------- sweep

    def due_timers(self, limit: int = 500, before: dt.datetime | None = None) -> list[int]:
        """Ids of pending timers due at ``before`` (default now), oldest first."""
        when = before or self.clock.now()
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(_timers.c.id)
                    .where(_timers.c.status == "pending", _timers.c.due_at <= when)
                    # held timers last: a pile of held ones must not starve the rest
                    .order_by(_timers.c.held_at.is_not(None), _timers.c.due_at, _timers.c.id)
                    .limit(limit)
                ).scalars()
            )

    def sweep(self, limit: int = 500, should_stop: Callable[[], bool] | None = None) -> SweepReport:
        """Fire every due timer (up to ``limit``), each in its own transaction; one failure skips only that one.

        ``should_stop`` is asked between timers, so a scheduler told to stop
        does not first finish a long batch.
        """
        report = SweepReport()
        for timer_id in self.due_timers(limit):
            if should_stop is not None and should_stop():
                break
            try:
                outcome = self._write(lambda conn, tid=timer_id: self._fire_timer(conn, tid))
            except Exception as exc:
                report.failed += 1
                report.errors.append(f"timer {timer_id}: {type(exc).__name__}: {exc}")
                logger.warning("timer %s failed: %s", timer_id, type(exc).__name__)
                continue
            if outcome == "fired":
                report.fired += 1
            elif outcome == "held":
                report.held += 1
            elif outcome == "discarded":
                report.discarded += 1
        return report

    def _fire_timer(self, conn: Connection, timer_id: int) -> str:
        now = self.clock.now()
        query = select(_timers).where(_timers.c.id == timer_id, _timers.c.status == "pending")
        if conn.dialect.name == "postgresql":
            timer = conn.execute(query.with_for_update(skip_locked=True)).first()
        else:
            # the claim is the transaction's first write: SQLite's write lock serialises sweepers
            claimed = conn.execute(
                update(_timers).where(_timers.c.id == timer_id, _timers.c.status == "pending").values(status="pending")
            )
            timer = conn.execute(query).first() if claimed.rowcount == 1 else None
        if timer is None:
            return "skipped"  # another sweeper has it, or it is no longer pending
        row = conn.execute(select(_cases).where(_cases.c.id == timer.case_id)).one()
        if row.state != timer.state or row.entered_at != timer.entered_at or row.paused_at is not None:
            self._mark(conn, timer_id, "discarded", now)
            return "discarded"
        wf = self._load_version(conn, row.workflow_version_id).definition
        if timer.kind in ("remind", "escalate"):
            self._queue_timer_message(conn, wf, row, timer, timer.payload["to"], timer.payload["template"], now)
            self._mark(conn, timer_id, "fired", now)
            return "fired"

        trigger = timer.payload["fire"]
        savepoint = conn.begin_nested()
        try:
            self._fire_in(conn, row.ref, trigger, SYSTEM, None, None, [row.version])
        except TransitionRefused as exc:
            savepoint.rollback()
            if isinstance(exc, PermissionDenied | InvalidTransition):
                self._mark(conn, timer_id, "discarded", now, error=str(exc))
                return "discarded"
            if timer.held_at is None:
                # report the hold once, not on every sweep
                conn.execute(update(_timers).where(_timers.c.id == timer_id).values(held_at=now, last_error=str(exc)))
                held_to = timer.payload.get("held_to")
                if held_to:
                    self._queue_timer_message(conn, wf, row, timer, held_to, timer.payload["held_template"], now)
            return "held"
        except ConflictError:
            savepoint.rollback()
            raise
        savepoint.commit()
        self._mark(conn, timer_id, "fired", now)
        return "fired"

    @staticmethod
    def _mark(conn: Connection, timer_id: int, status: str, now: dt.datetime, error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if status == "fired":
            values["fired_at"] = now
        if error:
            values["last_error"] = error[:500]
        conn.execute(update(_timers).where(_timers.c.id == timer_id).values(**values))

    def _queue_timer_message(
        self, conn: Connection, wf: WorkflowDef, row: Any, timer: Any, to: str, template: str, now: dt.datetime
    ) -> None:
        deadline = None
        if row.deadline_at is not None:
            left = time_left(self.calendar, wf, row.state, now, row.deadline_at)
            deadline = {
                "at": iso(row.deadline_at, wf.timezone),
                "left": describe_left_zh(left),
                "left_en": describe_left(left),
                "provisional": row.deadline_provisional,
            }
        queue_message(
            conn,
            wf,
            version_id=row.workflow_version_id,
            case_id=row.id,
            scope=row.scope,
            data=row.data,
            key=f"timer:{timer.id}:{to}",
            to=to,
            template=template,
            channels=("inbox", "email"),
            context={
                "case": case_context(wf, row.ref, row.state, row.data),
                "event": {"trigger": None, "kind": timer.kind, "at": iso(now, wf.timezone)},
                "deadline": deadline,
            },
            now=now,
        )

    # ------------------------------------------------------------ pause/resume

    def pause(self, ref: str, actor: str, reason: str) -> dict[str, Any]:
        """Stop the deadline clock of the case's current state (补正); audited. Returns the time left."""
        reason = (reason or "").strip()
        if not reason:
            from engine.errors import FieldProblem, InvalidCaseData

            raise InvalidCaseData([FieldProblem("reason", "is needed: say what is missing (补正 what?)")])
        pinned: list[int | None] = [None]

        def work(conn: Connection) -> dict[str, Any]:
            user = self._actor(conn, actor)
            row = self._case_row(conn, ref, user)
            self._pin(pinned, row)
            wf = self._load_version(conn, row.workflow_version_id).definition
            role = self._acting_role_in_state(wf, row, user)
            if row.deadline_at is None:
                raise InvalidTransition(
                    f"case {ref} has no deadline in {row.state}; there is no clock to pause", ref=ref
                )
            if row.paused_at is not None:
                raise ConflictError(ref, "it is already paused; resume it first")
            now = self.clock.now()
            left = time_left(self.calendar, wf, row.state, now, row.deadline_at)
            left["amount"] = max(left["amount"], 0)
            conn.execute(
                update(_timers)
                .where(_timers.c.case_id == row.id, _timers.c.status == "pending", _timers.c.kind != "timeout")
                .values(status="cancelled")
            )
            self._note(
                conn,
                wf,
                row,
                pinned[0],
                now,
                actor=actor,
                role=role,
                action="paused",
                comment=reason,
                changes={"deadline": [iso(row.deadline_at), None]},
                extra={"paused_at": now, "paused_left": left},
            )
            return left

        return self._write(work)

    def resume(self, ref: str, actor: str, comment: str | None = None) -> dt.datetime:
        """Restart the clock with the time that was left; returns the new deadline."""
        pinned: list[int | None] = [None]

        def work(conn: Connection) -> dt.datetime:
            user = self._actor(conn, actor)
            row = self._case_row(conn, ref, user)
            self._pin(pinned, row)
            wf = self._load_version(conn, row.workflow_version_id).definition
            role = self._acting_role_in_state(wf, row, user)
            if row.paused_at is None:
                raise ConflictError(ref, "it is not paused")
            now = self.clock.now()
            left = row.paused_left or {"unit": "working_days", "amount": 0}
            deadline = self.calendar.deadline(now, left["amount"], left["unit"], wf.timezone)
            _, rows = plan_state(wf, row.state, now, self.calendar, deadline)
            rows = [r for r in rows if r["kind"] != "timeout"]  # a timeout runs on from the state's entry
            if rows:
                conn.execute(
                    insert(_timers),
                    [{**r, "case_id": row.id, "created_at": now, "entered_at": row.entered_at} for r in rows],
                )
            new_at = _utc(deadline.at)
            self._note(
                conn,
                wf,
                row,
                pinned[0],
                now,
                actor=actor,
                role=role,
                action="resumed",
                comment=(comment or "").strip() or None,
                changes={"deadline": [None, iso(new_at)]},
                extra={
                    "paused_at": None,
                    "paused_left": None,
                    "deadline_at": new_at,
                    "deadline_provisional": deadline.provisional,
                },
            )
            return new_at

        return self._write(work)

    @staticmethod
    def _acting_role_in_state(wf: WorkflowDef, row: Any, user: Any) -> str:
        actors = {r for t in wf.transitions_from(row.state) for r in t.by} - {"system"}
        role = next((r for r in user.roles if r in actors), None)
        if role is None:
            raise PermissionDenied(
                f"{user.username} may not pause or resume case {row.ref} in {row.state}: that needs role "
                f"{' or '.join(sorted(actors))}",
                ref=row.ref,
            )
        return role

    # ------------------------------------------------------------- schedules

    def run_due_schedules(self) -> list[tuple[str, str, str]]:
        """Run every workflow ``schedules:`` job whose latest due time has not run yet.

        Each (job, due time) runs once across all scheduler processes: the
        ``job_runs`` row is claimed first in the job's transaction, so a second
        process either waits and fails on the unique key, or finds the row.
        Returns (job, due time, outcome) for the jobs run now.
        """
        from sqlalchemy.exc import IntegrityError

        from db.models import WorkflowVersion

        versions = WorkflowVersion.__table__
        now = self.clock.now()
        done = []
        with self.engine.connect() as conn:
            latest = {}
            for vid, name, version in conn.execute(select(versions.c.id, versions.c.name, versions.c.version)):
                if name not in latest or version > latest[name][1]:
                    latest[name] = (vid, version)
            loaded = [self._load_version(conn, vid) for vid, _ in latest.values()]
        for item in loaded:
            wf = item.definition
            for schedule in wf.schedules:
                fire = latest_fire_time(schedule.cron, wf.timezone, now)
                if fire is None:
                    continue
                job = f"{wf.name}:{schedule.name}"
                try:
                    outcome = self._write(
                        lambda conn, s=schedule, f=fire, j=job, w=wf, v=item.id: self._run_schedule(conn, w, v, s, j, f)
                    )
                except IntegrityError:
                    continue  # another scheduler ran it for this due time
                if outcome is not None:
                    done.append((job, iso(fire, wf.timezone) or "", outcome))
                    logger.info("job %s for %s: %s", job, fire.isoformat(), outcome)
        return done

    def _run_schedule(
        self, conn: Connection, wf: WorkflowDef, version_id: int, schedule: Any, job: str, fire: dt.datetime
    ) -> str | None:
        from db.models import JobRun, User

        runs, users = JobRun.__table__, User.__table__
        if conn.execute(select(runs.c.id).where(runs.c.job == job, runs.c.fire_time == fire)).first():
            return None
        now = self.clock.now()
        conn.execute(insert(runs).values(job=job, fire_time=fire, ran_at=now, outcome="running"))
        local_day = fire.astimezone(ZoneInfo(wf.timezone)).date()
        if schedule.working_days_only and not self.calendar.is_working_day(local_day):
            outcome = f"skipped: {local_day} is not a working day"
        elif schedule.action == "open_cases":
            outcome = self._open_cases(conn, wf, schedule, now)
        else:
            sent = 0
            people = [u for u in conn.execute(select(users)) if schedule.to in u.roles]
            for person in people:
                cases = self.list_cases(workflow=wf.name, actor=person.username, overdue=True)
                if not cases:
                    continue
                rows = [
                    {
                        **case_context(
                            self._load_version(conn, self._version_id(conn, c.ref)).definition, c.ref, c.state, c.data
                        ),
                        "deadline": iso(c.deadline, wf.timezone),
                        "left": c.time_left,
                    }
                    for c in cases
                ]
                sent += queue_to_user(
                    conn,
                    version_id=version_id,
                    key=f"job:{job}:{fire.isoformat()}:{person.username}",
                    user=person,
                    template=schedule.template,
                    channels=("inbox", "email"),
                    now=now,
                    context={
                        "cases": rows,
                        "workflow": {"name": wf.name, "title": wf.title},
                        "date": local_day.isoformat(),
                    },
                )
            outcome = f"{schedule.action}: {sent} message{'s' if sent != 1 else ''} to {len(people)} {schedule.to}(s)"
        conn.execute(update(runs).where(runs.c.job == job, runs.c.fire_time == fire).values(outcome=outcome[:200]))
        return outcome

    def _open_cases(self, conn: Connection, wf: WorkflowDef, schedule: Any, now: dt.datetime) -> str:
        """A campaign: open one case of ``schedule.workflow`` for every case of ours in ``from_state``."""
        from engine.errors import NotFound, RefusedError

        try:
            target = self._resolve_workflow(conn, schedule.workflow, None)
        except NotFound:
            return f"open_cases: workflow {schedule.workflow!r} is not loaded; load it with 'casework workflow load'"
        fields = target.definition.fields
        opened = skipped = 0
        rows = conn.execute(
            select(_cases.c.ref, _cases.c.data)
            .where(_cases.c.workflow == wf.name, _cases.c.state == schedule.from_state)
            .order_by(_cases.c.id)
        ).all()
        for ref, data in rows:
            values = {k: v for k, v in data.items() if k in fields}
            if schedule.link_field:
                values[schedule.link_field] = ref
            savepoint = conn.begin_nested()
            try:
                self._create_in(conn, target, SYSTEM, values, now)
            except RefusedError:
                savepoint.rollback()  # e.g. last year's review of this archive is still open
                skipped += 1
                continue
            savepoint.commit()
            opened += 1
        return f"open_cases: opened {opened} {schedule.workflow} case{'s' if opened != 1 else ''}, skipped {skipped}"

    @staticmethod
    def _version_id(conn: Connection, ref: str) -> int:
        return conn.execute(select(_cases.c.workflow_version_id).where(_cases.c.ref == ref)).scalar_one()

    # -------------------------------------------------------------- listing

    def timers(self, due_before: dt.datetime | None = None, status: str | None = "pending") -> list[TimerView]:
        """Timers (pending by default), soonest first."""
        with self.engine.connect() as conn:
            query = (
                select(_timers, _cases.c.ref)
                .join(_cases, _cases.c.id == _timers.c.case_id)
                .order_by(_timers.c.due_at, _timers.c.id)
            )
            if status:
                query = query.where(_timers.c.status == status)
            if due_before is not None:
                query = query.where(_timers.c.due_at <= due_before)
            return [
                TimerView(
                    t.id,
                    t.ref,
                    t.kind,
                    t.state,
                    t.due_at,
                    t.provisional,
                    t.status,
                    t.payload,
                    t.held_at,
                    t.fired_at,
                    t.last_error,
                )
                for t in conn.execute(query)
            ]

    def provisional_refs(self) -> list[str]:
        """Refs of the cases whose current deadline is provisional (counted over a year with no official data)."""
        with self.engine.connect() as conn:
            query = select(_cases.c.ref).where(_cases.c.deadline_provisional.is_(True)).order_by(_cases.c.id)
            return list(conn.execute(query).scalars())

    def recompute_provisional(self) -> list[tuple[str, str | None, str | None]]:
        """After a calendar update: recompute every provisional deadline; audited on each changed case.

        Returns (ref, old deadline, new deadline) for each case that changed.
        """
        changed: list[tuple[str, str | None, str | None]] = []
        with self.engine.connect() as conn:
            refs = (
                conn.execute(
                    select(_cases.c.ref).where(_cases.c.deadline_provisional.is_(True), _cases.c.paused_at.is_(None))
                )
                .scalars()
                .all()
            )
        for ref in refs:

            def work(conn: Connection, ref: str = ref) -> tuple[str, str | None, str | None] | None:
                row = self._case_row(conn, ref, None)
                wf = self._load_version(conn, row.workflow_version_id).definition
                now = self.clock.now()
                deadline, rows = plan_state(wf, row.state, row.entered_at, self.calendar)
                new_at = _utc(deadline.at) if deadline else None
                provisional = bool(deadline and deadline.provisional)
                if new_at == row.deadline_at and provisional == row.deadline_provisional:
                    return None
                conn.execute(
                    update(_timers)
                    .where(_timers.c.case_id == row.id, _timers.c.status == "pending")
                    .values(status="cancelled")
                )
                due = [r for r in rows if r["due_at"] > now or r["kind"] == "timeout"]
                if due:
                    conn.execute(insert(_timers), [{**r, "case_id": row.id, "created_at": now} for r in due])
                old, new = iso(row.deadline_at, wf.timezone), iso(new_at, wf.timezone)
                self._note(
                    conn,
                    wf,
                    row,
                    row.version,
                    now,
                    actor="system",
                    role=None,
                    action="deadline_recomputed",
                    comment="working-day calendar updated",
                    changes={"deadline": [old, new]},
                    extra={"deadline_at": new_at, "deadline_provisional": provisional},
                )
                return (ref, old, new)

            result = self._write(work)
            if result:
                changed.append(result)
        return changed
