"""The office's reports at a million archives: ``engine.reports`` (one grouped SQL statement) vs fetching every case.

    python -m bench report -v          # 1,000,000 archives (+100,000 grants, +100,000 petitions), SQLite and PostgreSQL
    python -m bench report --quick     # 2,000 archives: checks the harness, not speed
    CASEWORK_BENCH_CACHE=/var/tmp/cw python -m bench report --no-postgres   # keep the populated SQLite file

The database holds ``cases`` synthetic 困难职工建档立卡 archives written by
:func:`casework.population.populate` (seeded, created over the 120 days
before 2026-02-27, so the year 2026 starts with archives on file), then one
archive in a hundred of those filed exits hardship (解困脱困, fired through
the engine), and a tenth as many cases each of two small workflows declared
here: a grant programme (``programme:``; the household's monthly income per
person as its amount, its size as its people) and ``petition`` (信访, with a
15-working-day deadline, so some are overdue).

Each variant runs every report — archives (now, and as of 2026-01-01),
exit-rate 2026, programmes, petitions, overdue — once untimed, then
``queries`` times, and reports the median per report in ms:

* **fetch every case, aggregate in Python** (baseline): what a script over
  ``casework case list --json`` did (the issue's jq pipeline) — one SELECT of
  every case's workflow, state, scope, data, created_at, deadline_at and
  paused_at (and, for the as-of and exit-rate reports, every audit event's
  case, time and states), counted in Python dictionaries.
* **engine.reports**: the public functions: one grouped statement per
  report, the Sheet built from the grouped rows.

Populating takes minutes, so each backend's database is populated once per
run by the first variant that needs it and shared read-only by the others,
as in ``bench.inbox``; with ``$CASEWORK_BENCH_CACHE`` set to a directory the
SQLite file is kept there and reused by later runs (its name holds the size,
the seed and a hash of this module's workflows).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url

from bench.harness import Metric, Scenario, Variant
from casework.population import populate
from db import make_engine, schema, upgrade
from engine import Casework, FixedClock, load_definition, load_definition_file

__all__ = ["SCENARIO", "fetch_all", "reports"]

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
SEED = 1
ZONE = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 2, 27, 9, 0, tzinfo=ZONE)
YEAR = 2026
AS_OF = dt.datetime(2026, 1, 1, tzinfo=ZONE)
EXIT_SHARE = 100  # one filed archive in this many exits hardship

_COUNTIES = "[芗城区, 龙文区, 龙海区, 长泰区, 云霄县, 漳浦县, 诏安县, 东山县, 南靖县, 平和县, 华安县]"

GRANT = f"""\
workflow: bench_grant
version: 1
title: 困难职工补助（基准）
timezone: Asia/Shanghai
ref_prefix: BG
roles: {{clerk: 基层工会经办人, approver: 市总工会审批人, cashier: 财务出纳}}
fields:
  applicant_name:    {{type: text, label: 申请人姓名, required: true, pii: name, max: 40}}
  county:            {{type: choice, label: 所属县区, scope: true, choices: {_COUNTIES}}}
  household_size:    {{type: integer, label: 家庭人口, min: 1, max: 20}}
  income_per_capita: {{type: decimal, label: 补助金额（元）, min: 0, max: 100000}}
states:
  apply:    {{label: 申请, initial: true}}
  approve:  {{label: 审批, deadline: 5 working days}}
  pay:      {{label: 发放, deadline: 5 working days}}
  paid:     {{label: 已发放, final: true}}
  rejected: {{label: 不予补助, final: true, void: true}}
transitions:
  submit: {{label: 提交, from: apply, to: approve, by: clerk}}
  grant:  {{label: 审批通过, from: approve, to: pay, by: approver}}
  reject: {{label: 不予补助, from: approve, to: rejected, by: approver, comment: required}}
  pay_out: {{label: 发放, from: pay, to: paid, by: cashier}}
programme:
  label: 困难职工补助（基准）
  amount: income_per_capita
  people: household_size
  granted: [pay, paid]
  paid: paid
"""

PETITION = f"""\
workflow: petition
version: 1
title: 职工信访
timezone: Asia/Shanghai
ref_prefix: XF
roles: {{clerk: 信访登记人, handler: 信访承办人}}
fields:
  applicant_name: {{type: text, label: 信访人, required: true, pii: name, max: 40}}
  county:         {{type: choice, label: 所属县区, scope: true, choices: {_COUNTIES}}}
