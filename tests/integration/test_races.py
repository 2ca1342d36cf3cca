"""Races against real databases: many writers on one case, many processes on one SQLite file,
a long audit chain written by 16 threads at once, and the service running as a database role
that does not own the tables.

Every test counts exactly: one winner per race, every loser refused with a typed error that
says what happened, one audit event per successful change and none for a refused one.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import ProgrammingError

from db import AuditEvent, Case, Objection, OutboxMessage, Timer, make_engine
from engine import (
    Casework,
    ConflictError,
    FixedClock,
    InvalidTransition,
    load_definition_file,
)
from tests.conftest import BUNDLED, USERS
from tests.integration.race_support import (
    START,
    Households,
    audit_count,
    case_id,
    postgres_only,
    race_worker,
    seqs,
    sqlite_only,
)
from tests.pgserver import PgServer

WF = "poverty_archive"
RACERS = 16

_cases = Case.__table__
_events = AuditEvent.__table__
_timers = Timer.__table__
_outbox = OutboxMessage.__table__
_objections = Objection.__table__


def _per_case(engine: Engine, table: Any, refs: list[str]) -> dict[str, int]:
    """Rows of ``table`` per case ref (0 for a case without any)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(_cases.c.ref, func.count(table.c.id))
            .select_from(_cases.outerjoin(table, table.c.case_id == _cases.c.id))
            .where(_cases.c.ref.in_(refs))
            .group_by(_cases.c.ref)
        ).all()
    return {ref: int(n) for ref, n in rows}


def _check_loser(exc: BaseException, ref: str, *, pinned: bool) -> str:
    """A loser must be told precisely that someone else got there first; return its kind."""
    if isinstance(exc, ConflictError):
        assert exc.ref == ref
        assert str(exc).startswith(f"case {ref} was changed by someone else at the same time"), str(exc)
        assert "nothing was saved" in str(exc) and "retry" in str(exc), str(exc)
        return "ConflictError"
    if isinstance(exc, InvalidTransition) and not pinned:
        # it read the case after the winner committed: the case is no longer in apply
        assert exc.ref == ref and exc.state == "review" and exc.trigger == "submit"
        assert str(exc).startswith(f"case {ref} is in review (审核); submit applies only from apply."), str(exc)
        return "InvalidTransition"
    raise AssertionError(f"a loser got {type(exc).__name__}: {exc!r}")


# ------------------------------------------------------------- PostgreSQL: 16 threads, one trigger


