"""Scenario "transition": one persisted ``fire`` vs SQLAlchemy Core doing the same writes.

The engine fires ``submit`` (申请 → 审核) on every case as the clerk: scope,
role, four-eyes, comment, data, required fields and guard are checked; the
case row is updated with a version check; the hash-chained audit event, the
review state's two timers (reminder, escalation) and the two outbox rows
(the reviewer's inbox message and email) are written — one transaction per
transition.

The baseline performs exactly those writes with SQLAlchemy Core,
precomputed values and statements built once — read the case, insert the
new timers, update the case with a version check, insert the audit row,
insert the outbox rows — one transaction per transition, with no rules, no
hashing, no templates, no user lookup. It is the floor any engine built on
SQLAlchemy pays.

Round trips are counted with SQLAlchemy events (``before_cursor_execute``
plus ``commit``) over the timed loop; on SQLite they are in-process calls,
on PostgreSQL they are network round trips (the driver's implicit ``BEGIN``
is not visible to SQLAlchemy and is not counted).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, event, insert, select, update

from bench.harness import Metric, Scenario, Variant
from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, OutboxMessage, Timer, make_engine, upgrade
from engine import Casework, load_definition_file

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
SIZE = {"cases": 10_000}
MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]


def prepare(url: str, cases: int, seed: int = 7) -> tuple[Casework, list[str]]:
    """A migrated database with the bundled workflow, a clerk, a reviewer and ``cases`` cases in 申请."""
    engine = make_engine(url)
    upgrade(engine)
    svc = Casework(engine)
    svc.load_workflow(load_definition_file(BUNDLED))
    svc.add_user("lin", "林晓", ["clerk"], ["*"])
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"], email="wu@example.org")
    people = SyntheticPeople(seed)
    rows = []
    for line in range(2, cases + 2):
        data = people.household()
        data["materials"] = MATERIALS
        rows.append((line, data))
    # opened through the engine's bulk path (same rows as create_case writes, a hundred times faster)
    refs = svc.import_cases("poverty_archive", "lin", rows).imported
    return svc, refs


class RoundTrips:
    """Counts statements and commits sent through an engine while active."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self.engine = engine
        self.active = False
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        if self.active:
            self.count += 1

    def _commit(self, *args: Any) -> None:
        if self.active:
            self.count += 1


def summarise(times: list[float], trips: RoundTrips, n: int) -> dict[str, float]:
    """Median and p95 in µs, round trips per transition."""
    return {
        "median_us": statistics.median(times) * 1e6,
        "p95_us": statistics.quantiles(times, n=20)[-1] * 1e6 if len(times) > 1 else times[0] * 1e6,
        "round_trips": trips.count / n,
        "per_s": n / sum(times),
    }


def engine_fire(url: str, cases: int) -> dict[str, float]:
    """The engine's full ``fire``, one transition per case."""
    svc, refs = prepare(url, cases)
    trips = RoundTrips(svc.engine)
    times = []
    trips.active = True
    for ref in refs:
        t0 = time.perf_counter()
        svc.fire(ref, "submit", "lin")
        times.append(time.perf_counter() - t0)
    trips.active = False
    return summarise(times, trips, len(refs))