states:
  register: {{label: 登记, initial: true}}
  handle:   {{label: 办理, deadline: 15 working days}}
  closed:   {{label: 已办结, final: true}}
  dropped:  {{label: 不予受理, final: true, void: true}}
transitions:
  accept: {{label: 受理, from: register, to: handle, by: clerk}}
  drop:   {{label: 不予受理, from: register, to: dropped, by: clerk, comment: required}}
  close:  {{label: 办结, from: handle, to: closed, by: handler}}
"""

_WORKFLOWS_HASH = hashlib.sha256((BUNDLED.read_text(encoding="utf-8") + GRANT + PETITION).encode()).hexdigest()[:8]


# ---------------------------------------------------------------- population


def _fill(url: str, cases: int) -> dict[str, float]:
    """Schema, workflows, a reviewer, the cases and the exits; returns how long populating took."""
    eng = make_engine(url)
    try:
        upgrade(eng)
        svc = Casework(eng, FixedClock(NOW))
        svc.load_workflow(load_definition_file(BUNDLED))
        svc.load_workflow(load_definition(GRANT, "bench_grant"))
        svc.load_workflow(load_definition(PETITION, "petition"))
        svc.add_user("cai", "蔡雅琴", ["reviewer"], ["*"])
        t0 = time.perf_counter()
        populate(eng, "poverty_archive", cases, seed=SEED, clock_now=NOW)
        populate(eng, "bench_grant", max(cases // 10, 1), seed=SEED, clock_now=NOW)
        populate(eng, "petition", max(cases // 10, 1), seed=SEED, clock_now=NOW)
        took = time.perf_counter() - t0
        c = schema.cases.c
        with eng.connect() as conn:
            refs = conn.execute(
                select(c.ref)
                .where(c.workflow == "poverty_archive", c.state == "filed", c.id % EXIT_SHARE == 0)
                .order_by(c.id)
            ).scalars()
            exiting = list(refs)
        for ref in exiting:
            svc.fire(ref, "exit", "cai", comment="年度复核：家庭收入已高于困难职工认定标准")
        if eng.dialect.name == "postgresql":
            with eng.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            with eng.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        eng.dispose()
    return {"populate_s": took, "populate_per_s": cases * 1.2 / took, "exits": float(len(exiting))}


def _shared(url: str, cases: int) -> tuple[str, dict[str, float]]:
    """The run's populated database for ``url``'s backend (made on first use) and its population figures."""
    if make_url(url).get_backend_name() == "sqlite":
        return _shared_sqlite(url, cases)
    return _shared_postgres(url, cases)


def _shared_sqlite(url: str, cases: int) -> tuple[str, dict[str, float]]:
    kept = os.environ.get("CASEWORK_BENCH_CACHE")
    folder = Path(kept) if kept else Path(make_url(url).database or "").parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"report_shared_{cases}_{SEED}_{_WORKFLOWS_HASH}.db"
    marker = path.with_suffix(".json")
    if not marker.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        figures = _fill(f"sqlite:///{path}", cases)
        marker.write_text(json.dumps(figures))
    return f"sqlite:///{path}", json.loads(marker.read_text())


def _shared_postgres(url: str, cases: int) -> tuple[str, dict[str, float]]:
    name = f"report_shared_{cases}_{SEED}"
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
            conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(figures)}'")
    finally:
        admin.dispose()
    return _with_db(url, name), figures


def _with_db(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


# ------------------------------------------------------------------ the reports, timed

#: each report as the bench asks it: (key, name, options)
ASKED: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("archives", "archives", {}),
    ("archives_asof", "archives", {"as_of": dt.date(2025, 12, 31)}),
    ("exit_rate", "exit-rate", {"year": YEAR}),
    ("programmes", "programmes", {}),
    ("petitions", "petitions", {}),
    ("overdue", "overdue", {}),
)


def _time(asks: dict[str, Callable[[], Any]], queries: int) -> dict[str, float]:
    """Each ask once untimed, then ``queries`` times; the median ms of each and their sum."""
    for ask in asks.values():
        ask()
    result: dict[str, float] = {}
    for key, ask in asks.items():
        times = []
        for _ in range(queries):
            t0 = time.perf_counter()
            ask()
            times.append((time.perf_counter() - t0) * 1000)
        result[f"{key}_ms"] = statistics.median(times)
    result["total_ms"] = sum(result.values())
    return result


def reports(url: str, cases: int = 1_000_000, queries: int = 5) -> dict[str, float]:
    """``Casework.report``: one grouped statement per report, the Sheet built from the grouped rows."""
    shared, figures = _shared(url, cases)
    eng = make_engine(shared)
    try:
        svc = Casework(eng, FixedClock(NOW))
        asks: dict[str, Callable[[], Any]] = {
            key: functools.partial(svc.report, name, **opts) for key, name, opts in ASKED
        }
        result = _time(asks, queries)
    finally:
        eng.dispose()
    return {**result, **figures, "cases": float(cases)}


def fetch_all(url: str, cases: int = 1_000_000, queries: int = 3) -> dict[str, float]:
    """The baseline: every case (and, as of a date, every event) fetched and counted in Python.

    Its figures are checked against the engine's before anything is timed, so the
    two sides are known to count the same thing.
    """
    shared, figures = _shared(url, cases)
    eng = make_engine(shared)
    try:
        naive = _Naive(eng)
        asks: dict[str, Callable[[], Any]] = {
            "archives": naive.archives,
            "archives_asof": lambda: naive.archives(AS_OF),
            "exit_rate": naive.exit_rate,
            "programmes": naive.programmes,
            "petitions": naive.petitions,
            "overdue": naive.overdue,
        }
        _agree(Casework(eng, FixedClock(NOW)), {key: ask() for key, ask in asks.items()})
        result = _time(asks, queries)
    finally:
        eng.dispose()
    return {**result, **figures, "cases": float(cases)}


class _Naive:
    """What a script over ``case list --json`` does: fetch the rows, count in Python dictionaries."""

    def __init__(self, eng: Engine) -> None:
        self.eng = eng
        self.zone = dt.timezone(dt.timedelta(hours=8))  # Asia/Shanghai has kept +08:00 since 1991

    def archives(self, as_of: dt.datetime | None = None) -> Counter[str]:
        c = schema.cases.c
        by_state: Counter[str] = Counter()
        with self.eng.connect() as conn:
            if as_of is None:
                rows = conn.execute(select(c.state, c.scope, c.data).where(c.workflow == "poverty_archive"))
                per = Counter((r.state, r.scope, r.data.get("household_type")) for r in rows)
            else:
                states = self._states_at(conn, as_of)
                rows = conn.execute(select(c.id, c.scope, c.data).where(c.workflow == "poverty_archive"))
                per = Counter((states[r.id], r.scope, r.data.get("household_type")) for r in rows if r.id in states)
        for (state, _, _), n in per.items():
            by_state[state] += n
        return by_state

    def _states_at(self, conn: Any, cut: dt.datetime) -> dict[int, str]:
        """Each archive's state just before ``cut``: its events streamed in order."""
        e, c = schema.audit_events.c, schema.cases.c
        rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
            select(e.case_id, e.at, e.to_state)
            .join(schema.cases, c.id == e.case_id)
            .where(c.workflow == "poverty_archive")
            .order_by(e.case_id, e.seq)
        )
        states: dict[int, str] = {}
        for r in rows:
            if r.at < cut and r.to_state is not None:
                states[r.case_id] = r.to_state
        return states

    def exit_rate(self) -> tuple[int, int, int, int]:
        start = dt.datetime(YEAR, 1, 1, tzinfo=self.zone)
        end = dt.datetime(YEAR + 1, 1, 1, tzinfo=self.zone)
        e, c = schema.audit_events.c, schema.cases.c
        at_start: dict[int, str] = {}
        left: set[int] = set()
        came: set[int] = set()
        with self.eng.connect() as conn:
            rows = conn.execution_options(stream_results=True, yield_per=20_000).execute(
                select(e.case_id, e.at, e.from_state, e.to_state)
                .join(schema.cases, c.id == e.case_id)
                .where(c.workflow == "poverty_archive")
                .order_by(e.case_id, e.seq)
            )
            for r in rows:
                if r.at < start:
                    at_start[r.case_id] = r.to_state
                elif r.at < end and r.to_state != r.from_state:
                    if r.to_state == "exited":
                        left.add(r.case_id)
                    elif r.to_state == "filed":
                        came.add(r.case_id)
        on_file = {i for i, s in at_start.items() if s == "filed"}
        new = came - on_file
        return len(on_file), len(on_file & left), len(new), len(new & left)

    def programmes(self) -> tuple[int, int, Decimal, Decimal]:
        c = schema.cases.c
        granted, paid, count, people = Decimal(0), Decimal(0), 0, 0
        with self.eng.connect() as conn:
            for r in conn.execute(select(c.state, c.scope, c.data, c.created_at).where(c.workflow == "bench_grant")):
                r.created_at.astimezone(self.zone).year  # noqa: B018 - the year a script would group by
                count += 1
                if r.state in ("pay", "paid"):
                    amount = Decimal(r.data.get("income_per_capita") or 0)
                    granted += amount
                    people += int(r.data.get("household_size") or 0)
                    if r.state == "paid":
                        paid += amount
        return count, people, granted, paid

    def petitions(self) -> tuple[int, int, int, int]:
        c = schema.cases.c
        registered = closed = open_ = late = 0
        with self.eng.connect() as conn:
            query = select(c.state, c.scope, c.created_at, c.deadline_at, c.paused_at).where(c.workflow == "petition")
            for r in conn.execute(query):
                registered += 1
                if r.state == "closed":
                    closed += 1
                elif r.state != "dropped":
                    open_ += 1
                    late += r.deadline_at is not None and r.deadline_at <= NOW and r.paused_at is None
        return registered, closed, open_, late

    def overdue(self) -> int:
        c = schema.cases.c
        per: Counter[tuple[str, str | None, str]] = Counter()
        oldest: dict[tuple[str, str | None, str], dt.datetime] = {}
        with self.eng.connect() as conn:
            for r in conn.execute(select(c.workflow, c.scope, c.state, c.deadline_at, c.paused_at)):
                if r.deadline_at is not None and r.deadline_at <= NOW and r.paused_at is None:
                    key = (r.workflow, r.scope, r.state)
                    per[key] += 1
                    oldest[key] = min(oldest.get(key, r.deadline_at), r.deadline_at)
        return sum(per.values())