@postgres_only()
@pytest.mark.parametrize(
    ("rounds", "pinned"),
    # 200 unpinned rounds take 9-17 s: in the slow suite; 50 (750 losers) keep each kind in `make test`
    [pytest.param(200, False, marks=pytest.mark.slow), (50, False), (50, True)],
    ids=["unpinned-200", "unpinned-50", "expect_version-50"],
)
def test_sixteen_submits_at_once_exactly_one_wins(
    svc: Casework, db_url: str, clock: FixedClock, rounds: int, pinned: bool
) -> None:
    """16 app instances (own Casework each, one engine with a pool of 16) fire submit on the same case.

    Without ``expected_version`` a loser either read the case before the winner committed (its
    ``UPDATE ... WHERE version = 1`` then waits for the row lock and matches nothing: ConflictError)
    or after (the case is in review: InvalidTransition). With ``expected_version=1`` every loser is
    a ConflictError. Either way: one audit event, version 2, and the losers leave no timer or outbox
    row behind (compared with a case submitted alone).
    """
    people = Households(seed=11)
    racer_engine = make_engine(db_url, pool_size=RACERS)
    try:
        assert racer_engine.pool.size() >= RACERS  # type: ignore[attr-defined]
        racers = [Casework(racer_engine, clock) for _ in range(RACERS)]
        control = svc.create_case(WF, "lin", people()).ref
        svc.fire(control, "submit", "lin")
        kinds: collections.Counter[str] = collections.Counter()
        refs = []
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=RACERS) as pool:
            for _ in range(rounds):
                ref = svc.create_case(WF, "lin", people()).ref
                refs.append(ref)
                barrier = threading.Barrier(RACERS)

                def fire(i: int, ref: str = ref, barrier: threading.Barrier = barrier) -> BaseException | None:
                    barrier.wait(30)
                    try:
                        racers[i].fire(ref, "submit", "lin", expected_version=1 if pinned else None)
                    except Exception as exc:
                        return exc
                    return None

                outcomes = list(pool.map(fire, range(RACERS)))
                winners = [o for o in outcomes if o is None]
                assert len(winners) == 1, outcomes
                kinds.update(_check_loser(o, ref, pinned=pinned) for o in outcomes if o is not None)
        elapsed = time.monotonic() - started
        print(f"\n{rounds} rounds of {RACERS} racers in {elapsed:.1f}s; losers: {dict(kinds)}")
        assert sum(kinds.values()) == rounds * (RACERS - 1)
        if pinned:
            assert set(kinds) == {"ConflictError"}

        with svc.engine.connect() as conn:
            rows = conn.execute(select(_cases.c.ref, _cases.c.state, _cases.c.version).where(_cases.c.ref.in_(refs)))
            assert {(r.ref, r.state, r.version) for r in rows} == {(ref, "review", 2) for ref in refs}
            events = conn.execute(
                select(_cases.c.ref, _events.c.seq, _events.c.action, _events.c.trigger, _events.c.actor)
                .join(_cases, _cases.c.id == _events.c.case_id)
                .where(_cases.c.ref.in_(refs))
            ).all()
        by_case: dict[str, list[tuple[Any, ...]]] = collections.defaultdict(list)
        for e in events:
            by_case[e.ref].append((e.seq, e.action, e.trigger, e.actor))
        assert len(by_case) == rounds
        for ref in refs:
            assert sorted(by_case[ref]) == [(1, "created", None, "lin"), (2, "fired", "submit", "lin")], ref
        # losers wrote nothing that survived: the same timers and outbox rows as one lone submit
        for table in (_timers, _outbox):
            expected = _per_case(svc.engine, table, [control])[control]
            assert expected > 0
            assert _per_case(svc.engine, table, refs) == dict.fromkeys(refs, expected), table.name
        report = svc.verify_audit()
        assert report.ok and report.cases == rounds + 1 and report.events == 2 * (rounds + 1)
    finally:
        racer_engine.dispose()


# ------------------------------------------------------------------ SQLite: 8 processes, one file


