"""Deterministic interleavings: two transactions paused at a chosen statement and resumed in a chosen order.

No sleeps decide who wins. A :class:`Gate` is a SQLAlchemy ``before_cursor_execute``
hook that, in one chosen thread only, blocks on a :class:`threading.Event` just
before the first statement matching a predicate — for a step that is its first
write, i.e. after everything it reads. The test then runs the other transaction
to completion (or until it is seen waiting on a row lock: PostgreSQL's
``pg_stat_activity``), and opens the gate.

What each backend does with the loser (engine/service.py, engine/writes.py):

* PostgreSQL: ``UPDATE ... WHERE version = <read>`` matches no row once the winner
  committed — :class:`ConflictError`. A writer that reaches a row the other holds
  waits for it, then matches nothing.
* SQLite: the loser's snapshot is stale, so its first write gets SQLITE_BUSY; the
  engine retries from the start pinned to the version first read — ConflictError.
  A read transaction that tries to write while another connection holds the write
  lock gets SQLITE_BUSY at once (busy_timeout does not apply to that upgrade), so the
  engine retries it for as long as the busy timeout would have waited.

Three interleavings exposed engine defects, since fixed: an import racing a create
of the same ID number (a raw IntegrityError, now ImportClash), a user step racing a
sweep that holds the timer row on PostgreSQL (a raw deadlock, now retried into a
ConflictError), and on SQLite a step behind a write transaction longer than a few
quick retries (a raw "database is locked", now retried up to the busy timeout).

Every test counts exactly: the case's version went up by one per change, one audit
event per change, and the loser left nothing behind (timers, outbox rows, keys).
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text

from db import AuditEvent, Case, CaseKey, OutboxMessage, Timer, make_engine
from engine import (
    Casework,
    ConflictError,
    DuplicateCase,
    FixedClock,
    RefusedError,
)
from engine.bulk import ImportClash, InvalidImport
from tests.integration.race_support import Households, postgres_only, sqlite_only
from tests.integration.test_publicity_period import through_publicity

WF = "poverty_archive"
WAIT = 30.0  # seconds any gate or thread may take before the test fails (never reached when correct)

_cases = Case.__table__
_events = AuditEvent.__table__
_timers = Timer.__table__
_outbox = OutboxMessage.__table__
_keys = CaseKey.__table__


# ------------------------------------------------------------------ machinery


def first_write(statement: str) -> bool:
    """The first statement of a change that writes: PostgreSQL sends a step as one ``WITH upd AS (UPDATE ...)``."""
    head = statement.lstrip()[:12].upper()
    return head.startswith(("UPDATE", "INSERT", "DELETE", "WITH"))


def writes_to(table: str) -> Callable[[str], bool]:
    """A statement that updates ``table`` (directly, or as the first CTE of PostgreSQL's one-statement step)."""
    pattern = re.compile(rf"^\s*(WITH\s+\w+\s+AS\s+\(\s*)?UPDATE\s+{table}\b", re.IGNORECASE)
    return lambda statement: bool(pattern.match(statement))


Predicate = Callable[[str], bool] | str
COMMIT = "commit"  # a gate predicate: pause at the transaction's commit, after every statement of it


class Gate:
    """Blocks its owner thread just before the first statement ``predicate`` accepts (or, with
    :data:`COMMIT`, just before its transaction commits), until :meth:`open`."""

    def __init__(self, predicate: Predicate) -> None:
        self.predicate = predicate
        self.owner: int | None = None
        self.reached = threading.Event()
        self._open = threading.Event()
        self.statement: str | None = None

    def at_statement(self, statement: str) -> None:
        if self._mine() and self.predicate != COMMIT and callable(self.predicate) and self.predicate(statement):
            self.statement = statement
            self._block()

    def at_commit(self) -> None:
        if self._mine() and self.predicate == COMMIT:
            self._block()

    def _mine(self) -> bool:
        return threading.get_ident() == self.owner and not self.reached.is_set()

    def _block(self) -> None:
        self.reached.set()
        if not self._open.wait(WAIT):
            raise RuntimeError("the gate was never opened")

    def open(self) -> None:
        self._open.set()


class Run:
    """Run ``fn`` in a thread that owns ``gate`` (if any); :meth:`result` re-raises what it raised."""

    def __init__(self, fn: Callable[[], Any], gate: Gate | None = None) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self._gate = gate
        self._fn = fn
        self._owned = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        assert self._owned.wait(WAIT)

    def _main(self) -> None:
        if self._gate is not None:
            self._gate.owner = threading.get_ident()
        self._owned.set()
        try:
            self.value = self._fn()
        except BaseException as exc:
            self.error = exc

    def join(self) -> Run:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the thread is still running"
        return self

    def result(self) -> Any:
        self.join()
        if self.error is not None:
            raise self.error
        return self.value

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()


class Gates:
    """The engine's one pair of hooks, dispatching to the gates of the test.

    Listeners are added once, before any thread runs: adding one while another thread is paused
    inside the dispatch loop would mutate the listener list under it.
    """

    def __init__(self, engine: Engine) -> None:
        self._gates: list[Gate] = []
        self._lock = threading.Lock()
        self._engines: list[Engine] = []
        self.watch(engine)

    def watch(self, engine: Engine) -> None:
        """Hook ``engine`` too (another process's connections, e.g. a scheduler's)."""
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)
        self._engines.append(engine)

    def _statement(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        with self._lock:
            gates = list(self._gates)
        for gate in gates:
            gate.at_statement(statement)

    def _commit(self, conn: Any) -> None:
        with self._lock:
            gates = list(self._gates)
        for gate in gates:
            gate.at_commit()

    def pause(self, fn: Callable[[], Any], predicate: Predicate = first_write) -> tuple[Gate, Run]:
        """Start ``fn`` in a thread and return once it is paused at its gate."""
        gate = Gate(predicate)
        with self._lock:
            self._gates.append(gate)
        run = Run(fn, gate)
        if not gate.reached.wait(WAIT):
            gate.open()
            run.join()
            raise AssertionError(f"the paused transaction never reached its gate (it ended with {run.error!r})")
        return gate, run

    def close(self) -> None:
        with self._lock:
            for gate in self._gates:
                gate.open()
            self._gates.clear()
        for engine in self._engines:
            event.remove(engine, "before_cursor_execute", self._statement)
            event.remove(engine, "commit", self._commit)
        self._engines.clear()


@pytest.fixture
def gates(svc: Casework) -> Iterator[Gates]:
    """Hooks on the service's engine; every gate is opened when the test ends (no thread left hanging)."""
    hub = Gates(svc.engine)
    yield hub
    hub.close()


def wait_for_lock_wait(engine: Engine, timeout: float = WAIT) -> int:
    """PostgreSQL: wait until some other session is blocked on a lock; return how many are."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while True:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return int(waiting)
            assert time.monotonic() < deadline, "the other transaction never waited for the lock"
            time.sleep(0.01)  # polling an observable condition, not deciding an order


# ------------------------------------------------------------------ database facts


def case_row(svc: Casework, ref: str) -> Any:
    with svc.engine.connect() as conn:
        return conn.execute(select(_cases).where(_cases.c.ref == ref)).one()


def trail(svc: Casework, ref: str) -> list[tuple[int, str, str | None, str]]:
    """(seq, action, trigger, actor) of the case's audit events, in order."""
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(_events.c.seq, _events.c.action, _events.c.trigger, _events.c.actor)
            .join(_cases, _cases.c.id == _events.c.case_id)
            .where(_cases.c.ref == ref)
            .order_by(_events.c.seq)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def side_effects(svc: Casework, ref: str) -> tuple[collections.Counter[tuple[str, str, str]], int]:
    """The case's timers as (kind, state, status) counts, and its outbox row count."""
    with svc.engine.connect() as conn:
        cid = conn.execute(select(_cases.c.id).where(_cases.c.ref == ref)).scalar_one()
        timers = collections.Counter(
            tuple(r)  # type: ignore[misc]
            for r in conn.execute(
                select(_timers.c.kind, _timers.c.state, _timers.c.status).where(_timers.c.case_id == cid)
            )
        )
        outbox = conn.execute(select(func.count()).select_from(_outbox).where(_outbox.c.case_id == cid)).scalar_one()
    return timers, outbox


def assert_conflict(exc: BaseException | None, ref: str) -> None:
    assert isinstance(exc, ConflictError), repr(exc)
    assert exc.ref == ref
    assert str(exc).startswith(f"case {ref} was changed by someone else at the same time"), str(exc)
    assert "nothing was saved" in str(exc)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def people() -> Households:
    return Households(seed=20261130)


def submitted_control(svc: Casework, people: Households) -> str:
    """A case submitted alone: what one submit leaves behind (timers, outbox rows)."""
    ref = svc.create_case(WF, "lin", people()).ref
    svc.fire(ref, "submit", "lin")
    return ref


# ------------------------------------------------------------------ fire vs fire


@pytest.mark.parametrize("order", ["second-reads-after-first-paused", "both-read-then-first-writes"])
def test_fire_vs_fire_the_paused_one_loses_with_a_conflict(
    svc: Casework, people: Households, gates: Gates, order: str
) -> None:
    control = submitted_control(svc, people)
    ref = svc.create_case(WF, "lin", people()).ref
    a_gate, a = gates.pause(lambda: svc.fire(ref, "submit", "lin"))
    if order == "second-reads-after-first-paused":
        # B runs whole while A sits between its read and its write
        view = svc.fire(ref, "submit", "ye")
    else:
        # both have read version 1; B is released first, then A
        b_gate, b = gates.pause(lambda: svc.fire(ref, "submit", "ye"))
        b_gate.open()
        view = b.result()
    assert (view.state, view.version) == ("review", 2)
    a_gate.open()
    assert_conflict(a.join().error, ref)

    row = case_row(svc, ref)
    assert (row.state, row.version, row.audit_seq) == ("review", 2, 2)
    assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "fired", "submit", "ye")]
    # the loser's name is nowhere (lin opened the case: its data was lin's when ye submitted it)
    assert row.fired_by == {"@": ["lin"], "@submit": ["lin"], "submit": ["ye"]}
    assert side_effects(svc, ref) == side_effects(svc, control)
    assert svc.verify_audit(ref).ok


