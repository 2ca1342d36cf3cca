"""Sweep throughput: timers fired per second, and the catch-up after downtime.

    python -m bench.sweep [--timers 10000] [--postgres]

N cases are put into publicity with a clock weeks in the past, and their
counties' 公示名单 are published then (a case's publicity, and its
``timeout`` timer, start with its list), so all their timers (end of
publicity) are due at once, as after downtime.
Then the sweeper fires them all (each: claim, guard check, state change,
audit event, new timers, outbox rows — one transaction per timer). Baseline
in the same run: SQLAlchemy Core doing the minimum writes per timer (update
the case, insert the audit row, mark the timer) in one transaction each.
``--postgres`` also runs on a throwaway PostgreSQL server (tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

from sqlalchemy import insert, select, update

from bench.transition import BUNDLED
from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, Timer, make_engine, upgrade
from engine import Casework, FixedClock, load_definition_file
from notifications.notices import publish_list


def _fill(url: str, n: int) -> Casework:
    engine = make_engine(url)
    upgrade(engine)
    clock = FixedClock(dt.datetime(2026, 10, 12, 9, tzinfo=dt.UTC))
    svc = Casework(engine, clock)
    svc.load_workflow(load_definition_file(BUNDLED))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"])
    people = SyntheticPeople(3)
    counties: set[str] = set()
    for _ in range(n):
        data = people.household()
        data["materials"] = ["申请表", "身份证", "户口簿", "收入证明"]
        ref = svc.create_case("poverty_archive", "lin", data).ref
        svc.fire(ref, "submit", "lin")
        svc.fire(ref, "pass_review", "wu")
        counties.add(data["county"])
    for county in sorted(counties):  # their publicity starts: a 7-day period from the list's date
        publish_list(svc, "poverty_archive", county)
    clock.set(dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC))  # weeks later: every timeout is due
    return svc


def engine_sweep(svc: Casework) -> tuple[int, float]:
    fired = 0
    t0 = time.perf_counter()
    while True:
        report = svc.sweep(limit=1000)
        fired += report.fired
        if not report.fired:
            return fired, time.perf_counter() - t0


def core_baseline(svc: Casework) -> tuple[int, float]:
    cases, events, timers = Case.__table__, AuditEvent.__table__, Timer.__table__
    now = svc.clock.now()
    with svc.engine.connect() as conn:
        due = conn.execute(select(timers.c.id, timers.c.case_id).where(timers.c.status == "pending")).all()
    t0 = time.perf_counter()
    for timer_id, case_id in due:
        with svc.engine.begin() as conn:
            row = conn.execute(select(cases).where(cases.c.id == case_id)).one()
            conn.execute(
                update(cases)
                .where(cases.c.id == case_id, cases.c.version == row.version)
                .values(state="approve", version=row.version + 1, audit_seq=row.audit_seq + 1, updated_at=now)
            )
            conn.execute(
                insert(events).values(
                    case_id=case_id,
                    seq=row.audit_seq + 1,
                    at=now,
                    actor="system",
                    role="system",
                    action="fired",
                    trigger="end_publicity",
                    from_state="publicise",
                    to_state="approve",
                    changes={},
                    prev_hash=row.audit_head,
                    hash="0" * 64,
                )
            )
            conn.execute(update(timers).where(timers.c.id == timer_id).values(status="fired", fired_at=now))
    return len(due), time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway PostgreSQL server")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", lambda name: f"sqlite:///{tmp}/{name}.db")]
        server = None
        if args.postgres:
            from tests.pgserver import PgServer

            server = PgServer().start()
            urls.append(("PostgreSQL", lambda name: server.create_database(name)))
        try:
            for backend, url_for in urls:
                for name, run in (("Core, minimum writes", core_baseline), ("engine sweep", engine_sweep)):
                    svc = _fill(url_for(name.split()[0].lower().strip(",")), args.timers)
                    fired, seconds = run(svc)
                    svc.engine.dispose()
                    rows.append((backend, name, fired, seconds))
        finally:
            if server:
                server.stop()
    print(f"{'catch-up of due timers':34} {'fired':>7} {'seconds':>8} {'timers/s':>9} {'× Core':>7}")
    for backend, name, fired, seconds in rows:
        base = next(s / f for b, n, f, s in rows if b == backend and n.startswith("Core"))
        print(
            f"{backend + ': ' + name:34} {fired:7d} {seconds:8.2f} {fired / seconds:9.0f} {seconds / fired / base:7.2f}"
        )


if __name__ == "__main__":
    main()
