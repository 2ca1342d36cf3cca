"""The scheduler as real OS processes on real databases: exactly-once firing, catch-up, crashes, signals.

Every scheduler here is ``python -m casework --db URL scheduler --interval 0.5
--no-relay`` in its own process, on the real clock. The cases are made with
the engine API on a :class:`FixedClock` three weeks in the past, and their
county's 公示名单 is published then, so their publicity period (``timeout:
{after: 7 days, fire: end_publicity}``, from the list's date) is already
over when a scheduler starts: every timer is due at once, as after a long
downtime. Seeding the bulk scenarios costs more than running them, so
each (backend, N) set of cases is made once per session as a template
database (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
PostgreSQL) and copied into each test's fresh ``db_url``.

Waiting is always polling the database (or a log file) against a deadline;
every child process is stopped in ``finally``. Measured figures are printed:
run with ``pytest -s`` to see them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from sqlalchemy import Engine, and_, func, select

from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, OutboxMessage, Timer, make_engine
from engine import Casework, FixedClock, load_definition_file
from notifications.notices import publish_list
from tests.conftest import BUNDLED, ROOT, USERS
from tests.e2e.runner import casework

T = TypeVar("T")

pytestmark = pytest.mark.scenario  # real scheduler processes, signals, SIGKILL

WF = "poverty_archive"
COUNTY = "芗城区"
ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
# far enough back that 7 calendar days (extended past a weekend or a holiday) are over
SEEDED_DAYS_AGO = 21
INTERVAL = "0.5"
FIRE_DEADLINE = 150.0  # seconds; generous for 2 loaded cores

_timers = Timer.__table__
_cases = Case.__table__
_events = AuditEvent.__table__
_outbox = OutboxMessage.__table__

SWEEP_LINE = re.compile(r"sweep: fired (\d+), held (\d+), discarded (\d+), failed (\d+)")


def _covering(role: str, scope: str) -> set[str]:
    """Usernames in ``USERS`` with ``role`` whose scopes cover ``scope``."""
    return {u for u, _, roles, scopes in USERS if role in roles and ("*" in scopes or scope in scopes)}


APPROVERS = _covering("approver", COUNTY)  # told once each when a case enters approve
REVIEWERS = _covering("reviewer", COUNTY)  # told once each when a timeout is held


def _past_clock() -> FixedClock:
    return FixedClock(dt.datetime.now(dt.UTC) - dt.timedelta(days=SEEDED_DAYS_AGO))


# ---------------------------------------------------------------------- seeding


def _households(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` complete households in ``COUNTY`` with distinct ID numbers."""
    people = SyntheticPeople(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    while len(out) < count:
        data = people.household()
        if data["id_number"] in seen:
            continue
        seen.add(data["id_number"])
        data.update(county=COUNTY, materials=list(ALL_MATERIALS))
        out.append(data)
    return out


def publicise(svc: Casework, data: dict[str, Any]) -> str:
    """Open a case, submit it and pass its review: it is in publicity, awaiting its county's list."""
    ref = svc.create_case(WF, "lin", data).ref
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    return ref


def publish(svc: Casework) -> None:
    """Publish the county's 公示名单 (on ``svc``'s clock): the publicity of every case awaiting it starts, and
    each gets its timeout timer, due when the list's period ends."""
    assert publish_list(svc, WF, COUNTY) is not None


def seed_due_cases(url: str, count: int) -> None:
    """Load the workflow and users, and put ``count`` cases in publicity three weeks ago."""
    engine = make_engine(url)
    try:
        svc = Casework(engine, _past_clock())
        svc.load_workflow(load_definition_file(BUNDLED))
        for username, name, roles, scopes in USERS:
            svc.add_user(username, name, roles, scopes)
        households = _households(count, seed=20261129)
        if engine.dialect.name == "postgresql":
            # the client is the bottleneck; a few threads overlap its round trips
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda d: publicise(svc, d), households))
        else:
            for data in households:
                publicise(svc, data)
        publish(svc)
        with engine.connect() as conn:
            due = conn.execute(
                select(func.count())
                .select_from(_timers)
                .where(
                    _timers.c.kind == "timeout",
                    _timers.c.status == "pending",
                    _timers.c.due_at <= dt.datetime.now(dt.UTC),
                )
            ).scalar_one()
        assert due == count, f"seeding: {due} of {count} timeout timers are due"
        if engine.dialect.name == "sqlite":
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def _due_templates() -> dict[tuple[str, int], str]:
    """(backend, N) → a template (SQLite file path or PostgreSQL database name) with N due cases."""
    return {}