@postgres_only()
def test_fire_vs_fire_the_second_writer_waits_for_the_first_commit_then_conflicts(
    svc: Casework, people: Households, gates: Gates, backend: str
) -> None:
    """A has written (holds the row) but not committed; B's write waits for A's commit, then matches no row.

    PostgreSQL only: on SQLite a second writer does not wait for the lock but retries a few times
    (see test_a_step_on_another_case_waits_for_a_long_batch_on_sqlite)."""
    control = submitted_control(svc, people)
    ref = svc.create_case(WF, "lin", people()).ref
    # A pauses at COMMIT: its write is done and holds the row
    a_gate, a = gates.pause(lambda: svc.fire(ref, "submit", "lin"), COMMIT)
    b_gate, b = gates.pause(lambda: svc.fire(ref, "submit", "ye"))
    b_gate.open()  # B goes on to its write, which cannot complete before A commits
    assert wait_for_lock_wait(svc.engine) == 1
    assert not b.done
    a_gate.open()
    view = a.result()
    assert (view.state, view.version) == ("review", 2)
    assert_conflict(b.join().error, ref)
    row = case_row(svc, ref)
    assert (row.state, row.version) == ("review", 2)
    assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "fired", "submit", "lin")]
    assert side_effects(svc, ref) == side_effects(svc, control)


