"""Helpers for the race, authorization-matrix and hostile-data tests.

Not a conftest: the test modules that need these import them. The worker
function here is the target of ``multiprocessing`` processes started with
*spawn*, so it lives in an importable module and takes only picklable
arguments.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from casework.synthetic import SyntheticPeople
from db import AuditEvent, Case, make_engine
from engine import Casework, FixedClock, RefusedError

ALL_MATERIALS = ["申请表", "身份证", "户口簿", "收入证明"]
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))

_events = AuditEvent.__table__
_cases = Case.__table__


class Households:
    """Complete, valid poverty_archive data with an ID number never used before in this generator."""

    def __init__(self, seed: int = 7) -> None:
        self._people = SyntheticPeople(seed)

    def __call__(self, county: str = "芗城区", **over: Any) -> dict[str, Any]:
        data = self._people.household()
        data.update(county=county, materials=list(ALL_MATERIALS))
        data.update(over)
        return data


def postgres_only() -> pytest.MarkDecorator:
    """Run a test that uses ``db_url`` on PostgreSQL only (shadows the ``backend`` fixture)."""
    return pytest.mark.parametrize("backend", ["postgresql"])


def sqlite_only() -> pytest.MarkDecorator:
    """Run a test that uses ``db_url`` on SQLite only (shadows the ``backend`` fixture)."""
    return pytest.mark.parametrize("backend", ["sqlite"])


def audit_count(engine: Engine, case_id: int | None = None) -> int:
    query = select(func.count()).select_from(_events)
    if case_id is not None:
        query = query.where(_events.c.case_id == case_id)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def case_id(engine: Engine, ref: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(_cases.c.id).where(_cases.c.ref == ref)).scalar_one())


def seqs(engine: Engine, ref: str) -> list[int]:
    """The audit seq numbers of one case, in insertion order."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(_events.c.seq)
                .join(_cases, _cases.c.id == _events.c.case_id)
                .where(_cases.c.ref == ref)
                .order_by(_events.c.id)
            ).scalars()
        )


# ------------------------------------------------------------ process workers


def race_worker(
    url: str,
    index: int,
    jobs: Sequence[tuple[str, str, str, Any]],
    barrier: Any,
    results: Any,
    now_iso: str,
) -> None:
    """Run ``jobs`` — ``(op, ref, actor, arg)`` with op ``fire`` (arg: trigger) or ``update`` (arg: data) —
    each released by ``barrier`` together with the other processes; put ``(index, outcomes)`` on ``results``.

    An outcome is ``(ref, kind, message)``: kind ``ok``, the class name of a
    casework refusal, or ``RAW:<class>`` for anything else (which a caller
    must never see).
    """
    outcomes: list[tuple[str, str, str]] = []
    engine = make_engine(url)
    try:
        svc = Casework(engine, FixedClock(dt.datetime.fromisoformat(now_iso)))
        svc.workflows()  # connect (and set the pragmas) before the first release
        for op, ref, actor, arg in jobs:
            barrier.wait(120)
            try:
                if op == "fire":
                    svc.fire(ref, arg, actor)
                else:
                    svc.update_case(ref, actor, arg)
            except RefusedError as exc:
                outcomes.append((ref, type(exc).__name__, str(exc)))
            except Exception as exc:
                outcomes.append((ref, f"RAW:{type(exc).__name__}", "".join(traceback.format_exception(exc))[-2000:]))
            else:
                outcomes.append((ref, "ok", ""))
    except Exception as exc:  # the barrier or the engine itself failed: report, do not hang the parent
        outcomes.append(("", f"WORKER:{type(exc).__name__}", "".join(traceback.format_exception(exc))[-2000:]))
        barrier.abort()
    finally:
        engine.dispose()
        results.put((index, outcomes))


# ------------------------------------------------------------ module-scoped databases


@contextlib.contextmanager
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str, name: str
) -> Iterator[str]:
    """A fresh database at schema head for a whole module, on ``backend``; yields its URL.

    Uses the session's SQLite template file or PostgreSQL server and template database (tests/conftest.py),
    with the same skip-or-fail rule when PostgreSQL is unavailable.
    """
    if backend == "sqlite":
        path = tmp_path_factory.mktemp(name) / "casework.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    if server is None:
        if os.environ.get("CASEWORK_PG_BINDIR"):
            pytest.fail("CASEWORK_PG_BINDIR is set but no PostgreSQL server could be found")
        pytest.skip("PostgreSQL unavailable")
    dbname = f"{name}{os.getpid()}"
    url = server.create_database(dbname, template="casework_template")
    try:
        yield url
    finally:
        server.drop_database(dbname)


SQLITE = pytest.param("sqlite", id="sqlite")
POSTGRES = pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres)
