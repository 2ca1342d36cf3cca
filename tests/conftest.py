"""Shared fixtures: a fresh, migrated database per test on SQLite *and* PostgreSQL.

``db_url`` is parametrised over both backends, so every integration and e2e
test that uses it runs twice. SQLite databases are copies of one migrated
template file; PostgreSQL databases are created from one migrated template
database on a throwaway server (``tests/pgserver.py``) started once per test
session. Without PostgreSQL server binaries the PostgreSQL half is skipped
and the run says so at the end — unless ``CASEWORK_PG_BINDIR`` is set (as CI
does), in which case it fails.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from db import make_engine, upgrade
from engine import Casework, FixedClock, load_definition_file
from tests.pgserver import PgServer, find_pg_bindir

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
BACKENDS = ["sqlite", "postgresql"]

_pg_skip_reason: list[str] = []
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    bindir = find_pg_bindir()
    if bindir is None:
        _pg_skip_reason.append("no PostgreSQL server binaries (install Debian's 'postgresql' package)")
        yield None
        return
    with PgServer(bindir) as server:
        template_url = server.create_database("casework_template")
        engine = make_engine(template_url)
        upgrade(engine)
        engine.dispose()
        yield server


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "casework.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database at schema head, on the parametrised backend."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "casework.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    if server is None:
        if os.environ.get("CASEWORK_PG_BINDIR"):
            pytest.fail("CASEWORK_PG_BINDIR is set but no PostgreSQL server could be found")
        pytest.skip(_pg_skip_reason[0] if _pg_skip_reason else "PostgreSQL unavailable")
    name = f"t{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template="casework_template")
    yield url
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[object]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI))


USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("ye", "叶志远", ["clerk", "reviewer"], ["芗城区"]),
    ("su", "苏文斌", ["approver"], ["*"]),
    ("xu", "许慧敏", ["approver", "reviewer"], ["*"]),
]


@pytest.fixture
def svc(engine: object, clock: FixedClock) -> Casework:
    """The engine on a fresh database, with the bundled workflow and users loaded."""
    service = Casework(engine, clock)  # type: ignore[arg-type]
    service.load_workflow(load_definition_file(BUNDLED))
    for username, name, roles, scopes in USERS:
        service.add_user(username, name, roles, scopes)
    return service


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.postgres)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _pg_skip_reason:
        terminalreporter.write_line(
            f"NOTE: the PostgreSQL suite was skipped: {_pg_skip_reason[0]}", yellow=True, bold=True
        )