def _run_processes(db_url: str, plans: list[list[tuple[str, str, str, Any]]]) -> list[list[tuple[str, str, str]]]:
    """Start one spawned process per plan; each runs its jobs released together by one barrier."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(plans))
    results = ctx.Queue()
    procs = [
        ctx.Process(target=race_worker, args=(db_url, i, plan, barrier, results, START.isoformat()), daemon=True)
        for i, plan in enumerate(plans)
    ]
    for p in procs:
        p.start()
    collected: dict[int, list[tuple[str, str, str]]] = {}
    try:
        deadline = time.monotonic() + 300
        while len(collected) < len(procs):
            try:
                index, outcomes = results.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"only {len(collected)} of {len(procs)} processes reported") from None
            collected[index] = outcomes
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():  # pragma: no cover - only if a worker hangs
                p.kill()
                p.join()
        results.close()
        results.join_thread()
    for p in procs:
        assert p.exitcode == 0, f"worker {p.pid} exited with {p.exitcode}"
    for index, outcomes in collected.items():
        crashed = [o for o in outcomes if o[1].startswith("WORKER:")]
        assert not crashed, f"process {index} failed: {crashed}"
    return [collected[i] for i in range(len(plans))]


@pytest.mark.scenario  # eight OS processes racing
@sqlite_only()
def test_eight_processes_fire_the_same_step_on_one_sqlite_file(svc: Casework, db_url: str) -> None:
    """8 processes fire submit on the same case at once, over 20 cases: one success per case, the
    others refused with a conflict or 'no longer in apply' — never a raw 'database is locked'."""
    processes, cases = 8, 20
    people = Households(seed=21)
    control = svc.create_case(WF, "lin", people()).ref
    svc.fire(control, "submit", "lin")
    refs = [svc.create_case(WF, "lin", people()).ref for _ in range(cases)]
    before = audit_count(svc.engine)
    plans = [[("fire", ref, "lin", "submit") for ref in refs] for _ in range(processes)]
    results = _run_processes(db_url, plans)

    raw = [o for outcomes in results for o in outcomes if o[1].startswith("RAW:")]
    assert not raw, "raw database errors reached a caller:\n" + "\n".join(o[2] for o in raw)
    kinds: collections.Counter[str] = collections.Counter()
    for ref in refs:
        got = [o for outcomes in results for o in outcomes if o[0] == ref]
        assert len(got) == processes
        assert [o[1] for o in got].count("ok") == 1, got
        for _, kind, message in got:
            if kind == "ok":
                continue
            kinds[kind] += 1
            assert "database is locked" not in message
            if kind == "ConflictError":
                assert message.startswith(f"case {ref} was changed by someone else at the same time"), message
            else:
                assert kind == "InvalidTransition", (kind, message)
                assert message.startswith(f"case {ref} is in review (审核); submit applies only from apply"), message
    print(f"\nlosers: {dict(kinds)}")
    assert sum(kinds.values()) == cases * (processes - 1)
    assert audit_count(svc.engine) == before + cases
    for ref in refs:
        view = svc.get_case(ref)
        assert (view.state, view.version) == ("review", 2)
        assert seqs(svc.engine, ref) == [1, 2]
    # the losers' timers and outbox rows were rolled back with them
    for table in (_timers, _outbox):
        expected = _per_case(svc.engine, table, [control])[control]
        assert expected > 0
        assert _per_case(svc.engine, table, refs) == dict.fromkeys(refs, expected), table.name
    assert svc.verify_audit().ok


@pytest.mark.scenario  # eight OS processes racing
@sqlite_only()
def test_eight_processes_writing_different_cases_never_conflict(svc: Casework, db_url: str) -> None:
    """8 processes each edit their own case at the same moment, 20 times: SQLite serialises the
    writers and the engine retries a stale snapshot, so every edit succeeds — no spurious conflict,
    no 'database is locked'."""
    processes, rounds = 8, 20
    people = Households(seed=22)
    refs = [svc.create_case(WF, "lin", people()).ref for _ in range(processes)]
    before = audit_count(svc.engine)
    plans = [
        [("update", refs[i], "lin", {"cause": f"第{k}次补充说明（进程{i}）"}) for k in range(rounds)]
        for i in range(processes)
    ]
    results = _run_processes(db_url, plans)
    bad = [o for outcomes in results for o in outcomes if o[1] != "ok"]
    assert not bad, bad
    assert audit_count(svc.engine) == before + processes * rounds
    for i, ref in enumerate(refs):
        view = svc.get_case(ref)
        assert view.version == 1 + rounds
        assert view.data["cause"] == f"第{rounds - 1}次补充说明（进程{i}）"
        assert seqs(svc.engine, ref) == list(range(1, rounds + 2))
    assert svc.verify_audit().ok


# -------------------------------------------------- PostgreSQL: one chain, 16 writers, many appends


def _append_concurrently(
    services: list[Casework], total: int, append: Callable[[Casework, int, int], str]
) -> tuple[collections.Counter[str], int]:
    """Run ``append(service, writer, ticket)`` from len(services) threads until ``total`` have succeeded.

    Each ticket is retried on ConflictError until it succeeds; anything else fails the test.
    Returns the successes by kind and the number of conflicts.
    """
    tickets = itertools.count()
    lock = threading.Lock()
    done: collections.Counter[str] = collections.Counter()
    conflicts = [0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(services))

    def writer(w: int) -> None:
        barrier.wait(30)
        while not errors:
            with lock:
                ticket = next(tickets)
            if ticket >= total:
                return
            while True:
                try:
                    kind = append(services[w], w, ticket)
                except ConflictError:
                    with lock:
                        conflicts[0] += 1
                    continue
                except BaseException as exc:
                    errors.append(exc)
                    return
                with lock:
                    done[kind] += 1
                break

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(len(services))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return done, conflicts[0]


@postgres_only()
@pytest.mark.parametrize(
    "total",
    # 300 appends take ~12 s: in the slow suite with 10,000; 100 (16 writers on each half) in `make test`
    [100, pytest.param(300, marks=pytest.mark.slow), pytest.param(10_000, marks=pytest.mark.slow)],
    ids=["100-appends", "300-appends", "10000-appends"],
)
def test_sixteen_writers_one_audit_chain(svc: Casework, db_url: str, clock: FixedClock, total: int) -> None:
    """16 threads append to one case's chain — clerks editing its data in 申请, then reviewers
    recording objections in 公示 — retrying on conflict until ``total`` appends succeeded. The chain
    never forks (UNIQUE(case_id, seq) is never hit), seq is gapless, every objection row has its event.

    (Data may be changed only where the workflow's ``edit:`` allows it — the initial state — so
    the edits race first, then the case moves on and the objections race.)"""
    ref = svc.create_case(WF, "lin", Households(seed=31)()).ref
    engine = make_engine(db_url, pool_size=RACERS)
    began = time.monotonic()
    try:
        services = [Casework(engine, clock) for _ in range(RACERS)]

        def edit(service: Casework, w: int, ticket: int) -> str:
            service.update_case(ref, "lin", {"cause": f"补充说明 {ticket}"})
            return "updated"

        edited, edit_conflicts = _append_concurrently(services, total // 2, edit)
        edits_took = time.monotonic() - began
    finally:
        engine.dispose()
    svc.fire(ref, "submit", "lin")
    svc.fire(ref, "pass_review", "wu")
    assert svc.get_case(ref).state == "publicise"
    start = len(seqs(svc.engine, ref))
    assert start == 3 + total // 2

    def append(service: Casework, w: int, ticket: int) -> str:
        service.add_objection(
            ref, "wu", f"第{ticket}号异议：收入情况与邻居反映不符", channel="来信" if w % 2 else "电话"
        )
        return "objection_added"

    engine = make_engine(db_url, pool_size=RACERS)
    try:
        services = [Casework(engine, clock) for _ in range(RACERS)]
        started = time.monotonic()
        done, conflicts = _append_concurrently(services, total - total // 2, append)
        elapsed = time.monotonic() - started + edits_took
    finally:
        engine.dispose()
    done.update(edited)
    conflicts += edit_conflicts
    print(f"\n{total} appends by {RACERS} writers in {elapsed:.1f}s ({conflicts} conflicts retried); {dict(done)}")
    assert sum(done.values()) == total
    assert done["updated"] == total // 2 and done["objection_added"] == total - total // 2
    start = 3  # created, submit, pass_review: the appends are every other event

    assert seqs(svc.engine, ref) == list(range(1, start + total + 1))
    with svc.engine.connect() as conn:
        cid = case_id(svc.engine, ref)
        actions = dict(
            conn.execute(
                select(_events.c.action, func.count()).where(_events.c.case_id == cid).group_by(_events.c.action)
            ).all()
        )
        objections = conn.execute(
            select(func.count()).select_from(_objections).where(_objections.c.case_id == cid)
        ).scalar_one()
        distinct = conn.execute(
            select(func.count(func.distinct(_events.c.seq))).where(_events.c.case_id == cid)
        ).scalar_one()
    assert actions == {"created": 1, "fired": 2, "updated": done["updated"], "objection_added": done["objection_added"]}
    assert objections == done["objection_added"]  # a refused append left no objection row behind
    assert distinct == start + total
    view = svc.get_case(ref)
    assert view.version == start + total and view.state == "publicise"
    report = svc.verify_audit(ref)
    assert report.ok, report.breaks
    assert report.events == start + total


# ------------------------------------------------- PostgreSQL: the app as a role that owns nothing

APP_ROLE = "casework_app"


@pytest.fixture
def app_role_url(db_url: str, pg_server: PgServer) -> Iterator[str]:
    """A LOGIN role without superuser or ownership, granted DML on the tables but not UPDATE, DELETE
    or TRUNCATE on audit_events; returns the database's URL as that role."""
    dbname = db_url.rsplit("/", 1)[1]

    def admin(sql: str, database: str = dbname) -> None:
        with psycopg.connect(**pg_server.conninfo(database), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    admin(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN "
        f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT; END IF; END $$",
        "postgres",
    )
    admin(
        f"GRANT CONNECT ON DATABASE {dbname} TO {APP_ROLE};"
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE};"
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE};"
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE};"
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE};"
        f"REVOKE DELETE, TRUNCATE ON cases FROM {APP_ROLE};"
        f"REVOKE UPDATE, DELETE, TRUNCATE ON workflow_versions, notices, notice_cases, access_log FROM {APP_ROLE};"
    )
    try:
        yield f"postgresql+psycopg://{APP_ROLE}@{pg_server.host}:{pg_server.port}/{dbname}"
    finally:
        admin(f"DROP OWNED BY {APP_ROLE}")  # its privileges in this database
        admin(f"REVOKE CONNECT ON DATABASE {dbname} FROM {APP_ROLE}")
        admin(f"DROP ROLE {APP_ROLE}", "postgres")


