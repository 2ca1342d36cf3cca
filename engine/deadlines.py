"""Deadlines on the working-day calendar: when a state's deadline, reminders, escalation and timeout fall.

Time is data: entering a state computes its deadline on the working-day
calendar and the ``timers`` rows for its reminders, escalation and timeout
(:func:`plan_state`), written in the same transaction as the state change;
leaving the state cancels them. The publicity state (公示) is the exception:
its automatic end is due when the period of the notice the case is published
on ends, so that timer is written at publication (:func:`publicity_timer`),
not on entry. :class:`Deadlines` is the part that holds the
calendar (loaded on first use, replaced by ``calendar reload``) and
remembers the last plan, so a bulk step on many cases plans once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from engine.calendar import Deadline, WorkingCalendar
from engine.definition.model import Duration, StateDef, WorkflowDef

__all__ = [
    "Deadlines",
    "Left",
    "describe_left",
    "describe_left_zh",
    "has_timers",
    "is_publicity",
    "plan_state",
    "publicity_timer",
    "time_left",
    "timed_on_entry",
]

#: time left on a deadline: ``{"unit": "working_days" | "days" | "hours", "amount": int}`` (negative: overdue)
Left = dict[str, Any]
TimerPlan = list[dict[str, Any]]


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
) -> tuple[Deadline | None, TimerPlan]:
    """The deadline of ``state`` entered at ``entered``, and the timer rows to write (without ``case_id``).

    ``deadline`` overrides the computed one (resuming after a pause).
    """
    st = wf.states[state]
    if deadline is None and st.deadline is not None:
        deadline = _after(calendar, entered, st.deadline, wf.timezone)
    rows: TimerPlan = []
    if deadline is not None:
        at = _utc(deadline.at)
        for i, r in enumerate(st.remind):
            due = _before(calendar, at, r.before, wf.timezone)
            if due > entered:  # a reminder already due on entry would only be noise
                payload = {"to": r.to, "template": r.template, "index": i}
                rows.append(_timer("remind", state, entered, due, deadline.provisional, payload))
        if st.escalate is not None:
            late = _after(calendar, at - dt.timedelta(microseconds=1), st.escalate.after, wf.timezone)
            payload = {"to": st.escalate.to, "template": st.escalate.template}
            rows.append(
                _timer("escalate", state, entered, _utc(late.at), deadline.provisional or late.provisional, payload)
            )
    if st.timeout is not None and not is_publicity(wf, state):
        due_at = _after(calendar, entered, st.timeout.after, wf.timezone)
        rows.append(_timer("timeout", state, entered, _utc(due_at.at), due_at.provisional, _timeout_payload(st)))
    return deadline, rows


def is_publicity(wf: WorkflowDef, state: str) -> bool:
    """Whether ``state`` is the workflow's publicity state (公示), whose clock starts at publication, not entry."""
    return wf.publicity is not None and wf.publicity.state == state


def publicity_timer(wf: WorkflowDef, state: str, entered: dt.datetime, ends_at: dt.datetime) -> TimerPlan:
    """The publicity state's automatic step, due when a published notice's period ends (none if it declares none).

    Written when the case is published, not when it enters the state; it
    belongs to that stay in the state (``entered``), so leaving it cancels it.
    """
    st = wf.states[state]
    if st.timeout is None:
        return []
    return [_timer("timeout", state, entered, ends_at, False, _timeout_payload(st))]


def _timeout_payload(st: StateDef) -> dict[str, Any]:
    assert st.timeout is not None
    return {"fire": st.timeout.fire, "held_to": st.timeout.held_to, "held_template": st.timeout.held_template}


def _timer(
    kind: str, state: str, entered: dt.datetime, due: dt.datetime, provisional: bool, payload: dict[str, Any]
) -> dict[str, Any]:
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
    """Whether being in ``state`` can leave timers behind (so leaving it must cancel them)."""
    return bool(state.deadline or state.remind or state.escalate or state.timeout)


def timed_on_entry(wf: WorkflowDef, state: str) -> bool:
    """Whether entering ``state`` writes timers (the publicity state's are written at publication instead).

    A bare deadline writes none: it is a column of the case, and only its
    reminders and escalation are timers.
    """
    st = wf.states[state]
    return bool(st.remind or st.escalate or (st.timeout and not is_publicity(wf, state)))


def time_left(calendar: WorkingCalendar, wf: WorkflowDef, state: str, now: dt.datetime, deadline: dt.datetime) -> Left:
    """How much of the state's deadline unit is left at ``now`` (negative: overdue by that much)."""
    st = wf.states[state]
    # a state without a deadline of its own (publicity) counts its end in its timeout's unit
    length = st.deadline or (st.timeout.after if st.timeout else None)
    unit = length.unit if length else "hours"
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


def describe_left_zh(left: Left) -> str:
    """The same in Chinese, for messages: "剩余 3 个工作日" / "已超期 2 个工作日"."""
    amount = left["amount"]
    unit = {"working_days": "个工作日", "days": "天", "hours": "小时"}[left["unit"]]
    if amount > 0:
        return f"剩余 {amount} {unit}"
    if amount == 0:
        return "今日到期" if left["unit"] != "hours" else "一小时内到期"
    return f"已超期 {-amount} {unit}"


def describe_left(left: Left) -> str:
    """``{"unit": "working_days", "amount": 3}`` → "3 working days left" / "overdue by 2 working days"."""
    amount, unit = left["amount"], left["unit"].replace("_", " ")
    if amount == 1 or amount == -1:
        unit = unit.rstrip("s")
    if amount > 0:
        return f"{amount} {unit} left"
    if amount == 0:
        return "due today" if left["unit"] != "hours" else "due within the hour"
    return f"overdue by {-amount} {unit}"


class Deadlines:
    """The working-day calendar and what it decides: deadlines, timers, time left.

    Args:
        calendar: the calendar to count on; loaded (``WorkingCalendar.load()``)
            on first use if not given, so a command that never counts a day
            never reads it.
    """

    def __init__(self, calendar: WorkingCalendar | None = None) -> None:
        self._calendar = calendar
        self._memo: tuple[Any, tuple[Deadline | None, TimerPlan]] | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        """The calendar deadlines are counted on."""
        if self._calendar is None:
            self._calendar = WorkingCalendar.load()
        return self._calendar

    @calendar.setter
    def calendar(self, value: WorkingCalendar) -> None:
        self._calendar = value
        self._memo = None

    def plan(
        self, wf: WorkflowDef, state: str, entered: dt.datetime, deadline: Deadline | None = None
    ) -> tuple[Deadline | None, TimerPlan]:
        """:func:`plan_state` on this calendar, remembered for the last (workflow, state, time): a batch plans once."""
        if deadline is not None:
            return plan_state(wf, state, entered, self.calendar, deadline)
        key = (wf.source_hash, wf.version, state, entered)
        memo = self._memo
        if memo is None or memo[0] != key:
            memo = self._memo = (key, plan_state(wf, state, entered, self.calendar))
        return memo[1]

    def left(self, wf: WorkflowDef, state: str, now: dt.datetime, deadline: dt.datetime) -> Left:
        """:func:`time_left` on this calendar."""
        return time_left(self.calendar, wf, state, now, deadline)

    def resumed(self, left: Left, now: dt.datetime, tz: str) -> Deadline:
        """The deadline of a clock restarted at ``now`` with ``left`` to go."""
        return self.calendar.deadline(now, left["amount"], left["unit"], tz)

    def is_working_day(self, day: dt.date) -> bool:
        """Whether ``day`` is a working day on this calendar."""
        return self.calendar.is_working_day(day)
