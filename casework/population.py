"""Seeded, fast synthetic populations: many realistic cases of one workflow, written in batches.

For benchmarks and load tests that need a database the size of a real one (a
million archives) in a minute rather than the days that opening and moving
each case through :class:`engine.Casework` would take. :func:`populate` writes
what the engine would have written, with batched SQLAlchemy Core inserts
(``executemany``, one transaction per batch), and keeps every invariant the
engine relies on:

* each case walks the workflow's graph from its initial state as clerks and
  the scheduler would have moved it: the happy path, sometimes returned for
  correction (a household missing a document is always returned at the step
  whose guard wants it, and resubmitted once the clerk has completed it),
  sometimes sent back from publicity, approval or entry to be corrected
  (``correct``) and reviewed and publicised again, sometimes rejected or
  withdrawn, and it stops in whatever state it has
  reached at ``clock_now`` — so most cases are filed and some wait in every
  open state, a few overdue, a few paused (补正);
* its audit trail is the chain of events that walk produced (created, submit,
  pass_review, …, paused), built with :class:`engine.audit.Event`, so the
  hashes are exactly the engine's and ``Casework.verify_audit()`` passes; the
  row's ``audit_seq``/``audit_head``/``version``/``fired_by`` match it, and
  the people who fired each step respect the four-eyes rules;
* its deadline and timers are those of its state, counted on the
  working-day calendar from when it entered the state (the ones already due
  marked fired, as the scheduler leaves them; a paused case's reminders and
  escalations cancelled);
* its publicity is the engine's (:mod:`engine.publicity`): a case that passes
  review awaits publication until its county's next 公示名单, published at
  16:00 on each working day on which some case of the county awaits it; the
  list is rendered with the workflow's ``list_template`` from the listed
  cases' masked data, numbered (``ZZGS-2026-000001``) and stored with its
  SHA-256 and period in ``notices``/``notice_cases``, and each listed case
  gets the ``publicised`` event naming it, its period end as ``deadline_at``
  and its automatic end (``timeout.fire``) due then; ``end_publicity`` is
  taken only after the period (a withdrawal or a correction may come
  earlier, as the engine allows); a case still awaiting publication at
  ``clock_now`` has no period end and no timer;
* each case is opened by the engine's own plan
  (:func:`engine.opening.plan_opening`: the same field checks, scope and
  opener's role as ``case new`` and ``case import``), and its first event and
  row are the engine's (:func:`engine.opening.opening_event`);
* references are taken from ``ref_counters`` in one block per year, before
  the first insert, in creation order;
* ``unique: open`` values are claimed in ``case_keys`` for every case not in
  a void state, and a household whose value is already claimed is skipped.

Not generated: the outbox rows and the timers of the states a case has left
(they would have been delivered and done long ago). So ``casework check`` on
a populated database passes every invariant but the outbox one, which names
the events whose messages were never generated for users who existed then.
Creation times are spread evenly over the 120 days before ``clock_now``.

The same seed, count and ``clock_now`` on the same database state give the
same cases, whatever the batch size. Memory grows with the cases per day,
not with ``count``: each batch is generated, written and dropped, except a
case listed on a list still being filled (one published after the next
case's creation: the list's hash, and so the hashes of the case's later
events, are known only when every case it lists has been walked), which is
kept, unhashed, until that list is published — about a week of cases at
~3 KB each (60,000, some 200 MB, for a million cases over 120 days).
Run it on a database nobody else is writing to (on SQLite the cases take the
ids after the largest when it starts; on PostgreSQL ids come from the
sequence).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select, text

from casework.synthetic import ZHANGZHOU_COUNTIES, SyntheticPeople
from db import schema
from engine import InputError, TransitionRefused, WorkflowDef, WorkflowNotFound, iso, load_definition
from engine.access import (
    ALL_SCOPES,
    DATA_ENTRY,
    SYSTEM_ACTOR,
    Actor,
    add_four_eyes_fact,
    four_eyes_conflict,
    waits_for,
)
from engine.audit import Event, Recorder, load_key, origin
from engine.calendar import Deadline, WorkingCalendar
from engine.deadlines import plan_state, publicity_timer, time_left
from engine.definition.model import SYSTEM_ROLE, TransitionDef
from engine.fields import is_empty
from engine.opening import Planned, opening_event, plan_opening
from engine.outbox import case_context
from engine.publication import Period, publicity_period
from engine.rules import check_ready
from engine.store.refs import allocate_refs, format_ref
from notifications.notices import render_with

__all__ = ["SPAN_DAYS", "populate"]

#: Cases are created evenly over this many days before ``clock_now``.
SPAN_DAYS = 120

_cases = schema.cases
_events = schema.audit_events
_keys = schema.case_keys
_timers = schema.timers
_versions = schema.workflow_versions
_notices = schema.notices
_notice_cases = schema.notice_cases

# How often, at each step, a case leaves the happy path (per void exit, per way back).
_EXIT_RATE = 0.025
_BACK_RATE = 0.05
_LATE_RATE = 0.12  # a step taken after its state's deadline
_PAUSE_RATE = 0.08  # an open case with a deadline, paused for missing materials
_PUBLISH_AT = dt.time(16, 0)  # each county publishes its 公示名单 at this hour of each working day (local)
_MAX_EVENTS = 40
_COUNTY_INDEX = {name: i for i, name in enumerate(ZHANGZHOU_COUNTIES)}

_COMMENTS = {
    "return": ("家庭人口与户口簿不一致，请核实后重新提交", "收入证明未加盖单位公章，请补正"),
    "reject": ("家庭月人均收入高于当地困难职工认定标准", "经入户核查，家庭困难情况与申报不符"),
    "withdraw": ("申请人主动撤回申请", "申请人已调离本单位，撤回申请"),
    "correct": ("经复核家庭月人均收入计算有误，退回更正后重新审核", "家庭人口与户口簿不一致，退回更正后重新审核"),
}
_FIX_COMMENT = "申报材料不全，请补齐后重新提交"
_PAUSE_REASONS = ("缺收入证明，待申请人补交", "户口簿信息待派出所核实", "待补充家庭成员病历材料")


def populate(
    engine: Engine,
    workflow: str,
    count: int,
    *,
    seed: int = 1,
    batch: int = 5000,
    clock_now: dt.datetime | None = None,
) -> int:
    """Write ``count`` realistic cases of the loaded ``workflow`` (its latest version); return how many.

    Args:
        engine: a database at schema head with ``workflow`` loaded.
        workflow: the workflow's name, e.g. ``poverty_archive``.
        count: how many cases.
        seed: the same seed (and ``clock_now``) gives the same cases.
        batch: cases per transaction (one ``executemany`` per table for them, events and keys).
        clock_now: "now" for the population (aware); default the system clock.

    Raises:
        InputError: ``count`` below 0, ``batch`` below 1 or a naive ``clock_now``.
        WorkflowNotFound: ``workflow`` is not loaded.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"count must be a whole number, 0 or more, not {count!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a whole number, 1 or more, not {batch!r}")
    now = clock_now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise InputError("clock_now must be an aware datetime (with a time zone)")
    now = now.astimezone(dt.UTC)
    with engine.connect() as conn:
        row = conn.execute(
            select(_versions).where(_versions.c.name == workflow).order_by(_versions.c.version.desc()).limit(1)
        ).first()
    if row is None:
        raise WorkflowNotFound(workflow)
    wf = load_definition(row.source, f"{row.name} v{row.version}", row.templates)
    if count == 0:
        return 0
    # the cyclic collector would scan every live object thousands of times over a population (a fifth of its
    # time, more with cases held for a list); a batch leaves ~60 objects in cycles behind, so it waits until
    # the end (reference counting still frees everything else as it goes)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _populate(engine, wf, row.id, count, seed, batch, now)
    finally:
        if collecting:
            gc.enable()