# ------------------------------------------------------------------ fire vs update


def test_fire_paused_then_an_edit_commits_the_fire_conflicts(svc: Casework, people: Households, gates: Gates) -> None:
    ref = svc.create_case(WF, "lin", people(household_size=3)).ref
    gate, fire = gates.pause(lambda: svc.fire(ref, "submit", "lin"))
    edited = svc.update_case(ref, "ye", {"household_size": 5})
    assert edited.version == 2
    gate.open()
    assert_conflict(fire.join().error, ref)
    row = case_row(svc, ref)
    assert (row.state, row.version, row.data["household_size"]) == ("apply", 2, 5)
    assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "updated", None, "ye")]
    assert side_effects(svc, ref) == (collections.Counter(), 0)  # no review timers, nobody told


def test_edit_paused_then_a_fire_commits_the_edit_conflicts(svc: Casework, people: Households, gates: Gates) -> None:
    control = submitted_control(svc, people)
    ref = svc.create_case(WF, "lin", people(household_size=3)).ref
    gate, edit = gates.pause(lambda: svc.update_case(ref, "ye", {"household_size": 5}))
    assert svc.fire(ref, "submit", "lin").version == 2
    gate.open()
    assert_conflict(edit.join().error, ref)
    row = case_row(svc, ref)
    assert (row.state, row.version, row.data["household_size"]) == ("review", 2, 3)  # the edit left no trace
    assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "fired", "submit", "lin")]
    assert side_effects(svc, ref) == side_effects(svc, control)


