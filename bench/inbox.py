"""A user's inbox at a million cases: ``Casework.waiting_for`` vs the same SELECT by hand in Core.

    python -m bench inbox -v          # 1,000,000 cases, 200 inbox pages per variant, SQLite and PostgreSQL
    python -m bench inbox --quick     # 2,000 cases, 20 pages: checks the harness, not speed

The database holds ``cases`` synthetic 困难职工建档立卡 archives written by
:func:`casework.population.populate` (seeded: the same cases every run; most
filed, the rest waiting in every open state, some overdue, some paused), and
nine users: a clerk, a reviewer and an approver each covering one county,
four counties, and all of them (``*``). Each variant asks for page 1 (50
cases) of every user's inbox in turn, ``queries`` times, after one untimed
pass, and reports the median and 95th percentile per page.

* **Core, same SELECT** (baseline): the statements ``waiting_for`` sends —
  the page's candidates (one index range per (state, county) and group, read
  in order and cut at 51: a UNION ALL on SQLite, the ranges as arrays joined
  LATERAL on PostgreSQL), then the page's rows by id — written by hand, with
  the users' roles and counties known in advance; no views built.
* **engine waiting_for**: the public API: the user looked up, the states
  worked out from the loaded definition, the SELECT, and a ``CaseView`` (with
  time left on the working-day calendar) per row.
* **one SELECT with IN lists**: what one would write first —
  ``state IN (…) AND scope IN (…) ORDER BY deadline_at LIMIT 51`` — for scale:
  it must read every candidate of the user before it can sort.

Populating a million cases takes minutes, so each backend's database is
populated **once per run**, by the first variant that needs it, and shared
read-only by the others (a file beside the variants' own on SQLite, a
database on the run's throwaway PostgreSQL server, both gone after the run);
``populate_per_s`` is that one population's rate. ``rounds`` is 1 for the
same reason: a second round would measure the same database again. Every
variant still runs in its own fresh process and warms up before timing.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url

from bench.harness import Metric, Scenario, Variant
from casework.population import populate
from db import Case, make_engine, upgrade
from engine import Casework, FixedClock, WorkflowDef, load_definition_file

__all__ = ["SCENARIO", "core", "engine", "one_select"]

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
WORKFLOW = "poverty_archive"
SEED = 1
NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
FOUR = ["芗城区", "龙文区", "漳浦县", "南靖县"]
# username, name, role, counties: each role with one county, four, and all (*)
USERS: tuple[tuple[str, str, str, list[str]], ...] = (
    ("lin", "林晓", "clerk", ["芗城区"]),
    ("chen", "陈建华", "clerk", FOUR),
    ("zheng", "郑丽", "clerk", ["*"]),
    ("wu", "吴明辉", "reviewer", ["龙文区"]),
    ("huang", "黄志远", "reviewer", FOUR),
    ("cai", "蔡雅琴", "reviewer", ["*"]),
    ("su", "苏文斌", "approver", ["漳浦县"]),
    ("xu", "许慧敏", "approver", FOUR),
    ("ye", "叶振华", "approver", ["*"]),
)
PER_PAGE = 50

_cases = Case.__table__


# ---------------------------------------------------------------- population


def _shared(url: str, cases: int) -> tuple[str, dict[str, float]]:
    """The run's populated database for ``url``'s backend (made on first use) and its population figures."""
    if make_url(url).get_backend_name() == "sqlite":
        return _shared_sqlite(url, cases)
    return _shared_postgres(url, cases)


def _fill(url: str, cases: int) -> dict[str, float]:
    """Schema, workflow, users and ``cases`` cases; returns how long populating took."""
    eng = make_engine(url)
    try:
        upgrade(eng)
        svc = Casework(eng, FixedClock(NOW))
        svc.load_workflow(load_definition_file(BUNDLED))
        for username, name, role, scopes in USERS:
            svc.add_user(username, name, [role], scopes)
        t0 = time.perf_counter()
        populate(eng, WORKFLOW, cases, seed=SEED, clock_now=NOW)
        took = time.perf_counter() - t0
        if eng.dialect.name == "postgresql":
            with eng.connect() as conn:
                # what autovacuum does after a bulk load: statistics, and the visibility map index-only scans use
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    finally:
        eng.dispose()
    return {"populate_s": took, "populate_per_s": cases / took}


def _shared_sqlite(url: str, cases: int) -> tuple[str, dict[str, float]]:
    own = Path(make_url(url).database or "")
    path = own.parent / f"inbox_shared_{cases}_{SEED}.db"
    marker = path.with_suffix(".json")
    if not marker.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        figures = _fill(f"sqlite:///{path}", cases)
        marker.write_text(json.dumps(figures))
    return f"sqlite:///{path}", json.loads(marker.read_text())


def _shared_postgres(url: str, cases: int) -> tuple[str, dict[str, float]]:
    name = f"inbox_shared_{cases}_{SEED}"
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            found = conn.execute(
                text("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if found is not None and found[0]:
                return _with_db(url, name), json.loads(found[0])
            if found is not None:  # a population that did not finish
                conn.exec_driver_sql(f'DROP DATABASE "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        figures = _fill(_with_db(url, name), cases)
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # the figures live with the database, so "populated and finished" is one fact
            conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(figures)}'")
    finally:
        admin.dispose()
    return _with_db(url, name), figures


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


# ------------------------------------------------------------------ timing


def _time_pages(ask: Callable[[str], int], queries: int) -> dict[str, float]:
    """Ask every user's first page once untimed, then ``queries`` times in turn; per-page figures in ms."""
    users = [u[0] for u in USERS]
    for user in users:
        ask(user)
    times, sizes = [], []
    for i in range(queries):
        t0 = time.perf_counter()
        sizes.append(ask(users[i % len(users)]))
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": statistics.median(times),
        "p95_ms": statistics.quantiles(times, n=20)[-1],
        "rows_per_page": statistics.mean(sizes),
        "queries": float(queries),
    }