def _populate(
    engine: Engine, wf: WorkflowDef, version_id: int, count: int, seed: int, batch: int, now: dt.datetime
) -> int:
    calendar = WorkingCalendar.load()
    publisher = _Publisher(wf, calendar)
    walker = _Walker(wf, version_id, seed, now, calendar, Recorder(load_key(), origin()), publisher)
    timeline = _Timeline(wf, count, now, seed)
    with engine.begin() as conn:
        numbers = timeline.reserve_refs(conn)
    people = SyntheticPeople(seed)
    ids = _Ids()
    held: list[_Made] = []  # cases listed on a notice still being filled
    held_keys: set[tuple[str, str]] = set()  # their unique values, not yet claimed in case_keys
    for first in range(0, count, batch):
        size = min(batch, count - first)
        with engine.begin() as conn:
            households = _fresh_households(conn, wf, walker.opener_actor, people, size, now, held_keys)
            ready: list[_Made] = []
            for offset, (case_id, planned) in enumerate(zip(ids.take(conn, size), households, strict=True)):
                i = first + offset
                made = walker.walk(case_id, timeline.ref(i, numbers), timeline.created(i), planned)
                if made.complete:
                    ready.append(made)
                else:
                    held.append(made)
                    held_keys.update(walker.keys(made))
            # every case created before the next one is walked: the lists published before then are complete
            front = timeline.peek(first + size) if first + size < count else None
            if publisher.publish(conn, front):
                waiting = []
                for made in held:
                    if made.complete:
                        ready.append(made)
                        held_keys.difference_update(walker.keys(made))
                    else:
                        waiting.append(made)
                held = waiting
            _write(conn, walker, ready)
    assert not held, "every list published before clock_now is complete once every case is walked"
    return count