# ------------------------------------------------------------------ fire_many vs fire


BATCH = 5


def test_fire_many_holding_its_batch_makes_a_single_fire_wait_then_refuses_it(
    svc: Casework, people: Households, gates: Gates, backend: str
) -> None:
    """The batch has read its cases and is paused before writing; a single submit on one of them runs.

    PostgreSQL: the batch read its rows ``FOR UPDATE``, so the single fire's write waits for the
    batch's commit and then matches no row: ConflictError; the batch fires all five.
    SQLite: a read holds nothing, so the single fire commits first; the batch's stale write gets
    SQLITE_BUSY, the whole batch is retried, and that case is refused in the report (it is in review
    now) while the other four fire.
    """
    control = submitted_control(svc, people)
    refs = [svc.create_case(WF, "lin", people()).ref for _ in range(BATCH)]
    target = refs[2]
    gate, bulk = gates.pause(lambda: svc.fire_many(refs, "submit", "lin"))
    single = Run(lambda: svc.fire(target, "submit", "ye"))
    if backend == "postgresql":
        assert wait_for_lock_wait(svc.engine) == 1  # the single fire waits on the batch's row lock
        assert not single.done
        gate.open()
        report = bulk.result()
        assert_conflict(single.join().error, target)
        assert (report.fired, report.refused) == (refs, [])
        submitters = dict.fromkeys(refs, "lin")
    else:
        view = single.result()  # nothing held it
        assert (view.state, view.version) == ("review", 2)
        gate.open()
        report = bulk.result()
        assert report.fired == [r for r in refs if r != target]
        assert len(report.refused) == 1
        (refused,) = report.refused
        assert (refused.ref, refused.code) == (target, "wrong_state")
        assert refused.reason.startswith(f"case {target} is in review (审核); submit applies only from apply")
        submitters = {**dict.fromkeys(refs, "lin"), target: "ye"}
    for ref in refs:
        row = case_row(svc, ref)
        assert (row.state, row.version) == ("review", 2), ref
        assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "fired", "submit", submitters[ref])], ref
        assert side_effects(svc, ref) == side_effects(svc, control), ref


def test_single_fire_paused_then_fire_many_commits_the_single_fire_conflicts(
    svc: Casework, people: Households, gates: Gates
) -> None:
    control = submitted_control(svc, people)
    refs = [svc.create_case(WF, "lin", people()).ref for _ in range(BATCH)]
    target = refs[0]
    gate, single = gates.pause(lambda: svc.fire(target, "submit", "ye"))
    report = svc.fire_many(refs, "submit", "lin")
    assert (report.fired, report.refused) == (refs, [])
    gate.open()
    assert_conflict(single.join().error, target)
    for ref in refs:
        row = case_row(svc, ref)
        assert (row.state, row.version) == ("review", 2)
        assert trail(svc, ref) == [(1, "created", None, "lin"), (2, "fired", "submit", "lin")]
        assert side_effects(svc, ref) == side_effects(svc, control)