@pytest.fixture
def due_db(
    backend: str,
    db_url: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    _due_templates: dict[tuple[str, int], str],
) -> Callable[[int], str]:
    """Fill this test's ``db_url`` with ``n`` cases whose publicity ended long ago; return the URL."""

    def fill(n: int) -> str:
        key = (backend, n)
        started = time.perf_counter()
        if backend == "sqlite":
            if key not in _due_templates:
                path = tmp_path_factory.mktemp(f"due{n}") / "casework.db"
                shutil.copy(request.getfixturevalue("sqlite_template"), path)
                seed_due_cases(f"sqlite:///{path}", n)
                _due_templates[key] = str(path)
                print(f"\n[seed] {backend}: {n} cases in publicity in {time.perf_counter() - started:.1f} s")
            shutil.copy(_due_templates[key], db_url.removeprefix("sqlite:///"))
            return db_url
        server = request.getfixturevalue("pg_server")
        if key not in _due_templates:
            name = f"due_{n}_{os.getpid()}"
            seed_due_cases(server.create_database(name, template="casework_template"), n)
            _due_templates[key] = name
            print(f"\n[seed] {backend}: {n} cases in publicity in {time.perf_counter() - started:.1f} s")
        # replace the fresh database with a copy of the template, under the name db_url's teardown drops
        dbname = db_url.rsplit("/", 1)[1]
        server.drop_database(dbname)
        server.create_database(dbname, template=_due_templates[key])
        return db_url

    return fill


# ------------------------------------------------------------------- processes


@dataclass
class Scheduler:
    """One ``casework scheduler`` child process, its stderr in a file."""

    popen: subprocess.Popen[bytes]
    log: Path
    _handle: IO[bytes]

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def sweeps(self) -> list[tuple[int, int, int, int]]:
        """(fired, held, discarded, failed) of every sweep it has logged."""
        return [tuple(int(g) for g in m.groups()) for m in SWEEP_LINE.finditer(self.stderr())]  # type: ignore[misc]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (if still running) and wait; SIGKILL if it does not stop. Returns the exit code."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(10)
            return self.popen.returncode
        finally:
            self._handle.close()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CASEWORK_DB"}
    env.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8")
    return env


def start_scheduler(url: str, log: Path) -> Scheduler:
    handle = log.open("wb")
    popen = subprocess.Popen(
        [sys.executable, "-m", "casework", "--db", url, "scheduler", "--interval", INTERVAL, "--no-relay"],
        stdin=subprocess.DEVNULL,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=_env(),
    )
    return Scheduler(popen, log, handle)


