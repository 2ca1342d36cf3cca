"""Publicity periods (公示期), decided: when a published notice's period ends, and what may happen before then.

A case's publicity starts when it first appears on a *published* notice (a
公示名单 stored by :meth:`engine.publicity.Publicity.publish_list_notice`),
and lasts the period that notice states. These are the rules about that
period, as pure functions (no database, no clock of their own):

* :func:`publicity_period` — the period of a notice dated ``start``: the
  length the workflow declares on its publicity state (``timeout.after``,
  7 days if it declares none), counted as every deadline is counted
  (:meth:`engine.calendar.WorkingCalendar.deadline`): the day of publication
  is not counted; "N working days" ends with the Nth working day after it;
  "N days" with the Nth calendar day, moved on to the next working day if
  that day is a rest day (民法典第二百零一、二百零三条). The period ends at
  24:00 of its last day in the workflow's timezone;
* :func:`check_notice_date` — a notice cannot be dated before today;
* :func:`check_publicity_exit` — until the period is over (and before the
  case was ever on a published notice), a case leaves publicity only by an
  upheld objection or by a step after which it cannot be completed without
  being publicised again: to a void final state (withdrawn, rejected) or
  back to an earlier state whose every way on passes through publicity;
  whoever asks;
* :func:`check_objection_time` — objections are taken until the period ends.

The case row carries its period's end as ``deadline_at`` (written in the
transaction that publishes the notice, together with the ``publicised``
audit event that names the notice and the period): a step is decided
without another read, and ``casework check`` verifies that the two agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from engine.calendar import WorkingCalendar
from engine.definition.model import Duration, TransitionDef, WorkflowDef
from engine.errors import Code, InputError, RefusedError, TransitionRefused
from engine.store.tables import CaseRow, EventRow

__all__ = [
    "DEFAULT_PERIOD",
    "Period",
    "check_notice_date",
    "check_objection_time",
    "check_publicity_exit",
    "declared_period",
    "last_day",
    "period_text",
    "publicity_period",
    "trail_problems",
]

#: the period when the publicity state declares no ``timeout``
DEFAULT_PERIOD = Duration(7, "days")


@dataclass(frozen=True)
class Period:
    """A publicity period: from the notice's date to the end of its last day.

    ``ends_at`` is 00:00 (in the workflow's timezone) of the day after
    ``end``, as a UTC instant: objections are taken before it, and the case
    may leave publicity from it on.
    """

    start: dt.date
    end: dt.date
    ends_at: dt.datetime
    length: str

    @property
    def days(self) -> int:
        """Calendar days from the notice's date to the last day."""
        return (self.end - self.start).days


def declared_period(wf: WorkflowDef) -> Duration:
    """The length of the workflow's publicity period, as declared (``timeout.after`` of its publicity state)."""
    if wf.publicity is None:
        return DEFAULT_PERIOD
    timeout = wf.states[wf.publicity.state].timeout
    if timeout is None:
        return DEFAULT_PERIOD
    after = timeout.after
    if after.unit == "hours":
        # a notice states days: round a period given in hours up to whole days
        return Duration(max(1, -(-after.amount // 24)), "days")
    return after


def period_text(duration: Duration) -> str:
    """How a notice states the length: "7 天" or "5 个工作日"."""
    return f"{duration.amount} 个工作日" if duration.unit == "working_days" else f"{duration.amount} 天"


def publicity_period(wf: WorkflowDef, start: dt.date, calendar: WorkingCalendar) -> Period:
    """The period of a notice of ``wf`` dated ``start`` (see the module documentation for the counting)."""
    duration = declared_period(wf)
    zone = ZoneInfo(wf.timezone)
    deadline = calendar.deadline(
        dt.datetime.combine(start, dt.time(), zone), duration.amount, duration.unit, wf.timezone
    )
    ends_at = deadline.at.astimezone(dt.UTC)
    return Period(start=start, end=last_day(ends_at, wf.timezone), ends_at=ends_at, length=period_text(duration))


def last_day(ends_at: dt.datetime, tz: str) -> dt.date:
    """The last day of a period ending at ``ends_at`` (00:00 of the next day)."""
    return (ends_at.astimezone(ZoneInfo(tz)) - dt.timedelta(microseconds=1)).date()


def today(wf: WorkflowDef, now: dt.datetime) -> dt.date:
    """Today in the workflow's timezone."""
    return now.astimezone(ZoneInfo(wf.timezone)).date()


def check_notice_date(wf: WorkflowDef, on: dt.date, now: dt.datetime) -> None:
    """Refuse a notice dated before today (in the workflow's timezone); a later date is allowed."""
    day = today(wf, now)
    if on < day:
        raise InputError(
            f"a notice cannot be dated in the past: {on.isoformat()} is before today, {day.isoformat()} "
            f"({wf.timezone}); its publicity period would have run before anyone could see it. "
            "Date it today or later",
            code=Code.NOTICE_BACKDATED,
            workflow=wf.name,
            date=on.isoformat(),
            today=day.isoformat(),
        )


def _exempt(wf: WorkflowDef, t: TransitionDef) -> bool:
    """Whether ``t`` may take a case out of publicity before its period is over.

    The workflow's ``uphold`` step may, and so may any step after which the
    case cannot be completed without being publicised again: to a void final
    state (withdrawn, rejected), or back to an earlier state (review, apply)
    from which every way to a final state that is not void passes through
    publicity, and so a new notice and a new full period.
    """
    assert wf.publicity is not None
    return t.name == wf.publicity.uphold or not _completes_without_publicity(wf, t.dest)


def _completes_without_publicity(wf: WorkflowDef, start: str) -> bool:
    """Whether a case in ``start`` can reach a final state that is not void without entering publicity."""
    assert wf.publicity is not None
    seen, todo = {start}, [start]
    while todo:
        state = todo.pop()
        st = wf.states[state]
        if st.final and not st.void:
            return True
        for t in wf.transitions_from(state):
            if t.dest not in seen and t.dest != wf.publicity.state:
                seen.add(t.dest)
                todo.append(t.dest)
    return False


def check_publicity_exit(wf: WorkflowDef, case: CaseRow, t: TransitionDef, now: dt.datetime) -> None:
    """Refuse a step out of publicity before the case's published period is over, whoever asks.

    Passes a step that stays in publicity or that does not start from it, the
    workflow's ``uphold`` step (an upheld objection), and any step after which
    the case cannot be completed without a new publicity (a withdrawal, a
    rejection, a return for correction).
    """
    p = wf.publicity
    if p is None or case.state != p.state or t.dest == case.state or _exempt(wf, t):
        return
    label = wf.transitions[t.name].label
    if case.deadline_at is None:
        raise TransitionRefused(
            f"case {case.ref} has not been on a published notice (公示名单) since it entered "
            f"{case.state} ({wf.states[case.state].label}), so its publicity has not started and {t.name} cannot "
            f"be taken: 尚未公示，不能{label}. Publish the 公示名单 of its {_scope_word(wf)}"
            f"{f' ({case.scope})' if case.scope else ''} first; the case can leave publicity once that notice's "
            "period is over",
            code=Code.NOT_PUBLICISED,
            ref=case.ref,
            state=case.state,
            trigger=t.name,
            publicity_state=p.state,
        )
    if now < case.deadline_at:
        end = last_day(case.deadline_at, wf.timezone)
        raise TransitionRefused(
            f"case {case.ref} is in publicity until the end of {end.isoformat()}: 公示期至 {end.isoformat()} 止，"
            f"期满前不能{label}（{t.name}）. Before then only {_exits(wf)} can take it out of publicity, "
            "whoever asks",
            code=Code.PUBLICITY_NOT_OVER,
            ref=case.ref,
            state=case.state,
            trigger=t.name,
            period_end=end.isoformat(),
        )


def check_objection_time(wf: WorkflowDef, case: CaseRow, now: dt.datetime) -> None:
    """Refuse an objection once the case's published period is over (taken until 24:00 of its last day)."""
    if case.deadline_at is None or now < case.deadline_at:
        return
    end = last_day(case.deadline_at, wf.timezone)
    raise RefusedError(
        f"the publicity period of case {case.ref} ended at 24:00 on {end.isoformat()} (公示期至 {end.isoformat()} "
        "止); objections are taken only until the period's last day ends",
        code=Code.PUBLICITY_OVER,
        case=case.ref,
        period_end=end.isoformat(),
    )


def _exits(wf: WorkflowDef) -> str:
    assert wf.publicity is not None
    names = [
        t.name
        for t in wf.transitions.values()
        if wf.publicity.state in t.sources and t.dest != wf.publicity.state and _exempt(wf, t)
    ]
    if not names:
        return "nothing"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _scope_word(wf: WorkflowDef) -> str:
    field = wf.fields.get(wf.scope_field or "")
    return field.label if field is not None else "scope"


def trail_problems(wf: WorkflowDef, events: Iterable[EventRow]) -> list[str]:
    """Where a case's trail left publicity although its publicity did not happen, or was not over (pure).

    Each step out of the publicity state that only an ended period allows
    must follow a ``publicised`` event since the case entered the state, and
    come no earlier than the end of that notice's last day. What the trail
    proves is what ``casework check`` reads: a case moved on behind the
    engine's back, or written by an older version, is named.
    """
    p = wf.publicity
    if p is None:
        return []
    zone = ZoneInfo(wf.timezone)
    out = []
    ends: dt.datetime | None = None
    for e in events:
        if e.to_state == p.state and e.from_state != p.state:
            ends = None  # entered anew: a new notice and a new full period
        period = e.changes.get("period") if e.action == "publicised" else None
        if isinstance(period, list) and isinstance(period[-1], list):
            last = dt.date.fromisoformat(str(period[-1][1]))
            ends = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), zone)
        t = wf.transitions.get(e.trigger) if e.trigger is not None else None
        if e.from_state != p.state or e.to_state == p.state or t is None or _exempt(wf, t):
            continue
        if ends is None:
            out.append(f"event {e.seq} ({e.trigger}) took it out of publicity, but it was never on a published notice")
        elif e.at < ends:
            out.append(
                f"event {e.seq} ({e.trigger}) took it out of publicity at {e.at.astimezone(zone):%Y-%m-%d %H:%M}, "
                f"before its period ended ({(ends - dt.timedelta(days=1)).date().isoformat()})"
            )
    return out
