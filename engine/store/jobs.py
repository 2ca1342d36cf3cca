"""The ``job_runs`` table: each scheduled job runs once per due time, whichever scheduler gets there first."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert, select, update

from engine.store import tables

__all__ = ["claim_run", "finish_run"]

_runs = tables.job_runs


def claim_run(conn: Connection, job: str, fire_time: dt.datetime, now: dt.datetime) -> bool:
    """Claim the (job, due time) run; False if it already ran.

    A second process claiming it at the same moment waits on the unique key
    and then fails with a unique violation, which the caller treats as "ran".
    """
    if conn.execute(select(_runs.c.id).where(_runs.c.job == job, _runs.c.fire_time == fire_time)).first():
        return False
    conn.execute(insert(_runs).values(job=job, fire_time=fire_time, ran_at=now, outcome="running"))
    return True


def finish_run(conn: Connection, job: str, fire_time: dt.datetime, outcome: str) -> None:
    """Record what the run did."""
    conn.execute(update(_runs).where(_runs.c.job == job, _runs.c.fire_time == fire_time).values(outcome=outcome[:200]))