@sqlite_only()
def test_a_step_on_another_case_waits_for_a_long_batch_on_sqlite(
    svc: Casework, people: Households, gates: Gates
) -> None:
    """A bulk step holds SQLite's write lock (it has written its cases and is paused before its audit
    rows). A clerk's step on a case outside the batch must wait for it and then go ahead — the
    module docstring of engine/service.py: retried, "so it proceeds if another case was written".

    The batch holds the lock for at most 3 s (well inside busy_timeout, 10 s) or until the clerk's
    step has ended, whichever is first; then it commits.
    """
    refs = [svc.create_case(WF, "lin", people()).ref for _ in range(BATCH)]
    other = svc.create_case(WF, "lin", people()).ref
    gate, bulk = gates.pause(lambda: svc.fire_many(refs, "submit", "lin"), lambda s: "INSERT INTO audit_events" in s)
    single = Run(lambda: svc.fire(other, "submit", "ye"))
    single.thread.join(3.0)
    ended_while_locked = single.done
    gate.open()
    report = bulk.result()
    single.join()
    assert (report.fired, report.refused) == (refs, [])
    print(f"\nthe single step ended while the batch held the lock: {ended_while_locked}; {single.error!r}"[:300])
    assert single.error is None, f"{type(single.error).__name__}: {single.error}"[:300]
    assert (case_row(svc, other).state, case_row(svc, other).version) == ("review", 2)


# ------------------------------------------------------------------ import vs create


def _keys_of(svc: Casework, id_number: str) -> list[str]:
    """Refs of the cases holding ``id_number``'s key."""
    with svc.engine.connect() as conn:
        return list(
            conn.execute(
                select(_cases.c.ref)
                .join(_keys, _keys.c.case_id == _cases.c.id)
                .where(_keys.c.field == "id_number", _keys.c.value == id_number)
            ).scalars()
        )


def _case_count(svc: Casework) -> tuple[int, int]:
    with svc.engine.connect() as conn:
        cases = conn.execute(select(func.count()).select_from(_cases)).scalar_one()
        events = conn.execute(select(func.count()).select_from(_events)).scalar_one()
    return cases, events


def test_create_paused_then_an_import_with_the_same_id_number_commits_the_create_is_a_duplicate(
    svc: Casework, people: Households, gates: Gates
) -> None:
    rows = [people() for _ in range(4)]
    twin = dict(rows[1])
    before = _case_count(svc)
    gate, create = gates.pause(lambda: svc.create_case(WF, "ye", twin))
    report = svc.import_cases(WF, "lin", list(enumerate(rows, start=2)))
    assert len(report.imported) == 4 and report.skipped == []
    gate.open()
    exc = create.join().error
    assert isinstance(exc, DuplicateCase), repr(exc)
    assert exc.field == "id_number" and exc.existing_ref == report.imported[1]
    assert str(exc) == (
        f"id_number is already on case {report.imported[1]} (state apply); "
        "a household is filed once: continue that case, or withdraw it first"
    )
    assert _case_count(svc) == (before[0] + 4, before[1] + 4)
    assert _keys_of(svc, twin["id_number"]) == [report.imported[1]]
    assert svc.check().ok


def test_import_paused_then_a_create_with_the_same_id_number_commits_the_import_is_refused_whole(
    svc: Casework, people: Households, gates: Gates
) -> None:
    """The import checked the ID numbers against the database before its transaction; a create slips in
    between that check and the batch's write. The batch must be refused as a duplicate, whole."""
    rows = [people() for _ in range(4)]
    twin = dict(rows[1])
    before = _case_count(svc)
    # the batch's first write is taking the reference numbers: everything was validated by then
    gate, bulk = gates.pause(lambda: svc.import_cases(WF, "lin", list(enumerate(rows, start=2))))
    assert gate.statement is not None and "ref_counters" in gate.statement
    winner = svc.create_case(WF, "ye", twin)
    gate.open()
    exc = bulk.join().error
    assert _case_count(svc) == (before[0] + 1, before[1] + 1), "the import wrote part of its batch"
    assert _keys_of(svc, twin["id_number"]) == [winner.ref]
    assert svc.check().ok
    assert isinstance(exc, RefusedError), f"a raw error reached the caller: {exc!r}"
    assert isinstance(exc, DuplicateCase | InvalidImport | ImportClash), repr(exc)
    assert "id_number" in str(exc)