def _agree(svc: Casework, naive: dict[str, Any]) -> None:
    """Refuse to time a baseline that does not count what the engine counts."""
    got: dict[str, Any] = {}
    for key, name, opts in ASKED:
        sheet = svc.report(name, **opts)
        total = sheet.rows[-1]
        if name == "archives":
            labels = sheet.meta["states"]
            naive[key] = {labels[s]: n for s, n in naive[key].items()}
            per_state: Counter[str] = Counter()
            for r in sheet.rows:
                if r["county"] not in ("小计", ""):  # the subtotals and the grand total
                    per_state[r["state"]] += r["total"]
            got[key] = dict(per_state)
        elif name == "exit-rate":
            got[key] = (total["on_file"], total["exited"], total["new"], total["new_exited"])
        elif name == "programmes":
            rows = [r for r in sheet.rows if r["county"] != "合计"]
            got[key] = (
                sum(r["cases"] for r in rows),
                sum(r["people"] for r in rows),
                sum(r["granted"] for r in rows),
                sum(r["paid"] for r in rows),
            )
        elif name == "petitions":
            got[key] = (total["registered"], total["closed"], total["open"], total["overdue"])
        else:
            got[key] = total["cases"]
    for key in got:
        if got[key] != naive[key]:
            raise AssertionError(f"{key}: the engine counts {got[key]}, the baseline {naive[key]}")