@contextlib.contextmanager
def schedulers(url: str, count: int, logs: Path, tag: str = "s") -> Iterator[list[Scheduler]]:
    """Start ``count`` schedulers on ``url``; always stopped on the way out."""
    procs: list[Scheduler] = []
    try:
        for i in range(count):
            procs.append(start_scheduler(url, logs / f"{tag}{i}.log"))
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def wait_for(what: str, check: Callable[[], T | None], procs: list[Scheduler], timeout: float = FIRE_DEADLINE) -> T:
    """Poll ``check`` until it returns a true value; fail if a scheduler dies or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for proc in procs:
            if proc.popen.poll() is not None:
                pytest.fail(
                    f"scheduler exited ({proc.popen.returncode}) while waiting for {what}:\n{proc.stderr()[-3000:]}"
                )
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.05)


def audit_verify(url: str) -> str:
    """``casework audit verify`` (in this process: tests/e2e/runner.py) must exit 0; returns its output."""
    done = casework(url, "audit", "verify")
    assert done.rc == 0, f"audit verify failed ({done.rc}):\n{done.out}\n{done.err}"
    assert "audit trail intact" in done.out
    return done.out.strip()


# -------------------------------------------------------------- database checks


def count_timeouts(engine: Engine, status: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(_timers).where(_timers.c.kind == "timeout", _timers.c.status == status)
        ).scalar_one()


def fire_span(engine: Engine) -> float:
    """Seconds from the first to the last timeout timer fired."""
    with engine.connect() as conn:
        first, last = conn.execute(
            select(func.min(_timers.c.fired_at), func.max(_timers.c.fired_at)).where(
                _timers.c.kind == "timeout", _timers.c.status == "fired"
            )
        ).one()
    if isinstance(first, str):  # SQLite aggregates bypass the column type
        first, last = dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(last)
    return (last - first).total_seconds()


def check_consistent(engine: Engine) -> tuple[int, int]:
    """Every case is either still in publicity with its timer pending and no end_publicity event,
    or in approve with its timer fired and exactly one end_publicity event — never half of each.

    Returns (moved, waiting).
    """
    with engine.connect() as conn:
        states = dict(conn.execute(select(_cases.c.id, _cases.c.state)).all())
        timers: dict[int, list[str]] = collections.defaultdict(list)
        for case_id, status in conn.execute(
            select(_timers.c.case_id, _timers.c.status).where(
                _timers.c.kind == "timeout", _timers.c.state == "publicise"
            )
        ):
            timers[case_id].append(status)
        ended = dict(
            conn.execute(
                select(_events.c.case_id, func.count())
                .where(_events.c.trigger == "end_publicity")
                .group_by(_events.c.case_id)
            ).all()
        )
    problems = []
    moved = waiting = 0
    for case_id, state in states.items():
        seen = (state, timers.get(case_id), ended.get(case_id, 0))
        if seen == ("approve", ["fired"], 1):
            moved += 1
        elif seen == ("publicise", ["pending"], 0):
            waiting += 1
        else:
            problems.append(f"case {case_id}: state, timeout timers, end_publicity events = {seen}")
    assert not problems, f"{len(problems)} inconsistent cases, e.g.:\n" + "\n".join(problems[:10])
    return moved, waiting


def check_all_fired_once(engine: Engine, url: str, n: int) -> None:
    """Each of the ``n`` cases moved to approve exactly once, with one set of consequences; audit verifies."""
    moved, waiting = check_consistent(engine)
    assert (moved, waiting) == (n, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(_cases)).scalar_one() == n
        # one row per case per state entered: one timeout, fired once, never a second row
        per_case = conn.execute(
            select(_timers.c.case_id, func.count())
            .where(_timers.c.kind == "timeout")
            .group_by(_timers.c.case_id)
            .having(func.count() != 1)
        ).all()
        assert per_case == []
        assert (
            conn.execute(
                select(func.count())
                .select_from(_timers)
                .where(_timers.c.kind == "timeout", _timers.c.fired_at.is_(None))
            ).scalar_one()
            == 0
        )
        # entering approve once: one remind and one escalation pending per case
        kinds = collections.Counter(
            conn.execute(
                select(_timers.c.kind).where(_timers.c.state == "approve", _timers.c.status == "pending")
            ).scalars()
        )
        assert kinds == {"remind": n, "escalate": n}
        # and each approver told once per case
        told = collections.Counter(
            conn.execute(select(_outbox.c.case_id).where(_outbox.c.template == "approve_waiting")).scalars()
        )
        assert len(told) == n and set(told.values()) == {len(APPROVERS)}
        # the system fired it, as system
        actors = set(conn.execute(select(_events.c.actor).where(_events.c.trigger == "end_publicity")).scalars())
        assert actors == {"system"}
    audit_verify(url)


def sweep_totals(procs: list[Scheduler]) -> list[tuple[int, int, int, int]]:
    """Per process: (fired, held, discarded, failed) summed over its logged sweeps."""
    return [tuple(sum(col) for col in zip(*p.sweeps(), strict=True)) or (0, 0, 0, 0) for p in procs]  # type: ignore[misc]


# -------------------------------------------------------- 1: many schedulers at once


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "workers", "n"),
    [("sqlite", 2, 300), ("postgresql", 2, 1000), ("postgresql", 4, 1000)],
    ids=["sqlite-2x300", "postgresql-2x1000", "postgresql-4x1000"],
)
def test_concurrent_schedulers_fire_each_due_timer_exactly_once(
    backend: str, workers: int, n: int, due_db: Callable[[int], str], tmp_path: Path
) -> None:
    url = due_db(n)
    engine = make_engine(url)
    try:
        assert count_timeouts(engine, "pending") == n
        started = time.perf_counter()
        with schedulers(url, workers, tmp_path) as procs:
            wait_for("empty timer queue", lambda: count_timeouts(engine, "pending") == 0, procs)
            elapsed = time.perf_counter() - started
            codes = [p.stop() for p in procs]
        assert codes == [0] * workers, [p.stderr()[-2000:] for p in procs]
        totals = sweep_totals(procs)
        span = fire_span(engine)
        print(
            f"\n[1] {backend}, {workers} schedulers, {n} due timers: all fired {elapsed:.1f} s after start; "
            f"first→last fire {span:.1f} s = {n / span:.0f} timers/s; fired per process {[t[0] for t in totals]}"
        )
        # every fire was logged by exactly one process, and none failed (a lock, a conflict)
        assert sum(t[0] for t in totals) == n
        assert sum(t[3] for t in totals) == 0
        for proc in procs:
            assert "Traceback" not in proc.stderr()
        check_all_fired_once(engine, url, n)
    finally:
        engine.dispose()


# ------------------------------------------------------------ 2: downtime catch-up


@pytest.mark.slow
def test_one_scheduler_catches_up_on_every_timer_missed_during_downtime(
    backend: str, due_db: Callable[[int], str], tmp_path: Path
) -> None:
    n = 500
    url = due_db(n)  # 500 timers that fell due two weeks ago, while no scheduler ran
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with schedulers(url, 1, tmp_path) as procs:
            wait_for("catch-up", lambda: count_timeouts(engine, "pending") == 0, procs)
            catch_up = time.perf_counter() - started
            assert procs[0].stop() == 0
        span = fire_span(engine)
        ((fired, held, discarded, failed),) = sweep_totals(procs)
        print(
            f"\n[2] {backend}: catch-up of {n} missed timers took {catch_up:.1f} s from process start "
            f"(first→last fire {span:.1f} s = {n / span:.0f} timers/s)"
        )
        assert (fired, held, discarded, failed) == (n, 0, 0, 0)
        check_all_fired_once(engine, url, n)
    finally:
        engine.dispose()


# ------------------------------------------------------------- 3: kill -9 mid-sweep


@pytest.mark.slow
def test_a_scheduler_killed_mid_sweep_loses_nothing_and_doubles_nothing(
    backend: str, due_db: Callable[[int], str], tmp_path: Path
) -> None:
    n = 1000 if backend == "postgresql" else 300
    url = due_db(n)
    engine = make_engine(url)
    try:
        with schedulers(url, 1, tmp_path, "first") as procs:
            wait_for("the first 100 fires", lambda: count_timeouts(engine, "fired") >= 100, procs)
            procs[0].popen.send_signal(signal.SIGKILL)
            assert procs[0].popen.wait(10) == -signal.SIGKILL
        # whatever the kill interrupted was rolled back whole: no case half-moved
        moved, waiting = check_consistent(engine)
        print(f"\n[3] {backend}: SIGKILL after {moved} of {n} fired; {waiting} left pending")
        assert 100 <= moved < n and moved + waiting == n
        started = time.perf_counter()
        with schedulers(url, 1, tmp_path, "second") as procs:
            wait_for("the rest to fire", lambda: count_timeouts(engine, "pending") == 0, procs)
            assert procs[0].stop() == 0
        ((fired, _, _, failed),) = sweep_totals(procs)
        print(f"[3] {backend}: the next scheduler fired the other {fired} in {time.perf_counter() - started:.1f} s")
        assert (fired, failed) == (waiting, 0)
        check_all_fired_once(engine, url, n)
    finally:
        engine.dispose()


# --------------------------------------------------------------------- 4: SIGTERM


def test_sigterm_stops_an_idle_scheduler_gracefully(db_url: str, tmp_path: Path) -> None:
    with schedulers(db_url, 1, tmp_path) as procs:
        (proc,) = procs
        wait_for("the first sweep", lambda: proc.sweeps(), procs, timeout=30)
        sent = time.perf_counter()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(10)
        took = time.perf_counter() - sent
    print(f"\n[4] idle scheduler stopped {took:.2f} s after SIGTERM")
    assert code == 0
    err = proc.stderr()
    assert "scheduler stopped" in err and "Traceback" not in err
    assert took < 5


@pytest.mark.slow
def test_sigterm_mid_sweep_finishes_that_sweep_and_the_rest_fire_later(
    backend: str, due_db: Callable[[int], str], tmp_path: Path
) -> None:
    n = 1000  # more than one sweep takes (500), so stopping "after the current sweep" leaves some
    url = due_db(n)
    engine = make_engine(url)
    try:
        with schedulers(url, 1, tmp_path, "first") as procs:
            (proc,) = procs
            wait_for("a sweep under way", lambda: count_timeouts(engine, "fired") > 0, procs)
            sent = time.perf_counter()
            proc.popen.send_signal(signal.SIGTERM)
            code = proc.popen.wait(60)
            took = time.perf_counter() - sent
        moved, waiting = check_consistent(engine)
        print(
            f"\n[4] {backend}: busy scheduler exited {took:.1f} s after SIGTERM; fired {moved} of {n}, {waiting} left"
        )
        assert code == 0
        err = proc.stderr()
        assert "scheduler stopped" in err and "Traceback" not in err
        assert took < 20  # the sweep in progress (at most 500 timers) is finished first
        # it finished and reported the sweep in progress, then started no other
        ((fired, _, _, failed),) = sweep_totals(procs)
        assert (fired, failed) == (moved, 0)
        assert moved > 0 and waiting > 0
        with schedulers(url, 1, tmp_path, "second") as procs:
            wait_for("the rest to fire", lambda: count_timeouts(engine, "pending") == 0, procs)
        check_all_fired_once(engine, url, n)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_second_sigterm_while_stopping_does_not_crash(
    backend: str, due_db: Callable[[int], str], tmp_path: Path
) -> None:
    url = due_db(1000)
    engine = make_engine(url)
    try:
        with schedulers(url, 1, tmp_path) as procs:
            (proc,) = procs
            wait_for("a sweep under way", lambda: count_timeouts(engine, "fired") > 0, procs)
            proc.popen.send_signal(signal.SIGTERM)
            time.sleep(0.2)  # the first sweep (500 timers) takes well over a second on either backend
            proc.popen.send_signal(signal.SIGTERM)  # an impatient operator, or a supervisor repeating itself
            code = proc.popen.wait(60)
        moved, _ = check_consistent(engine)  # never half a step, whatever happens
        err = proc.stderr()
        assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
        assert code == 0 and "scheduler stopped" in err
        ((fired, _, _, _),) = sweep_totals(procs)
        assert fired == moved  # the sweep in progress was finished and reported, as after one SIGTERM
    finally:
        engine.dispose()


def test_the_scheduler_log_has_no_line_per_state_machine_callback(
    svc: Casework, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(days=SEEDED_DAYS_AGO))
    for data in _households(3, seed=11):
        publicise(svc, data)
    publish(svc)
    engine = svc.engine
    with schedulers(db_url, 1, tmp_path) as procs:
        wait_for("the timers to fire", lambda: count_timeouts(engine, "fired") == 3, procs, 60)
        assert procs[0].stop() == 0
    err = procs[0].stderr()
    assert sum(fired for fired, *_ in procs[0].sweeps()) == 3  # what the operator needs is there
    noise = [line for line in err.splitlines() if " transitions." in line]
    assert noise == [], f"{len(noise)} lines like {noise[0]!r}"


# ---------------------------------------------------- 5: an open objection holds it


def test_an_open_objection_holds_the_timeout_and_the_hold_is_reported_once(
    svc: Casework, clock: FixedClock, db_url: str, tmp_path: Path
) -> None:
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(days=SEEDED_DAYS_AGO))
    held_data, free_data = _households(2, seed=5)
    ref = publicise(svc, held_data)
    control = publicise(svc, free_data)  # the same, without an objection: shows the sweeps run
    publish(svc)  # their period starts (three weeks ago): the objection comes in during it
    objection = svc.add_objection(ref, "lin", "群众来电反映其家庭有经营性收入", "电话")
    engine = svc.engine

    def timer_of(case_ref: str) -> Any:
        with engine.connect() as conn:
            return conn.execute(
                select(_timers)
                .join(_cases, _cases.c.id == _timers.c.case_id)
                .where(_cases.c.ref == case_ref, _timers.c.kind == "timeout", _timers.c.state == "publicise")
            ).one()

    def hold_reports() -> collections.Counter[tuple[str, str]]:
        with engine.connect() as conn:
            rows = conn.execute(
                select(_outbox.c.recipient, _outbox.c.channel)
                .join(_cases, _cases.c.id == _outbox.c.case_id)
                .where(_cases.c.ref == ref, and_(_outbox.c.kind == "message", _outbox.c.template == "timeout_held"))
            ).all()
        return collections.Counter((r.recipient, r.channel) for r in rows)

    assert timer_of(ref).due_at < dt.datetime.now(dt.UTC)
    with schedulers(db_url, 1, tmp_path) as procs:
        (proc,) = procs
        wait_for("the control case to end publicity", lambda: timer_of(control).status == "fired", procs, 60)
        held = wait_for("the hold", lambda: (t := timer_of(ref)).held_at is not None and t, procs, 60)
        after_hold = len(proc.sweeps())
        wait_for("four more sweeps", lambda: len(proc.sweeps()) >= after_hold + 4, procs, 60)
        sweeps = len(proc.sweeps())

        timer = timer_of(ref)
        assert svc.get_case(ref).state == "publicise"
        assert (timer.status, timer.held_at, timer.fired_at) == ("pending", held.held_at, None)
        assert "公示期内有未处理的异议" in (timer.last_error or "")
        # reported once to the reviewer (each user holding the role over the case: one inbox row each),
        # not once per sweep
        assert hold_reports() == {(who, "inbox"): 1 for who in REVIEWERS}
        print(f"\n[5] held through {sweeps} sweeps; hold reported to {sorted(REVIEWERS)} once each")

        clock.set(dt.datetime.now(dt.UTC))  # the reviewer resolves it today
        svc.resolve_objection(ref, objection.id, "wu", "dismissed", "经核实无经营性收入")
        wait_for("the released timeout to fire", lambda: svc.get_case(ref).state == "approve", procs, 30)
        assert proc.stop() == 0

    timer = timer_of(ref)
    assert timer.status == "fired" and timer.fired_at is not None
    assert hold_reports() == {(who, "inbox"): 1 for who in REVIEWERS}
    history = svc.history(ref)
    assert [h.trigger for h in history if h.trigger == "end_publicity"] == ["end_publicity"]
    last = history[-1]
    assert (last.actor, last.trigger, last.from_state, last.to_state) == (
        "system",
        "end_publicity",
        "publicise",
        "approve",
    )
    assert "Traceback" not in proc.stderr()
    assert svc.verify_audit().ok