def core_same_writes(url: str, cases: int) -> dict[str, float]:
    """SQLAlchemy Core: the same rows written, values precomputed, one transaction each."""
    svc, refs = prepare(url, cases)
    engine = svc.engine
    cases_t, events, timers, outbox = Case.__table__, AuditEvent.__table__, Timer.__table__, OutboxMessage.__table__
    now = dt.datetime.now(dt.UTC)
    due = now + dt.timedelta(days=7)
    context = {
        "case": {"ref": "ZZ-2026-000001", "state": "review", "state_label": "审核", "applicant_name": "陈*强"},
        "workflow": {"name": "poverty_archive", "title": "困难职工建档立卡"},
        "event": {"trigger": "submit", "to_state": "review", "actor": "lin", "at": now.isoformat()},
        "recipient": {"username": "wu", "name": "吴明辉"},
    }
    # statements built once, executed with parameters: the cheapest way Core offers
    read = select(cases_t).where(cases_t.c.ref == bindparam("b_ref"))
    move = (
        update(cases_t)
        .where(cases_t.c.id == bindparam("b_id"), cases_t.c.version == bindparam("b_version"))
        .values(version=cases_t.c.version + 1)
    )
    add_timers, add_event, add_messages = insert(timers), insert(events), insert(outbox)
    trips = RoundTrips(engine)
    times = []
    trips.active = True
    for ref in refs:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            row = conn.execute(read, {"b_ref": ref}).one()
            # 申请 has no timers, so there is nothing pending to cancel (the engine knows this too)
            conn.execute(
                add_timers,
                [
                    {
                        "case_id": row.id,
                        "kind": kind,
                        "state": "review",
                        "entered_at": now,
                        "due_at": due,
                        "provisional": False,
                        "payload": {"to": to, "template": None, "index": 0},
                        "status": "pending",
                        "created_at": now,
                    }
                    for kind, to in (("remind", "reviewer"), ("escalate", "supervisor"))
                ],
            )
            conn.execute(
                move,
                {
                    "b_id": row.id,
                    "b_version": row.version,
                    "state": "review",
                    "audit_seq": row.audit_seq + 1,
                    "audit_head": "0" * 64,
                    "data": row.data,
                    "scope": row.scope,
                    "fired_by": {"submit": ["lin"]},
                    "entered_at": now,
                    "deadline_at": due,
                    "deadline_provisional": False,
                    "paused_at": None,
                    "paused_left": None,
                    "updated_at": now,
                },
            )
            conn.execute(
                add_event,
                {
                    "case_id": row.id,
                    "seq": row.audit_seq + 1,
                    "at": now,
                    "actor": "lin",
                    "role": "clerk",
                    "action": "fired",
                    "trigger": "submit",
                    "from_state": "apply",
                    "to_state": "review",
                    "comment": None,
                    "changes": {},
                    "prev_hash": row.audit_head,
                    "hash": "0" * 64,
                },
            )
            conn.execute(
                add_messages,
                [
                    {
                        "key": f"{row.id}:{row.audit_seq + 1}:0:{channel}:{to}",
                        "kind": "message",
                        "case_id": row.id,
                        "event_seq": row.audit_seq + 1,
                        "workflow_version_id": row.workflow_version_id,
                        "channel": channel,
                        "recipient": to,
                        "template": "review_waiting",
                        "context": context,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for channel, to in (("inbox", "wu"), ("email", "wu@example.org"))
                ],
            )
        times.append(time.perf_counter() - t0)
    trips.active = False
    return summarise(times, trips, len(refs))


def _variants() -> tuple[Variant, ...]:
    out = []
    for backend, tag in (("sqlite", "SQLite WAL"), ("postgresql", "PostgreSQL")):
        base = f"core-{backend}"
        out.append(
            Variant(
                base, f"{tag}: SQLAlchemy Core, same writes", "bench.transition:core_same_writes", SIZE, None, backend
            )
        )
        out.append(
            Variant(f"engine-{backend}", f"{tag}: engine fire", "bench.transition:engine_fire", SIZE, base, backend)
        )
    return tuple(out)


SCENARIO = Scenario(
    name="transition",
    title="one persisted transition (申请 → 审核, with timers and outbox)",
    goal="engine ≤ 1.5 × Core on SQLite WAL and on PostgreSQL; ≤ 4 round trips per transition on PostgreSQL",
    variants=_variants(),
    metrics=(
        Metric("median_us", "median µs"),
        Metric("p95_us", "p95 µs"),
        Metric("per_s", "per s", lower=False),
        Metric("round_trips", "round trips", "{:.1f}"),
    ),
    primary="median_us",
    rounds=3,
    quick={"cases": 30},
)