# ------------------------------------------------------------------ sweep vs fire


@pytest.fixture
def due(svc: Casework, clock: FixedClock, people: Households) -> str:
    """A case in publicity whose period is over: on its county's published list (the ``publicised`` event,
    seq 4), its 7 days past; its timeout timer (fire end_publicity) is due."""
    ref = svc.create_case(WF, "lin", people()).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    through_publicity(svc, ref)
    assert len(svc.due_timers()) == 1
    return ref


def timeout_timer(svc: Casework, ref: str) -> Any:
    with svc.engine.connect() as conn:
        return conn.execute(
            select(_timers)
            .join(_cases, _cases.c.id == _timers.c.case_id)
            .where(_cases.c.ref == ref, _timers.c.kind == "timeout", _timers.c.state == "publicise")
        ).one()


def test_user_fire_paused_then_the_sweep_fires_the_timer_the_user_conflicts(
    svc: Casework, due: str, gates: Gates
) -> None:
    ref = due
    gate, user = gates.pause(lambda: svc.fire(ref, "end_publicity", "xu"))
    report = svc.sweep()
    assert (report.fired, report.held, report.discarded, report.failed) == (1, 0, 0, 0)
    gate.open()
    assert_conflict(user.join().error, ref)
    row = case_row(svc, ref)
    assert (row.state, row.version) == ("approve", 5)
    assert trail(svc, ref)[-1] == (5, "fired", "end_publicity", "system")
    assert len(trail(svc, ref)) == 5
    timer = timeout_timer(svc, ref)
    assert (timer.status, timer.fired_at is not None) == ("fired", True)
    assert svc.sweep().fired == 0  # nothing left to fire
    assert svc.check().ok


def test_sweep_and_user_both_paused_after_reading_the_sweep_commits_first_the_user_conflicts(
    svc: Casework, due: str, gates: Gates
) -> None:
    """The sweep has claimed the timer and read the case; the user has read the case. The sweep writes
    and commits first; the user's write then finds version 5, not 4: ConflictError. The timer fired once."""
    ref = due
    sweep_gate, sweep = gates.pause(svc.sweep, writes_to("cases"))
    user_gate, user = gates.pause(lambda: svc.fire(ref, "end_publicity", "xu"))
    sweep_gate.open()
    report = sweep.result()
    assert (report.fired, report.held, report.discarded, report.failed) == (1, 0, 0, 0)
    user_gate.open()
    assert_conflict(user.join().error, ref)
    row = case_row(svc, ref)
    assert (row.state, row.version) == ("approve", 5)
    assert trail(svc, ref)[2:] == [
        (3, "fired", "pass_review", "wu"),
        (4, "publicised", None, "system"),
        (5, "fired", "end_publicity", "system"),
    ]
    timer = timeout_timer(svc, ref)
    assert timer.status == "fired" and timer.fired_at is not None
    assert svc.sweep().fired == 0
    assert svc.check().ok


