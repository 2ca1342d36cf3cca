"""Time one persisted transition: the engine's ``fire`` vs Core doing the same writes.

    python -m bench.transition [--cases 1000] [--db sqlite|URL]

Both sides run on a fresh SQLite file (WAL, synchronous=NORMAL) in the same
process and run: the engine fires ``submit`` on each case; the baseline
performs exactly the writes ``fire`` makes (read the case, update it with a
version check, insert the audit row) in one transaction per case with
SQLAlchemy Core. Prints the median and p95 per transition and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select, update

from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, make_engine, upgrade
from engine import Casework, load_definition_file

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"


def _setup(url: str, n: int) -> tuple[Casework, list[str]]:
    engine = make_engine(url)
    upgrade(engine)
    svc = Casework(engine)
    svc.load_workflow(load_definition_file(BUNDLED))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    people = SyntheticPeople(7)
    refs = [svc.create_case("poverty_archive", "lin", people.household()).ref for _ in range(n)]
    return svc, refs


def engine_fire(svc: Casework, refs: list[str]) -> list[float]:
    times = []
    for ref in refs:
        t0 = time.perf_counter()
        svc.fire(ref, "submit", "lin")
        times.append(time.perf_counter() - t0)
    return times


def core_baseline(svc: Casework, refs: list[str]) -> list[float]:
    cases, events = Case.__table__, AuditEvent.__table__
    times = []
    for ref in refs:
        t0 = time.perf_counter()
        with svc.engine.begin() as conn:
            row = conn.execute(select(cases).where(cases.c.ref == ref)).one()
            now = dt.datetime.now(dt.UTC)
            conn.execute(
                update(cases)
                .where(cases.c.id == row.id, cases.c.version == row.version)
                .values(
                    state="review",
                    version=row.version + 1,
                    audit_seq=row.audit_seq + 1,
                    updated_at=now,
                    fired_by={"submit": ["lin"]},
                    data=row.data,
                    audit_head="0" * 64,
                )
            )
            conn.execute(
                insert(events).values(
                    case_id=row.id,
                    seq=row.audit_seq + 1,
                    at=now,
                    actor="lin",
                    role="clerk",
                    action="fired",
                    trigger="submit",
                    from_state="apply",
                    to_state="review",
                    comment=None,
                    changes={},
                    prev_hash=row.audit_head,
                    hash="0" * 64,
                )
            )
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, fn in (("SQLAlchemy Core, same writes", core_baseline), ("engine fire (submit)", engine_fire)):
            url = args.db or f"sqlite:///{tmp}/{name.split()[0]}.db"
            svc, refs = _setup(url, args.cases)
            results[name] = fn(svc, refs)
            svc.engine.dispose()
    base = statistics.median(results["SQLAlchemy Core, same writes"])
    print(f"{'per persisted transition':32} {'median µs':>10} {'p95 µs':>10} {'× Core':>8}   (n={args.cases})")
    for name, times in results.items():
        med = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:32} {med * 1e6:10.0f} {p95 * 1e6:10.0f} {med / base:8.2f}")


if __name__ == "__main__":
    main()