def _run(url: str, cases: int, queries: int, make: Callable[[Engine], Callable[[str], int]]) -> dict[str, float]:
    shared, figures = _shared(url, cases)
    eng = make_engine(shared)
    try:
        result = _time_pages(make(eng), queries)
    finally:
        eng.dispose()
    return {**result, **figures, "cases": float(cases)}


def engine(url: str, cases: int = 1_000_000, queries: int = 200) -> dict[str, float]:
    """``Casework.waiting_for``: the public API, views and all."""

    def make(eng: Engine) -> Callable[[str], int]:
        svc = Casework(eng, FixedClock(NOW))
        return lambda user: len(svc.waiting_for(user, per_page=PER_PAGE).items)

    return _run(url, cases, queries, make)


def core(url: str, cases: int = 1_000_000, queries: int = 200) -> dict[str, float]:
    """The baseline: the SELECTs ``waiting_for`` sends (candidates, then the page's rows), by hand; rows only."""
    return _run(url, cases, queries, lambda eng: _by_hand(eng, same=True))


def one_select(url: str, cases: int = 1_000_000, queries: int = 200) -> dict[str, float]:
    """For scale: one SELECT with IN lists, ordered by deadline, limited."""
    return _run(url, cases, queries, lambda eng: _by_hand(eng, same=False))


def _by_hand(eng: Engine, *, same: bool) -> Callable[[str], int]:
    with eng.connect() as conn:
        vid = conn.execute(text("SELECT id FROM workflow_versions WHERE name = :n"), {"n": WORKFLOW}).scalar_one()
    wf: WorkflowDef = load_definition_file(BUNDLED)  # what was loaded, known in advance as by a hand-written query
    postgres = eng.dialect.name == "postgresql"
    asks: dict[str, Callable[[Any], int]] = {}
    for username, _, role, scopes in USERS:
        states = sorted({s for t in wf.transitions.values() if role in t.by for s in t.sources})
        counties = None if "*" in scopes else scopes
        if not same:
            asks[username] = _counted(_one_select(vid, states, counties), {})
        elif postgres:
            asks[username] = _paged(*_lateral(vid, states, counties))
        else:
            asks[username] = _paged(_union(vid, states, counties), {})

    def ask(user: str) -> int:
        with eng.connect() as conn:
            return asks[user](conn)

    return ask


def _counted(query: Any, values: dict[str, Any]) -> Callable[[Any], int]:
    return lambda conn: min(len(conn.execute(query, values).all()), PER_PAGE)  # the extra row only says "more"


def _paged(candidates: Any, values: dict[str, Any]) -> Callable[[Any], int]:
    def ask(conn: Any) -> int:
        ids = [r.id for r in conn.execute(candidates, values)]
        rows = conn.execute(select(_cases).where(_cases.c.id.in_(ids))).all()
        return min(len(rows), PER_PAGE)

    return ask