@postgres_only()
def test_user_step_while_a_sweep_holds_the_timer_is_refused_cleanly_not_deadlocked(
    svc: Casework, due: str, gates: Gates, db_url: str
) -> None:
    """The sweep (a scheduler process: its own engine) has claimed the timer ``FOR UPDATE`` and read the
    case; it is paused before writing the case. The user's one-statement step updates the case row,
    then must cancel the state's pending timers: it waits for the sweep's timer row. When the sweep
    goes on to write the case row, each waits for the other.

    Whoever loses, the case must move once and the timer fire at most once; a user who loses must be
    told ConflictError (someone else moved the case), never a raw database error. The scheduler's
    sessions get a long ``deadlock_timeout`` so that PostgreSQL always picks the user's session as the
    victim: the outcome is deterministic.
    """
    ref = due
    scheduler_engine = make_engine(db_url)
    event.listen(scheduler_engine, "connect", _long_deadlock_timeout)
    try:
        scheduler = Casework(scheduler_engine, svc.clock)
        gates.watch(scheduler_engine)
        sweep_gate, sweep = gates.pause(scheduler.sweep, writes_to("cases"))
        user = Run(lambda: svc.fire(ref, "end_publicity", "xu"))
        assert wait_for_lock_wait(svc.engine) == 1  # the user's step waits for the sweep's timer row
        sweep_gate.open()
        report = sweep.result()
        user.join()
    finally:
        gates.close()
        scheduler_engine.dispose()
    row = case_row(svc, ref)
    history = trail(svc, ref)
    timer = timeout_timer(svc, ref)
    print(f"\nsweep {report}; user {user.error!r}"[:400])
    # what holds whatever happened: the case moved once, the timer fired once, nothing half-written
    assert (row.state, row.version) == ("approve", 5)
    assert history[3:] == [(4, "publicised", None, "system"), (5, "fired", "end_publicity", "system")]
    assert (report.fired, report.failed, timer.status) == (1, 0, "fired")
    assert svc.check().ok
    # what the user must be told
    assert_conflict(user.error, ref)


def _long_deadlock_timeout(dbapi_conn: Any, record: Any) -> None:
    with dbapi_conn.cursor() as cur:
        cur.execute("SET deadlock_timeout = '60s'")
    dbapi_conn.commit()


def test_sweep_paused_before_its_claim_then_a_user_fires_the_timer_is_cancelled_not_fired(
    svc: Casework, due: str, gates: Gates, backend: str
) -> None:
    """The sweep has listed the due timer but not claimed it; the user's step cancels it first."""
    ref = due
    claim = writes_to("timers") if backend == "sqlite" else (lambda s: "FOR UPDATE SKIP LOCKED" in s)
    gate, sweep = gates.pause(svc.sweep, claim)
    view = svc.fire(ref, "end_publicity", "xu")
    assert (view.state, view.version) == ("approve", 5)
    gate.open()
    report = sweep.result()
    assert (report.fired, report.held, report.discarded, report.failed) == (0, 0, 0, 0)  # skipped: not pending
    timer = timeout_timer(svc, ref)
    assert (timer.status, timer.fired_at) == ("cancelled", None)
    history = trail(svc, ref)
    assert len(history) == 5 and history[-1] == (5, "fired", "end_publicity", "xu")
    assert svc.check().ok


# ------------------------------------------------------------------ many rounds


def test_two_hundred_paused_races_one_winner_each(svc: Casework, people: Households, gates: Gates) -> None:
    """200 rounds of fire-vs-fire through the gates, the two orders alternating: always one winner (the one
    released first), one event, version 2; the other a ConflictError."""
    rounds = 200
    outcomes: collections.Counter[str] = collections.Counter()
    refs = []
    for i in range(rounds):
        ref = svc.create_case(WF, "lin", people()).ref
        refs.append(ref)
        gate, a = gates.pause(lambda ref=ref: svc.fire(ref, "submit", "lin"))
        if i % 2:
            b_gate, b = gates.pause(lambda ref=ref: svc.fire(ref, "submit", "ye"))
            b_gate.open()
            b.result()
        else:
            svc.fire(ref, "submit", "ye")
        gate.open()
        exc = a.join().error
        outcomes[type(exc).__name__] += 1
        assert_conflict(exc, ref)
    with svc.engine.connect() as conn:
        versions = conn.execute(
            select(_cases.c.version, func.count()).where(_cases.c.ref.in_(refs)).group_by(_cases.c.version)
        ).all()
        events = conn.execute(
            select(_events.c.actor, func.count())
            .join(_cases, _cases.c.id == _events.c.case_id)
            .where(_cases.c.ref.in_(refs), _events.c.action == "fired")
            .group_by(_events.c.actor)
        ).all()
    assert outcomes == {"ConflictError": rounds}
    assert [tuple(r) for r in versions] == [(2, rounds)]
    assert [tuple(r) for r in events] == [("ye", rounds)]
    print(f"\n{rounds}/{rounds} paused races: 1 winner each; losers {dict(outcomes)}")
