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
  sometimes rejected or withdrawn, and it stops in whatever state it has
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
* each case is opened by the engine's own plan
  (:func:`engine.opening.plan_opening`: the same field checks, scope and
  opener's role as ``case new`` and ``case import``), and its first event and
  row are the engine's (:func:`engine.opening.opening_event`);
* references are taken from ``ref_counters`` in one block per year, before
  the first insert, in creation order;
* ``unique: open`` values are claimed in ``case_keys`` for every case not in
  a void state, and a household whose value is already claimed is skipped.

Not generated: the outbox rows, notices and timers of the states a case has
left (they would have been delivered and done long ago). So ``casework check``
on a populated database passes every invariant but the outbox one, which
names the events whose messages and notices were never generated.
Creation times are spread evenly over the 120 days before ``clock_now``.

The same seed, count and ``clock_now`` on the same database state give the
same cases. Memory stays flat: each batch is generated, written and dropped.
Run it on a database nobody else is writing to (on SQLite the batch takes the
next ids after the largest; on PostgreSQL ids come from the sequence).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, insert, select, text

from casework.synthetic import ZHANGZHOU_COUNTIES, SyntheticPeople
from db import schema
from engine import InputError, TransitionRefused, WorkflowDef, WorkflowNotFound, iso, load_definition
from engine.access import ALL_SCOPES, Actor, four_eyes_conflict
from engine.audit import Event
from engine.calendar import Deadline, WorkingCalendar
from engine.deadlines import plan_state, time_left
from engine.definition.model import SYSTEM_ROLE, TransitionDef
from engine.fields import is_empty
from engine.opening import Planned, opening_event, plan_opening
from engine.rules import check_ready
from engine.store.refs import allocate_refs, format_ref

__all__ = ["SPAN_DAYS", "populate"]

#: Cases are created evenly over this many days before ``clock_now``.
SPAN_DAYS = 120

_cases = schema.cases
_events = schema.audit_events
_keys = schema.case_keys
_timers = schema.timers
_versions = schema.workflow_versions

# How often, at each step, a case leaves the happy path (per void exit, per way back).
_EXIT_RATE = 0.025
_BACK_RATE = 0.05
_LATE_RATE = 0.12  # a step taken after its state's deadline
_PAUSE_RATE = 0.08  # an open case with a deadline, paused for missing materials
_MAX_EVENTS = 40
_COUNTY_INDEX = {name: i for i, name in enumerate(ZHANGZHOU_COUNTIES)}

_COMMENTS = {
    "return": ("家庭人口与户口簿不一致，请核实后重新提交", "收入证明未加盖单位公章，请补正"),
    "reject": ("家庭月人均收入高于当地困难职工认定标准", "经入户核查，家庭困难情况与申报不符"),
    "withdraw": ("申请人主动撤回申请", "申请人已调离本单位，撤回申请"),
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
    walker = _Walker(wf, row.id, seed, now, WorkingCalendar.load())
    timeline = _Timeline(wf, count, now, seed)
    with engine.begin() as conn:
        numbers = timeline.reserve_refs(conn)
    people = SyntheticPeople(seed)
    for first in range(0, count, batch):
        size = min(batch, count - first)
        with engine.begin() as conn:
            households = _fresh_households(conn, wf, walker.opener_actor, people, size, now)
            ids = _reserve_ids(conn, size)
            cases, events, keys, timers = [], [], [], []
            for offset, (case_id, planned) in enumerate(zip(ids, households, strict=True)):
                i = first + offset
                made = walker.walk(case_id, timeline.ref(i, numbers), timeline.created(i), planned)
                cases.append(made.case)
                events += made.events
                keys += made.keys
                timers += made.timers
            conn.execute(insert(_cases), cases)
            conn.execute(insert(_events), events)
            if keys:
                conn.execute(insert(_keys), keys)
            if timers:
                conn.execute(insert(_timers), timers)
    return count


# --------------------------------------------------------------------- batches


def _fresh_households(
    conn: Connection, wf: WorkflowDef, opener: Actor, people: SyntheticPeople, size: int, now: dt.datetime
) -> list[Planned]:
    """``size`` households planned for opening, none of whose unique values is already claimed."""
    out: list[Planned] = []
    while len(out) < size:
        drawn = [plan_opening(wf, opener, _fields(wf, people.household()), now) for _ in range(size - len(out))]
        for name in wf.unique_fields:
            values = [str(d.values[name]) for d in drawn if d.values.get(name) is not None]
            taken: set[str] = set()
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


def _reserve_ids(conn: Connection, size: int) -> list[int]:
    """The next ``size`` case ids, inside the batch's transaction."""
    if conn.dialect.name == "postgresql":
        # from the sequence, so cases opened later through the engine never collide with these
        got = conn.execute(
            text("SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, :n)"), {"n": size}
        ).scalars()
        return sorted(got)
    top = conn.execute(text("SELECT coalesce(max(id), 0) FROM cases")).scalar_one()
    return list(range(top + 1, top + size + 1))


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

    def created(self, i: int) -> dt.datetime:
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


# ------------------------------------------------------------------------ walk


@dataclass
class _Made:
    case: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    timers: list[dict[str, Any]] = field(default_factory=list)


class _Walker:
    """Moves one case through the workflow as its people would have, recording every event."""

    def __init__(
        self, wf: WorkflowDef, version_id: int, seed: int, now: dt.datetime, calendar: WorkingCalendar
    ) -> None:
        self.wf = wf
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

    def _when(self, state: str, t: TransitionDef, entered: dt.datetime, last: dt.datetime) -> dt.datetime:
        """When ``t`` is taken in ``state`` (entered at ``entered``, last event at ``last``)."""
        rng = self.rng
        st = self.wf.states[state]
        if st.timeout is not None:
            due = self._due(state, "timeout", entered).at
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

    @staticmethod
    def _role(t: TransitionDef, system_first: bool) -> str:
        people = [r for r in t.by if r != SYSTEM_ROLE]
        if (system_first and SYSTEM_ROLE in t.by) or not people:
            return SYSTEM_ROLE
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
        """One case: its row, its audit events, its unique keys and its pending timers."""
        wf, rng, now = self.wf, self.rng, self.now
        data, scope = planned.values, planned.scope
        state = wf.initial_state
        creator = self._person(self.opener, scope, None, {})
        chain = [opening_event(wf, replace(planned, actor=creator), ref, created)]
        fired_by: dict[str, list[str]] = {}
        entered = last = created
        needs_fix = fixed = False
        while len(chain) < _MAX_EVENTS and not wf.states[state].final:
            if needs_fix and not fixed:
                fix = self._fix(data)
                if fix:
                    at = last + dt.timedelta(hours=rng.uniform(2, 96))
                    if at >= now:
                        break
                    t0 = self.forward[state]
                    role = self._role(t0, False) if t0 else self.opener
                    person = self._person(role, scope, None, fired_by)
                    chain.append(self._event(chain, ref, at, person, role, "updated", None, state, state, None, fix))
                    data = {**data, **{k: new for k, (_, new) in fix.items()}}
                    last = at
                fixed = True
            t, kind = self._choose(state)
            if t is None:
                break
            at = self._when(state, t, entered, last)
            if at >= now:
                break  # still waiting in this state
            if not self._ready(t, ref, state, data):
                # refused (a document missing): returned for correction once, else rejected or withdrawn
                back = self.backs[state][:1] if kind == "forward" and not fixed else []
                t = next((a for a in [*back, *self.exits[state]] if self._ready(a, ref, state, data)), None)
                if t is None:
                    break  # stuck here until someone completes the case
                needs_fix = needs_fix or bool(back and t is back[0])
            is_timeout = wf.states[state].timeout is not None and wf.states[state].timeout.fire == t.name  # type: ignore[union-attr]
            role = self._role(t, is_timeout)
            actor = self._person(role, scope, t, fired_by)
            comment = self._comment(t, needs_fix and kind != "back")
            chain.append(self._event(chain, ref, at, actor, role, "fired", t.name, state, t.dest, comment, {}))
            if actor not in fired_by.setdefault(t.name, []):
                fired_by[t.name].append(actor)
            if t.dest != state:
                entered = at
            state, last = t.dest, at
        return self._finish(case_id, ref, created, data, scope, state, entered, last, chain, fired_by)

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

    @staticmethod
    def _event(
        chain: list[Event],
        ref: str,
        at: dt.datetime,
        actor: str,
        role: str | None,
        action: str,
        trigger: str | None,
        src: str | None,
        dest: str | None,
        comment: str | None,
        changes: dict[str, Any],
    ) -> Event:
        """The event after the chain's last one."""
        prev = chain[-1]
        return Event(ref, prev.seq + 1, at, actor, role, action, trigger, src, dest, comment, changes, prev.hash)

    def _finish(
        self,
        case_id: int,
        ref: str,
        created: dt.datetime,
        data: dict[str, Any],
        scope: str | None,
        state: str,
        entered: dt.datetime,
        last: dt.datetime,
        chain: list[Event],
        fired_by: dict[str, list[str]],
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
                person = self._person(role, scope, None, fired_by)
                reason = self.rng.choice(_PAUSE_REASONS)
                changes = {"deadline": [iso(deadline_at), None]}  # as Casework.pause records it
                chain.append(
                    self._event(chain, ref, paused_at, person, role, "paused", None, state, state, reason, changes)
                )
                last = paused_at
        head = chain[-1]
        made = _Made(
            {
                "id": case_id,
                "ref": ref,
                "workflow": wf.name,
                "workflow_version_id": self.version_id,
                "state": state,
                "scope": scope,
                "data": data,
                "fired_by": fired_by,
                "version": head.seq,
                "audit_seq": head.seq,
                "audit_head": head.hash,
                "entered_at": entered,
                "deadline_at": deadline_at,
                "deadline_provisional": bool(deadline and deadline.provisional),
                "paused_at": paused_at,
                "paused_left": paused_left,
                "created_by": chain[0].actor,
                "created_at": created,
                "updated_at": last,
            },
            [e.row(case_id) for e in chain],
        )
        if not st.void:
            made.keys = [
                {"workflow": wf.name, "field": name, "value": str(data[name]), "case_id": case_id}
                for name in wf.unique_fields
                if data.get(name) is not None
            ]
        if not st.final:
            _, rows = plan_state(wf, state, entered, self.calendar, deadline)
            # the state's timers as the engine leaves them: due ones have fired (the rows stay, marked),
            # a pause cancelled the reminders and escalations
            made.timers = []
            for r in rows:
                row = {**r, "case_id": case_id, "created_at": entered, "fired_at": None}
                if paused_at is not None and r["kind"] != "timeout":
                    row["status"] = "cancelled"
                elif r["due_at"] <= now:
                    row.update(status="fired", fired_at=r["due_at"])
                made.timers.append(row)
        return made


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


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
    distance = {s.name: 0 for s in wf.states.values() if s.final and not s.void}
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