def _reads(vid: Any, state: Any, scope: Any) -> list[Any]:
    """The three ordered, limited reads of one (version, state[, scope]) range: running dated, undated, paused."""
    c = _cases.c
    none = cast(null(), c.deadline_at.type)
    where = [c.workflow_version_id == vid, c.state == state]
    if scope is not None:
        where.append(c.scope == scope)
    return [
        select(c.id, literal(grp).label("grp"), k1.label("k1"), k2.label("k2"))
        .where(*where, *extra)
        .order_by(c.paused_at, c.deadline_at, c.id)
        .limit(PER_PAGE + 1)
        for grp, extra, k1, k2 in (
            (0, [c.paused_at.is_(None), c.deadline_at.is_not(None)], c.deadline_at, none),
            (1, [c.paused_at.is_(None), c.deadline_at.is_(None)], none, none),
            (2, [c.paused_at.is_not(None)], c.paused_at, c.deadline_at),
        )
    ]


def _top(candidates: Any) -> Any:
    merged = candidates.subquery()
    return select(merged).order_by(merged.c.grp, merged.c.k1, merged.c.k2, merged.c.id).limit(PER_PAGE + 1)


def _union(vid: int, states: list[str], scopes: list[str] | None) -> Any:
    """SQLite: a UNION ALL of every range's reads."""
    parts = []
    for state in states:
        for scope in scopes or [None]:
            for read in _reads(vid, state, scope):
                sub = read.subquery()
                parts.append(select(sub.c.id, sub.c.grp, sub.c.k1, sub.c.k2))
    return _top(union_all(*parts))


def _lateral(vid: int, states: list[str], scopes: list[str] | None) -> tuple[Any, dict[str, Any]]:
    """PostgreSQL: the ranges as arrays, each joined LATERAL to its reads."""
    pairs = [(state, scope) for state in states for scope in scopes or [None]]
    arrays = [bindparam("vids", [vid] * len(pairs), type_=ARRAY(Integer))]
    arrays.append(bindparam("states", [st for st, _ in pairs], type_=ARRAY(String)))
    names = ["vid", "state"]
    if scopes is not None:
        arrays.append(bindparam("scopes", [sc for _, sc in pairs], type_=ARRAY(String)))
        names.append("scope")
    r = func.unnest(*arrays).table_valued(*names).render_derived(name="ranges")
    reads = union_all(*_reads(r.c.vid, r.c.state, r.c.scope if scopes is not None else None)).subquery().lateral()
    return _top(select(reads.c.id, reads.c.grp, reads.c.k1, reads.c.k2).select_from(r).join(reads, true())), {}


def _one_select(vid: int, states: list[str], scopes: list[str] | None) -> Any:
    c = _cases.c
    query = select(_cases).where(c.workflow_version_id == vid, c.state.in_(states))
    if scopes is not None:
        query = query.where(c.scope.in_(scopes))
    grp = case((c.paused_at.is_not(None), 2), (c.deadline_at.is_(None), 1), else_=0)
    return query.order_by(grp, c.deadline_at, c.id).limit(PER_PAGE + 1)


# ------------------------------------------------------------------ scenario

_METRICS = (
    Metric("p50_ms", "p50 ms", "{:,.2f}"),
    Metric("p95_ms", "p95 ms", "{:,.2f}"),
    Metric("rows_per_page", "rows/page", "{:,.1f}", lower=False),
    Metric("populate_per_s", "populate cases/s", "{:,.0f}", lower=False),
    Metric("populate_s", "populate s", "{:,.0f}"),
)


def _variants() -> tuple[Variant, ...]:
    out = []
    for backend, tag in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        base = f"core_{backend}"
        out += [
            Variant(base, f"Core, same SELECT ({tag})", "bench.inbox:core", backend=backend),
            Variant(
                f"engine_{backend}", f"engine waiting_for ({tag})", "bench.inbox:engine", baseline=base, backend=backend
            ),
            Variant(
                f"one_{backend}",
                f"one SELECT, IN lists ({tag})",
                "bench.inbox:one_select",
                baseline=base,
                backend=backend,
            ),
        ]
    return tuple(out)


SCENARIO = Scenario(
    name="inbox",
    title="a user's inbox, page 1 (50 cases by deadline), at 1,000,000 cases",
    goal="engine p95 ≤ 20 ms at 1,000,000 cases on both backends",
    variants=_variants(),
    metrics=_METRICS,
    primary="p95_ms",
    rounds=1,
    quick={"cases": 2000, "queries": 20},
    timeout=5400.0,
)