def _write(conn: Connection, walker: _Walker, made: list[_Made]) -> None:
    """Insert the cases, their events (hashed now that their notices are), keys, timers and notice listings."""
    cases, events, keys, timers, listings = [], [], [], [], []
    for m in made:
        case, trail, claimed = walker.seal(m)
        cases.append(case)
        events += trail
        keys += claimed
        timers += m.timers
        listings += [
            {"notice_id": n.id, "case_id": m.case_id, "kind": "list", "position": position} for n, position in m.notices
        ]
    if cases:
        conn.execute(insert(_cases), cases)
        conn.execute(insert(_events), events)
    if keys:
        conn.execute(insert(_keys), keys)
    if timers:
        conn.execute(insert(_timers), timers)
    if listings:
        conn.execute(insert(_notice_cases), listings)


# --------------------------------------------------------------------- batches


def _fresh_households(
    conn: Connection,
    wf: WorkflowDef,
    opener: Actor,
    people: SyntheticPeople,
    size: int,
    now: dt.datetime,
    held: set[tuple[str, str]],
) -> list[Planned]:
    """``size`` households planned for opening, none of whose unique values is already claimed.

    ``held``: (field, value) claimed by cases generated but not yet written.
    """
    out: list[Planned] = []
    while len(out) < size:
        drawn = [plan_opening(wf, opener, _fields(wf, people.household()), now) for _ in range(size - len(out))]
        for name in wf.unique_fields:
            values = [str(d.values[name]) for d in drawn if d.values.get(name) is not None]
            taken = {value for value in values if (name, value) in held}
            for at in range(0, len(values), 1000):  # IN lists of a size every backend takes
                taken.update(
                    conn.execute(
                        select(_keys.c.value).where(
                            _keys.c.workflow == wf.name,
                            _keys.c.field == name,
                            _keys.c.value.in_(values[at : at + 1000]),
                        )
                    ).scalars()
                )
            drawn = [d for d in drawn if str(d.values.get(name)) not in taken]
        out += drawn
    return out


def _fields(wf: WorkflowDef, household: dict[str, Any]) -> dict[str, Any]:
    """The household's values of the workflow's fields (its county as the scope field, if the names differ)."""
    values = {name: raw for name, raw in household.items() if name in wf.fields}
    scope = wf.scope_field
    if scope and scope not in values:
        values[scope] = household["county"]
    return values


class _Ids:
    """Case ids, ``size`` at a time, inside the batch's transaction.

    On PostgreSQL from the sequence, so cases opened later through the engine
    never collide with these; on SQLite counting on from the largest id when
    population started (cases held for a notice are written after later ones).
    """

    def __init__(self) -> None:
        self._top: int | None = None

    def take(self, conn: Connection, size: int) -> list[int]:
        if conn.dialect.name == "postgresql":
            got = conn.execute(
                text("SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, :n)"), {"n": size}
            ).scalars()
            return sorted(got)
        if self._top is None:
            self._top = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar_one())
        first, self._top = self._top + 1, self._top + size
        return list(range(first, first + size))


# -------------------------------------------------------------------- timeline