@postgres_only()
def test_app_role_without_ownership_works_but_cannot_touch_the_audit_trail(
    app_role_url: str, engine: Engine, clock: FixedClock
) -> None:
    app_engine = make_engine(app_role_url)
    try:
        with app_engine.connect() as conn:
            who = conn.execute(
                text(
                    "SELECT current_user, rolsuper, "
                    "(SELECT tableowner FROM pg_tables WHERE tablename = 'audit_events') "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            ).one()
        assert tuple(who) == (APP_ROLE, False, "postgres")

        # the whole application path works as this role
        app = Casework(app_engine, clock)
        app.load_workflow(load_definition_file(BUNDLED))
        for username, name, roles, scopes in USERS:
            app.add_user(username, name, roles, scopes)
        people = Households(seed=41)
        ref = app.create_case(WF, "lin", people()).ref
        for trigger, actor in [("submit", "lin"), ("pass_review", "wu")]:
            app.fire(ref, trigger, actor)
        app.add_objection(ref, "wu", "邻居反映其家中有营运车辆")
        other = app.create_case(WF, "lin", people()).ref
        app.update_case(other, "lin", {"phone": "13800001111"})
        app.fire(other, "withdraw", "lin", comment="申请人主动撤回")
        assert app.get_case(ref).state == "publicise" and app.get_case(other).state == "withdrawn"
        assert app.verify_audit().ok

        with engine.connect() as conn:
            snapshot = [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY id"))]
        assert len(snapshot) == 7  # created, submit, pass_review, objection, update; created, withdraw

        attempts = {
            "UPDATE audit_events SET actor = 'x'": "permission denied for table audit_events",
            "DELETE FROM audit_events": "permission denied for table audit_events",
            "TRUNCATE audit_events": "permission denied for table audit_events",
            "TRUNCATE audit_events CASCADE": "permission denied for table audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER USER": "must be owner of table audit_events",
            "DROP TRIGGER audit_events_no_change ON audit_events": "must be owner of relation audit_events",
            "DROP TABLE audit_events CASCADE": "must be owner of table audit_events",
            "DELETE FROM cases": "permission denied for table cases",
            "ALTER TABLE cases DISABLE TRIGGER USER": "must be owner of table cases",
            "UPDATE workflow_versions SET source = ''": "permission denied for table workflow_versions",
            "UPDATE notices SET html = ''": "permission denied for table notices",
            "DELETE FROM notice_cases": "permission denied for table notice_cases",
        }
        for sql, refusal in attempts.items():
            with pytest.raises(ProgrammingError) as info, app_engine.begin() as conn:
                conn.execute(text(sql))
            assert isinstance(info.value.orig, psycopg.errors.InsufficientPrivilege), (sql, info.value.orig)
            assert refusal in str(info.value.orig), (sql, str(info.value.orig))

        with engine.connect() as conn:
            assert [tuple(r) for r in conn.execute(text("SELECT * FROM audit_events ORDER BY id"))] == snapshot
        assert app.verify_audit().ok
    finally:
        app_engine.dispose()


@postgres_only()
def test_app_role_privileges_are_what_the_test_granted(app_role_url: str, engine: Engine) -> None:
    """The refusals above come from privileges, not only from the owner's triggers."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = :role AND table_name = 'audit_events' ORDER BY privilege_type"
            ),
            {"role": APP_ROLE},
        ).scalars()
        assert list(rows) == ["INSERT", "SELECT"]
        owners = set(
            conn.execute(text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars()
        )
    assert owners == {"postgres"}