# ------------------------------------------------------------------ scenario

_METRICS = (
    Metric("archives_ms", "archives ms", "{:,.1f}"),
    Metric("archives_asof_ms", "as of 2025-12-31 ms", "{:,.1f}"),
    Metric("exit_rate_ms", "exit-rate ms", "{:,.1f}"),
    Metric("programmes_ms", "programmes ms", "{:,.1f}"),
    Metric("petitions_ms", "petitions ms", "{:,.1f}"),
    Metric("overdue_ms", "overdue ms", "{:,.1f}"),
    Metric("total_ms", "all six ms", "{:,.0f}"),
    Metric("populate_s", "populate s", "{:,.0f}"),
)


def _variants() -> tuple[Variant, ...]:
    out = []
    for backend, tag in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        base = f"fetch_{backend}"
        out += [
            Variant(base, f"fetch every case, count in Python ({tag})", "bench.report:fetch_all", backend=backend),
            Variant(
                f"engine_{backend}", f"engine.reports ({tag})", "bench.report:reports", baseline=base, backend=backend
            ),
        ]
    return tuple(out)


SCENARIO = Scenario(
    name="report",
    title="the office's six reports at 1,000,000 archives (+100,000 grants, +100,000 petitions)",
    goal="each report ≤ 5 s at 1,000,000 archives on both backends, ×10 faster than fetching every case",
    variants=_variants(),
    metrics=_METRICS,
    primary="total_ms",
    rounds=1,
    quick={"cases": 2000, "queries": 2},
    timeout=7200.0,
)