class _Timeline:
    """When case ``i`` of ``count`` was created, and its reference: both in creation order."""

    def __init__(self, wf: WorkflowDef, count: int, now: dt.datetime, seed: int) -> None:
        self.count = count
        self.zone = ZoneInfo(wf.timezone)
        self.prefix = wf.ref_prefix
        self.end = _micros(now)
        self.span = SPAN_DAYS * 86_400_000_000
        self.start = self.end - self.span
        self.step = max(self.span // count, 1)
        self._rng = random.Random(f"timeline:{seed}")
        self._ahead: dict[int, dt.datetime] = {}
        # Case i belongs to the year its base time (start + i*span/count) falls in; its creation time stays
        # inside that year, so the per-year counts are known before anything is generated.
        first_year = _from_micros(self.start).astimezone(self.zone).year
        last_year = now.astimezone(self.zone).year
        self.years: list[tuple[int, int, int]] = []  # (year, first i, end of year in µs)
        first = 0
        for year in range(first_year, last_year + 1):
            boundary = _micros(dt.datetime(year + 1, 1, 1, tzinfo=self.zone))
            before = min(count, max(0, -(-(boundary - self.start) * count // self.span)))
            if before > first:
                self.years.append((year, first, boundary))
            first = max(first, before)

    def reserve_refs(self, conn: Connection) -> dict[int, int]:
        """Take each year's block of numbers from ``ref_counters``; the number before each block, by year."""
        blocks = {}
        ends = [first for _, first, _ in self.years[1:]] + [self.count]
        for (year, first, _), end in zip(self.years, ends, strict=True):
            blocks[year] = allocate_refs(conn, self.prefix, year, end - first) - 1
        return blocks

    def _year_of(self, i: int) -> tuple[int, int, int]:
        found = self.years[0]
        for entry in self.years:
            if entry[1] <= i:
                found = entry
        return found

    def ref(self, i: int, blocks: dict[int, int]) -> str:
        year, first, _ = self._year_of(i)
        return format_ref(self.prefix, year, blocks[year] + i - first + 1)

    def peek(self, i: int) -> dt.datetime:
        """When case ``i`` is created, computed ahead (the next call of :meth:`created` for ``i`` returns it)."""
        self._ahead[i] = at = self.created(i)
        return at

    def created(self, i: int) -> dt.datetime:
        """When case ``i`` is created; called in order of ``i`` (the times are drawn from one random stream)."""
        ahead = self._ahead.pop(i, None)
        if ahead is not None:
            return ahead
        _, _, boundary = self._year_of(i)
        base = self.start + i * self.span // self.count
        at = min(base + int(self._rng.random() * self.step), boundary - 1, self.end - 1)
        return _from_micros(at)


def _micros(at: dt.datetime) -> int:
    delta = at.astimezone(dt.UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ------------------------------------------------------------------- publicity


@dataclass(eq=False)
class _Notice:
    """A county's 公示名单 published at ``at``: the cases awaiting publication then, as the engine lists them.

    Filled while the walk passes ``at`` (cases are walked in creation order);
    numbered, rendered and stored by :meth:`_Publisher.publish` once every
    case created before ``at`` has been walked.
    """

    scope: str
    at: dt.datetime
    period: Period
    listed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (case id, the case as shown)
    id: int | None = None
    number: str = ""
    sha256: str = ""
    title: str = ""


class _Publisher:
    """When each county publishes its list, and the lists being filled: what ``casework notice publish`` does.

    Each county publishes at 16:00 on every working day on which some of its
    cases await publication (a day without any publishes nothing, as the
    engine returns no notice); the walk lists no case on a list due at or
    after ``clock_now``.
    """

    def __init__(self, wf: WorkflowDef, calendar: WorkingCalendar) -> None:
        self.wf = wf
        self.calendar = calendar
        self.zone = ZoneInfo(wf.timezone)
        p = wf.publicity
        self.state = p.state if p is not None and p.list_template is not None else None
        self._render = render_with(wf, p.list_template) if p is not None and p.list_template else None
        self._open: dict[tuple[str, dt.datetime], _Notice] = {}
        self._slots: dict[dt.date, dt.datetime | None] = {}
        self._periods: dict[dt.date, Period] = {}
        scopes = wf.fields[wf.scope_field] if wf.scope_field else None
        # lists published at the same time are numbered in the order the workflow names the counties
        self._order = {scope: i for i, scope in enumerate(scopes.choices or ())} if scopes else {}

    def _slot_on(self, day: dt.date) -> dt.datetime | None:
        """When the lists of ``day`` are published; None on a rest day."""
        if day not in self._slots:
            at = dt.datetime.combine(day, _PUBLISH_AT, self.zone).astimezone(dt.UTC)
            self._slots[day] = at if self.calendar.is_working_day(day) else None
        return self._slots[day]

    def slot(self, after: dt.datetime) -> tuple[dt.datetime, Period] | None:
        """The first list published after ``after`` (a case entering publicity then awaits it), and its period.

        None if the workflow publishes no lists (no ``publicity.list_template``).
        """
        if self.state is None:
            return None
        day = after.astimezone(self.zone).date()
        while True:
            at = self._slot_on(day)
            if at is not None and at > after:
                period = self._periods.get(day)
                if period is None:
                    period = self._periods[day] = publicity_period(self.wf, day, self.calendar)
                return at, period
            day += dt.timedelta(days=1)

    def list_case(
        self, scope: str, at: dt.datetime, period: Period, case_id: int, shown: dict[str, Any]
    ) -> tuple[_Notice, int]:
        """Put a case on ``scope``'s list published at ``at``; the list and the case's position on it."""
        notice = self._open.get((scope, at))
        if notice is None:
            notice = self._open[(scope, at)] = _Notice(scope, at, period)
        notice.listed.append((case_id, shown))
        return notice, len(notice.listed)

    def publish(self, conn: Connection, before: dt.datetime | None) -> bool:
        """Number, render and store every list published before ``before`` (all of them if None); any?

        As :meth:`engine.publicity.Publicity.publish_list_notice` stores one:
        the same context (the listed cases masked, numbered from 1 in case
        order), HTML from the workflow's list template, its SHA-256, the
        period, and a number from the ``{prefix}GS`` counter of the list's
        year, in order of publication.
        """
        due = sorted(
            (n for n in self._open.values() if before is None or n.at < before),
            key=lambda n: (n.at, self._order.get(n.scope, len(self._order)), n.scope),
        )
        if not due:
            return False
        wf, p, render = self.wf, self.wf.publicity, self._render
        assert p is not None and render is not None
        prefix = f"{wf.ref_prefix}GS"
        years: dict[int, int] = {}
        for n in due:
            years[n.period.start.year] = years.get(n.period.start.year, 0) + 1
        following = {year: allocate_refs(conn, prefix, year, k) for year, k in years.items()}
        rows = []
        for n in due:
            del self._open[(n.scope, n.at)]
            year = n.period.start.year
            n.number = format_ref(prefix, year, following[year])
            following[year] += 1
            start, end = n.period.start.isoformat(), n.period.end.isoformat()
            context = {
                "workflow": {"name": wf.name, "title": wf.title},
                "notice": {
                    "number": n.number,
                    "date": start,
                    "period_start": start,
                    "period_end": end,
                    "period_days": n.period.days,
                    "period_length": n.period.length,
                },
                "publicity": {"issuer": p.issuer, "contact": p.contact},
                "cases": [{"no": i, **shown} for i, (_, shown) in enumerate(n.listed, 1)],
                "scope": n.scope,
            }
            title, html = render(context)
            n.title, n.sha256 = title, hashlib.sha256(html.encode("utf-8")).hexdigest()
            values = {
                "key": f"list:{wf.name}:{n.scope}:{start}:{n.listed[0][0]}",
                "number": n.number,
                "kind": "list",
                "workflow": wf.name,
                "scope": n.scope,
                "title": title[:300],
                "html": html,
                "sha256": n.sha256,
                "context": context,
                "period_start": n.period.start,
                "period_end": n.period.end,
                "created_at": n.at,
            }
            rows.append(values)
            n.listed = []  # its cases are written with their own rows; what the list showed is stored
        stored = conn.execute(insert(_notices).returning(_notices.c.id, sort_by_parameter_order=True), rows)
        for n, nid in zip(due, stored.scalars(), strict=True):
            n.id = int(nid)
        return True


# ------------------------------------------------------------------------ walk


class _Spec(NamedTuple):
    """An event of the walk, hashed into the chain once the notices it names are published."""

    at: dt.datetime
    actor: str
    role: str | None
    action: str
    trigger: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None
    changes: Mapping[str, Any]
    notice: _Notice | None = None  # the list a ``publicised`` event records


@dataclass(eq=False, slots=True)
class _Made:
    """A walked case: what its rows are made of, built by :meth:`_Walker.seal` once its lists are published.

    Kept small (no rows, no hashes yet): a case listed on a list still being
    filled is held in memory until the list is published.
    """

    case_id: int
    ref: str
    created: dt.datetime
    opened: Planned  # as its clerk opened it
    data: dict[str, Any]
    state: str
    entered: dt.datetime
    last: dt.datetime
    deadline_at: dt.datetime | None
    deadline_provisional: bool
    paused_at: dt.datetime | None
    paused_left: dict[str, Any] | None
    specs: list[_Spec]
    timers: list[dict[str, Any]]
    notices: list[tuple[_Notice, int]]  # the lists it is on, and its position on each

    @property
    def complete(self) -> bool:
        """Whether every list the case is on is published, so its trail can be hashed and written."""
        return all(n.id is not None for n, _ in self.notices)


class _Walker:
    """Moves one case through the workflow as its people would have, recording every event."""

    def __init__(
        self,
        wf: WorkflowDef,
        version_id: int,
        seed: int,
        now: dt.datetime,
        calendar: WorkingCalendar,
        recorder: Recorder,
        publisher: _Publisher,
    ) -> None:
        self.wf = wf
        self.recorder = recorder
        self.publisher = publisher
        self._context = recorder.context()
        self.version_id = version_id
        self.now = now
        self.calendar = calendar
        self.rng = random.Random(f"walk:{seed}")
        self.zone = ZoneInfo(wf.timezone)
        self._deadlines: dict[tuple[str, str, dt.date], Deadline] = {}
        self.forward, self.exits, self.backs = _routes(wf)
        openers = [r for t in wf.transitions_from(wf.initial_state) for r in t.by if r != SYSTEM_ROLE]
        self.opener = openers[0] if openers else SYSTEM_ROLE
        # who opens the cases, as the plan sees them (each event then names the county's own clerk)
        self.opener_actor = Actor(self.opener, (self.opener,), (ALL_SCOPES,))
        self.back_names = {t.name for ts in self.backs.values() for t in ts}
        self._ready_memo: dict[tuple[Any, ...], bool] = {}
        required = [f.name for f in wf.fields.values() if f.required]
        self._reads = {
            t.name: (
                sorted({a for g in (t.when, t.unless) if g is not None for a in g.case_attributes}),
                [*t.require, *required],
            )
            for t in wf.transitions.values()
        }

    # --- time

    def _due(self, state: str, kind: str, entered: dt.datetime) -> Deadline:
        """The state's deadline (``kind`` "deadline") or timeout due time, cached per entry day."""
        st = self.wf.states[state]
        duration = st.deadline if kind == "deadline" else st.timeout.after  # type: ignore[union-attr]
        assert duration is not None
        if duration.unit == "hours":
            return self.calendar.deadline(entered, duration.amount, duration.unit, self.wf.timezone)
        key = (state, kind, entered.astimezone(self.zone).date())
        found = self._deadlines.get(key)
        if found is None:
            found = self.calendar.deadline(entered, duration.amount, duration.unit, self.wf.timezone)
            self._deadlines[key] = found
        return found

    def _when(
        self, state: str, t: TransitionDef, entered: dt.datetime, last: dt.datetime, ends: dt.datetime | None
    ) -> dt.datetime:
        """When ``t`` is taken in ``state`` (entered at ``entered``, last event at ``last``).

        ``ends``: in publicity, when the period of the list the case awaits would end.
        """
        rng = self.rng
        st = self.wf.states[state]
        if st.timeout is not None:
            # publicity's automatic end is due when the period of the list ends, not counted from entry
            due = ends if ends is not None else self._due(state, "timeout", entered).at
            if st.timeout.fire == t.name:
                # the scheduler's sweep fires it a little after it falls due
                at = due + dt.timedelta(seconds=rng.random() * 60)
            else:
                at = entered + (due - entered) * rng.uniform(0.05, 0.95)  # before the timeout would
        elif st.deadline is not None:
            due = self._due(state, "deadline", entered).at
            share = rng.uniform(1.0, 1.6) if rng.random() < _LATE_RATE else rng.uniform(0.05, 0.95)
            at = entered + (due - entered) * share
        else:
            at = last + dt.timedelta(hours=rng.uniform(0.3, 72))
        return max(at.astimezone(dt.UTC), last + dt.timedelta(seconds=1))

    # --- people

    def _person(self, role: str, scope: str | None, t: TransitionDef | None, fired_by: dict[str, list[str]]) -> str:
        """A plausible username for ``role`` in ``scope``: clerk03 (someone else if four-eyes says so)."""
        if role == SYSTEM_ROLE:
            return SYSTEM_ROLE
        name = f"{role}{_COUNTY_INDEX.get(scope or '', 0):02d}"
        if t is not None and four_eyes_conflict(name, t, fired_by):
            name += "b"
        return name

    def _role(self, t: TransitionDef, state: str, kind: str, system_first: bool) -> str:
        people = [r for r in t.by if r != SYSTEM_ROLE]
        if (system_first and SYSTEM_ROLE in t.by) or not people:
            return SYSTEM_ROLE
        if kind == "back":
            # a case is sent back by whoever works on it in this state (the approver in 审批), if they may
            ahead = self.forward[state]
            own = [r for r in ahead.by if r in people] if ahead is not None else []
            if own:
                return own[0]
        return people[0]

    # --- the walk

    def _choose(self, state: str) -> tuple[TransitionDef | None, str]:
        """The next step from ``state``: ("forward" | "exit" | "back"), or None when it has none."""
        rng = self.rng
        for t in self.exits[state]:
            if rng.random() < _EXIT_RATE:
                return t, "exit"
        for t in self.backs[state]:
            if rng.random() < _BACK_RATE:
                return t, "back"
        forward = self.forward[state]
        return forward, "forward"

    def _ready(self, t: TransitionDef, ref: str, state: str, data: dict[str, Any]) -> bool:
        """Whether the engine's own check (required fields, when/unless guards) lets ``t`` through.

        Memoised on just what the check reads, so the trail never shows a step
        the rules would have refused, at the price of a dict lookup per step.
        """
        reads, needed = self._reads[t.name]
        key = None
        if "ref" not in reads:
            key = (
                t.name,
                state,
                tuple(_frozen(data.get(a)) for a in reads),
                tuple(is_empty(data.get(f)) for f in needed),
            )
            known = self._ready_memo.get(key)
            if known is not None:
                return known
        try:
            check_ready(self.wf, ref, state, t, data, 0)
            ok = True
        except TransitionRefused:
            ok = False
        if key is not None:
            self._ready_memo[key] = ok
        return ok

    def walk(self, case_id: int, ref: str, created: dt.datetime, planned: Planned) -> _Made:
        """One case: its row, its audit events (hashed when written), its unique keys, timers and notices."""
        wf, rng, now = self.wf, self.rng, self.now
        data, scope = planned.values, planned.scope
        state = wf.initial_state
        opened = replace(planned, actor=self._person(self.opener, scope, None, {}))
        specs: list[_Spec] = []
        notices: list[tuple[_Notice, int]] = []
        # what the four-eyes rule reads, as the engine keeps it: firers and who entered the data (the opener)
        fired_by: dict[str, list[str]] = {DATA_ENTRY: [opened.actor]}
        entered = last = created
        needs_fix = fixed = False
        public = wf.publicity.state if wf.publicity is not None else None
        published: _Notice | None = None  # the list that started this stay's publicity
        while len(specs) + 1 < _MAX_EVENTS and not _at_rest(wf, state):
            if needs_fix and not fixed:
                fix = self._fix(data)
                if fix:
                    at = last + dt.timedelta(hours=rng.uniform(2, 96))
                    if at >= now:
                        break
                    t0 = self.forward[state]
                    role = self._role(t0, state, "forward", False) if t0 else self.opener
                    person = self._person(role, scope, None, fired_by)
                    specs.append(_Spec(at, person, role, "updated", None, state, state, None, fix))
                    add_four_eyes_fact(fired_by, specs[-1])
                    data = {**data, **{k: new for k, (_, new) in fix.items()}}
                    last = at
                fixed = True
            t, kind = self._choose(state)
            if t is None:
                break
            # a list is published per scope: a case without one is never listed (the engine's alike)
            awaiting = state == public and published is None and scope is not None
            slot = self.publisher.slot(entered) if awaiting else None
            ends = published.period.ends_at if published is not None else slot[1].ends_at if slot else None
            at = self._when(state, t, entered, last, ends)
            if slot is not None and scope is not None and slot[0] < now and slot[0] < at:
                # the county's list is published while the case awaits it: its publicity starts
                shown = case_context(wf, ref, state, data)
                published, position = self.publisher.list_case(scope, slot[0], slot[1], case_id, shown)
                notices.append((published, position))
                specs.append(_Spec(slot[0], SYSTEM_ACTOR, None, "publicised", None, state, state, None, {}, published))
                last = slot[0]
                at = max(at, last + dt.timedelta(seconds=1))
            if at >= now:
                break  # still waiting in this state
            if state == public and published is None and kind == "forward":
                break  # never published (no list template, no scope): only a step back or out takes it out
            if not self._ready(t, ref, state, data):
                # refused (a document missing): returned for correction once, else rejected or withdrawn
                back = self.backs[state][:1] if kind == "forward" and not fixed else []
                t = next((a for a in [*back, *self.exits[state]] if self._ready(a, ref, state, data)), None)
                if t is None:
                    break  # stuck here until someone completes the case
                needs_fix = needs_fix or bool(back and t is back[0])
            is_timeout = wf.states[state].timeout is not None and wf.states[state].timeout.fire == t.name  # type: ignore[union-attr]
            role = self._role(t, state, kind, is_timeout)
            actor = self._person(role, scope, t, fired_by)
            comment = self._comment(t, needs_fix and kind != "back")
            specs.append(_Spec(at, actor, role, "fired", t.name, state, t.dest, comment, {}))
            add_four_eyes_fact(fired_by, specs[-1])
            if t.dest != state:
                entered = at
                published = None
            state, last = t.dest, at
        return self._finish(
            case_id, ref, created, opened, data, state, entered, last, specs, fired_by, published, notices
        )

    def _fix(self, data: dict[str, Any]) -> dict[str, list[Any]]:
        """What the clerk completes after a return: every checklist's missing items."""
        fix = {}
        for f in self.wf.fields.values():
            if f.type == "checklist" and f.items and data.get(f.name) != list(f.items):
                fix[f.name] = [data.get(f.name), list(f.items)]
        return fix

    def _comment(self, t: TransitionDef, missing_materials: bool) -> str | None:
        if not t.comment_required:
            return None
        if missing_materials and t.name in self.back_names:
            return _FIX_COMMENT
        choices = _COMMENTS.get(t.name)
        return self.rng.choice(choices) if choices else f"{t.label}：经核实办理"

    def _finish(
        self,
        case_id: int,
        ref: str,
        created: dt.datetime,
        opened: Planned,
        data: dict[str, Any],
        state: str,
        entered: dt.datetime,
        last: dt.datetime,
        specs: list[_Spec],
        fired_by: dict[str, list[str]],
        published: _Notice | None,
        notices: list[tuple[_Notice, int]],
    ) -> _Made:
        wf, now = self.wf, self.now
        st = wf.states[state]
        deadline = self._due(state, "deadline", entered) if st.deadline is not None else None
        deadline_at = deadline.at.astimezone(dt.UTC) if deadline else None
        paused_at, paused_left = None, None
        actors = [r for t in wf.transitions_from(state) for r in t.by if r != SYSTEM_ROLE]
        if deadline_at is not None and actors and self.rng.random() < _PAUSE_RATE:
            latest = min(now, deadline_at)
            if latest > last + dt.timedelta(seconds=2):
                paused_at = last + (latest - last) * self.rng.uniform(0.1, 0.9)
                left = time_left(self.calendar, wf, state, paused_at, deadline_at)
                paused_left = {**left, "amount": max(left["amount"], 0)}
                role = actors[0]
                person = self._person(role, opened.scope, None, fired_by)
                reason = self.rng.choice(_PAUSE_REASONS)
                changes = {"deadline": [iso(deadline_at), None]}  # as Casework.pause records it
                specs.append(_Spec(paused_at, person, role, "paused", None, state, state, reason, changes))
                last = paused_at
        if published is not None:
            # publicity: the period of the list it is on is its deadline (a notice sets no other)
            deadline_at = published.period.ends_at
        timers = []
        if not st.final:
            _, rows = plan_state(wf, state, entered, self.calendar, deadline)
            # the state's timers as the engine leaves them: due ones have fired (the rows stay, marked),
            # a pause cancelled the reminders and escalations; publicity's automatic end was written
            # by the list's publication, due at the end of its period
            for r in rows:
                row = {**r, "case_id": case_id, "created_at": entered, "fired_at": None}
                if paused_at is not None and r["kind"] != "timeout":
                    row["status"] = "cancelled"
                elif r["due_at"] <= now:
                    row.update(status="fired", fired_at=r["due_at"])
                timers.append(row)
            if published is not None:
                for r in publicity_timer(wf, state, entered, published.period.ends_at):
                    row = {**r, "case_id": case_id, "created_at": published.at, "fired_at": None}
                    if r["due_at"] <= now:
                        row.update(status="fired", fired_at=r["due_at"])
                    timers.append(row)
        provisional = bool(deadline and deadline.provisional)
        return _Made(
            case_id,
            ref,
            created,
            opened,
            data,
            state,
            entered,
            last,
            deadline_at,
            provisional,
            paused_at,
            paused_left,
            specs,
            timers,
            notices,
        )

    def keys(self, made: _Made) -> list[tuple[str, str]]:
        """The (field, value) of each ``unique`` value the case claims: none if it is void."""
        if self.wf.states[made.state].void:
            return []
        return [(name, str(made.data[name])) for name in self.wf.unique_fields if made.data.get(name) is not None]

    def seal(self, made: _Made) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The case's row, its audit rows (chained and hashed, now that its lists are published) and its keys."""
        wf, case_id, ref = self.wf, made.case_id, made.ref
        prev = opening_event(wf, made.opened, ref, made.created, self.recorder)
        events = [prev.row(case_id)]
        # what the four-eyes rule reads, as the engine keeps it (replayed here, not held with the case)
        fired_by: dict[str, list[str]] = {}
        add_four_eyes_fact(fired_by, prev)
        for s in made.specs:
            changes, comment = s.changes, s.comment
            n = s.notice
            if n is not None:  # as the engine links a published list into each listed case's trail
                start, end = n.period.start.isoformat(), n.period.end.isoformat()
                changes = {
                    "notice": [None, n.number],
                    "notice_sha256": [None, n.sha256],
                    "period": [None, [start, end]],
                }
                comment = f"公示 {n.number}：{n.title}；公示期 {start} 至 {end}"
            prev = Event(
                ref,
                prev.seq + 1,
                s.at,
                s.actor,
                s.role,
                s.action,
                s.trigger,
                s.from_state,
                s.to_state,
                comment,
                changes,
                prev.hash,
                self._context,
            )
            events.append(prev.row(case_id))
            add_four_eyes_fact(fired_by, prev)
        case = {
            "id": case_id,
            "ref": ref,
            "workflow": wf.name,
            "workflow_version_id": self.version_id,
            "state": made.state,
            "scope": made.opened.scope,
            "data": made.data,
            "fired_by": fired_by,
            "version": prev.seq,
            "audit_seq": prev.seq,
            "audit_head": prev.hash,
            "audit_seal": self.recorder.seal(ref, prev.seq, prev.hash),
            "entered_at": made.entered,
            "deadline_at": made.deadline_at,
            "deadline_provisional": made.deadline_provisional,
            "paused_at": made.paused_at,
            "paused_left": made.paused_left,
            "created_by": made.opened.actor,
            "created_at": made.created,
            "updated_at": made.last,
        }
        keys = [{"workflow": wf.name, "field": f, "value": v, "case_id": case_id} for f, v in self.keys(made)]
        return case, events, keys


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _at_rest(wf: WorkflowDef, state: str) -> bool:
    """Where a generated case's story ends: a final state, or one that waits for no one (a filed archive,
    which leaves only through a later annual review)."""
    return wf.states[state].final or not waits_for(wf, state)


def _routes(
    wf: WorkflowDef,
) -> tuple[dict[str, TransitionDef | None], dict[str, list[TransitionDef]], dict[str, list[TransitionDef]]]:
    """Per state: the step towards a filed (non-void final) state, the steps to void states, the ways back.

    Only steps people take count (plus each state's own timeout); the
    publicity's ``uphold`` step is left out, as it comes with an objection.
    """
    uphold = wf.publicity.uphold if wf.publicity else None

    def taken(t: TransitionDef, state: str) -> bool:
        st = wf.states[state]
        own_timeout = st.timeout is not None and st.timeout.fire == t.name
        return t.name != uphold and (own_timeout or any(r != SYSTEM_ROLE for r in t.by))

    # steps from each state to a non-void final state, by breadth-first search backwards
    distance = {s.name: 0 for s in wf.states.values() if _at_rest(wf, s.name) and not s.void}
    frontier = list(distance)
    while frontier:
        nxt = []
        for t in wf.transitions.values():
            if t.dest in frontier:
                for src in t.sources:
                    if src not in distance and taken(t, src):
                        distance[src] = distance[t.dest] + 1
                        nxt.append(src)
        frontier = nxt
    forward: dict[str, TransitionDef | None] = {}
    exits: dict[str, list[TransitionDef]] = {}
    backs: dict[str, list[TransitionDef]] = {}
    for state in wf.states:
        steps = [t for t in wf.transitions_from(state) if taken(t, state)]
        here = distance.get(state)
        ahead = [t for t in steps if t.dest in distance and here is not None and distance[t.dest] < here]
        forward[state] = ahead[0] if ahead else None
        exits[state] = [t for t in steps if wf.states[t.dest].final and wf.states[t.dest].void]
        backs[state] = [
            t for t in steps if not wf.states[t.dest].final and here is not None and distance.get(t.dest, -1) > here
        ]
    return forward, exits, backs
