"""Scenario "bulk": importing archives from a file, and one step on many cases.

``import``: N households are written to a CSV file; the engine reads it
(casework/importfile.py), validates every row as ``create_case`` would and
writes the cases, their ``created`` audit events and ID-number keys, 1,000
per transaction (``casework case import``). The baseline is SQLAlchemy Core
inserting the same rows (values already converted, hashes replaced by a
constant) with ``executemany``, 1,000 per transaction.

``fire-many``: ``submit`` on all N cases as the clerk — every check of a
single ``fire``, then the case updates, audit events, the review state's
timers and the reviewer's outbox rows, 1,000 cases per transaction
(``casework case fire-many``). The baseline is Core reading each batch and
writing the same rows with ``executemany``.

Primary metric: rows (cases) per second; the ratio is baseline ÷ engine
speed, so 1.5 means the engine takes 1.5 × the baseline's time.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from bench.harness import Metric, Scenario, Variant
from bench.transition import BUNDLED, MATERIALS
from casework.importfile import read_rows
from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, CaseKey, OutboxMessage, RefCounter, Timer, make_engine, upgrade
from engine import Casework, load_definition_file

BATCH = 1000
COLUMNS = ("applicant_name", "id_number", "household_type", "county", "household_size", "income_per_capita", "cause")


def _service(url: str) -> Casework:
    engine = make_engine(url)
    upgrade(engine)
    svc = Casework(engine)
    svc.load_workflow(load_definition_file(BUNDLED))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"], email="wu@example.org")
    return svc


def _households(rows: int, seed: int = 5) -> list[dict[str, Any]]:
    people = SyntheticPeople(seed)
    out = []
    for _ in range(rows):
        data = {k: v for k, v in people.household().items() if k in COLUMNS}
        data["materials"] = MATERIALS
        out.append(data)
    return out


def _write_csv(path: Path, households: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*COLUMNS, "materials"])
        for h in households:
            writer.writerow([*(h.get(c, "") for c in COLUMNS), "、".join(h["materials"])])


def _result(rows: int, seconds: float) -> dict[str, float]:
    return {"rows_per_s": rows / seconds, "seconds": seconds, "rows": rows}


def engine_import(url: str, rows: int) -> dict[str, float]:
    """``casework case import``'s work: read the CSV, validate every row, write 1,000 per transaction."""
    svc = _service(url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "archives.csv"
        _write_csv(path, _households(rows))
        t0 = time.perf_counter()
        total, items = read_rows(path, svc.workflow("poverty_archive"))
        report = svc.import_cases("poverty_archive", "lin", items, batch=BATCH)
        seconds = time.perf_counter() - t0
    assert len(report.imported) == total == rows
    return _result(rows, seconds)


def core_import(url: str, rows: int) -> dict[str, float]:
    """Core ``executemany`` of the same case, audit and key rows, 1,000 per transaction."""
    svc = _service(url)
    households = _households(rows)
    cases, events, keys, counters = Case.__table__, AuditEvent.__table__, CaseKey.__table__, RefCounter.__table__
    add_cases = insert(cases).returning(cases.c.id, sort_by_parameter_order=True)
    add_events, add_keys = insert(events), insert(keys)
    bump = (
        update(counters)
        .where(counters.c.prefix == "ZZ", counters.c.year == 2026)
        .values(last=counters.c.last + bindparam("n"))
        .returning(counters.c.last)
    )
    with svc.engine.begin() as conn:
        conn.execute(insert(counters).values(prefix="ZZ", year=2026, last=0))
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    for start in range(0, rows, BATCH):
        chunk = households[start : start + BATCH]
        with svc.engine.begin() as conn:
            last = conn.execute(bump, {"n": len(chunk)}).scalar_one()
            first = last - len(chunk) + 1
            ids = (
                conn.execute(
                    add_cases,
                    [
                        {
                            "ref": f"ZZ-2026-{first + i:06d}",
                            "workflow": "poverty_archive",
                            "workflow_version_id": 1,
                            "state": "apply",
                            "scope": h["county"],
                            "data": h,
                            "fired_by": {},
                            "version": 1,
                            "audit_seq": 1,
                            "audit_head": "0" * 64,
                            "entered_at": now,
                            "deadline_at": None,
                            "deadline_provisional": False,
                            "created_by": "lin",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i, h in enumerate(chunk)
                    ],
                )
                .scalars()
                .all()
            )
            conn.execute(
                add_events,
                [
                    {
                        "case_id": case_id,
                        "seq": 1,
                        "at": now,
                        "actor": "lin",
                        "role": "clerk",
                        "action": "created",
                        "trigger": None,
                        "from_state": None,
                        "to_state": "apply",
                        "comment": None,
                        "changes": {k: [None, v] for k, v in h.items()},
                        "prev_hash": "0" * 64,
                        "hash": "0" * 64,
                    }
                    for case_id, h in zip(ids, chunk, strict=True)
                ],
            )
            conn.execute(
                add_keys,
                [
                    {"workflow": "poverty_archive", "field": "id_number", "value": h["id_number"], "case_id": case_id}
                    for case_id, h in zip(ids, chunk, strict=True)
                ],
            )
    return _result(rows, time.perf_counter() - t0)


def _imported(url: str, rows: int) -> tuple[Casework, list[str]]:
    svc = _service(url)
    report = svc.import_cases("poverty_archive", "lin", list(enumerate(_households(rows), start=2)))
    return svc, report.imported


def engine_fire_many(url: str, rows: int) -> dict[str, float]:
    """``casework case fire-many submit``'s work on every case, 1,000 per transaction."""
    svc, refs = _imported(url, rows)
    t0 = time.perf_counter()
    report = svc.fire_many(refs, "submit", "lin", batch=BATCH)
    seconds = time.perf_counter() - t0
    assert len(report.fired) == rows, report.refused[:3]
    return _result(rows, seconds)


def core_fire_many(url: str, rows: int) -> dict[str, float]:
    """Core: read each batch, ``executemany`` the same case updates, events, timers and outbox rows."""
    svc, refs = _imported(url, rows)
    cases, events, timers, outbox = Case.__table__, AuditEvent.__table__, Timer.__table__, OutboxMessage.__table__
    read = select(cases).where(cases.c.ref.in_(bindparam("refs", expanding=True)))
    if svc.engine.dialect.name == "postgresql":
        read = read.order_by(cases.c.id).with_for_update()
    move = (
        update(cases)
        .where(cases.c.id == bindparam("b_id"), cases.c.version == bindparam("b_version"))
        .values(version=cases.c.version + 1)
    )
    add_timers, add_events, add_messages = insert(timers), insert(events), insert(outbox)
    now = dt.datetime.now(dt.UTC)
    due = now + dt.timedelta(days=7)
    context = {"case": {"state": "review"}, "recipient": {"username": "wu", "name": "吴明辉"}}
    t0 = time.perf_counter()
    for start in range(0, rows, BATCH):
        with svc.engine.begin() as conn:
            batch = conn.execute(read, {"refs": refs[start : start + BATCH]}).all()
            conn.execute(
                move,
                [
                    {
                        "b_id": r.id,
                        "b_version": r.version,
                        "state": "review",
                        "audit_seq": 2,
                        "audit_head": "0" * 64,
                        "data": r.data,
                        "scope": r.scope,
                        "fired_by": {"submit": ["lin"]},
                        "entered_at": now,
                        "deadline_at": due,
                        "deadline_provisional": False,
                        "paused_at": None,
                        "paused_left": None,
                        "updated_at": now,
                    }
                    for r in batch
                ],
            )
            conn.execute(
                add_timers,
                [
                    {
                        "case_id": r.id,
                        "kind": kind,
                        "state": "review",
                        "entered_at": now,
                        "due_at": due,
                        "provisional": False,
                        "payload": {"to": to},
                        "status": "pending",
                        "created_at": now,
                    }
                    for r in batch
                    for kind, to in (("remind", "reviewer"), ("escalate", "supervisor"))
                ],
            )
            conn.execute(
                add_events,
                [
                    {
                        "case_id": r.id,
                        "seq": 2,
                        "at": now,
                        "actor": "lin",
                        "role": "clerk",
                        "action": "fired",
                        "trigger": "submit",
                        "from_state": "apply",
                        "to_state": "review",
                        "comment": None,
                        "changes": {},
                        "prev_hash": r.audit_head,
                        "hash": "0" * 64,
                    }
                    for r in batch
                ],
            )
            conn.execute(
                add_messages,
                [
                    {
                        "key": f"{r.id}:2:0:{channel}:{to}",
                        "kind": "message",
                        "case_id": r.id,
                        "event_seq": 2,
                        "workflow_version_id": r.workflow_version_id,
                        "channel": channel,
                        "recipient": to,
                        "template": "review_waiting",
                        "context": context,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for r in batch
                    for channel, to in (("inbox", "wu"), ("email", "wu@example.org"))
                ],
            )
    return _result(rows, time.perf_counter() - t0)


SIZE = {"rows": 10_000}


def _variants() -> tuple[Variant, ...]:
    out = []
    for backend, tag in (("sqlite", "SQLite WAL"), ("postgresql", "PostgreSQL")):
        for job, core, eng in (("import", core_import, engine_import), ("fire-many", core_fire_many, engine_fire_many)):
            base = f"core-{job}-{backend}"
            out.append(Variant(base, f"{tag}: Core batched, {job}", f"bench.bulk:{core.__name__}", SIZE, None, backend))
            out.append(
                Variant(
                    f"engine-{job}-{backend}", f"{tag}: engine {job}", f"bench.bulk:{eng.__name__}", SIZE, base, backend
                )
            )
    return tuple(out)


SCENARIO = Scenario(
    name="bulk",
    title="import 10,000 archives from CSV; submit 10,000 cases at once (1,000 per transaction)",
    goal="engine ≤ 1.5 × the batched Core baseline; ≥ 15,000 rows/s on SQLite",
    variants=_variants(),
    metrics=(Metric("rows_per_s", "rows/s", lower=False), Metric("seconds", "seconds", "{:.2f}")),
    primary="rows_per_s",
    rounds=3,
    quick={"rows": 300},
)
