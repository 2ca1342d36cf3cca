"""Shared fixtures: a fresh, migrated database per test on SQLite *and* PostgreSQL.

``db_url`` is parametrised over both backends, so every integration and e2e
test that uses it runs twice. SQLite databases are copies of one migrated
template file; PostgreSQL databases are created from one migrated template
database on a throwaway server (``tests/pgserver.py``) started once per test
session. Without PostgreSQL server binaries the PostgreSQL half is skipped
and the run says so at the end — unless ``CASEWORK_PG_BINDIR`` is set (as CI
does), in which case it fails.

A test that takes ``svc`` as it is defined here (and no fixture that writes to
its database before ``svc`` exists) gets a copy of a second template instead,
one in which ``svc``'s own setting up — the bundled workflow and the usual
users, loaded at the ``clock`` fixture's time — was done once per session:
the same rows, without spending seven transactions and two parses of the
workflow on every test. Any other test sets its database up as before.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from db import make_engine, upgrade
from engine import Casework, FixedClock, WorkflowDef, load_definition_file
from tests.pgserver import PgServer, find_pg_bindir

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
#: where the ``clock`` fixture starts (and when the seeded templates' workflow and users were loaded)
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI)
BACKENDS = ["sqlite", "postgresql"]

_pg_skip_reason: list[str] = []
_counter = itertools.count()
#: set on a test whose database is a copy of the seeded template (``svc`` then loads nothing)
_SEEDED = pytest.StashKey[bool]()


@functools.cache
def bundled() -> WorkflowDef:
    """The bundled workflow, parsed once per process (a definition is immutable)."""
    return load_definition_file(BUNDLED)


#: the session's server lives in this memory-backed file system when it has room (and
#: ``CASEWORK_PG_TMPDIR`` does not say otherwise): a database is ~400 files, and making one
#: per test on the disk's file system took 0.2-0.4 s of the kernel's time, on tmpfs ~0.03 s
_TMPFS = Path("/dev/shm")
_TMPFS_ROOM = 2 * 2**30  # bytes free, for the WAL (capped below) and the databases alive at once


def _in_memory() -> dict[str, Any]:
    """``PgServer`` keywords putting the cluster on :data:`_TMPFS` with a small WAL, or none."""
    if os.environ.get("CASEWORK_PG_TMPDIR") or not (_TMPFS.is_dir() and os.access(_TMPFS, os.W_OK | os.X_OK)):
        return {}
    if shutil.disk_usage(_TMPFS).free < _TMPFS_ROOM:
        return {}
    return {"tmpdir": _TMPFS, "settings": {"max_wal_size": "'128MB'", "min_wal_size": "'32MB'"}}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer | None]:
    bindir = find_pg_bindir()
    if bindir is None:
        _pg_skip_reason.append("no PostgreSQL server binaries (install Debian's 'postgresql' package)")
        yield None
        return
    with PgServer(bindir, **_in_memory()) as server:
        template_url = server.create_database("casework_template")
        engine = make_engine(template_url)
        upgrade(engine)
        engine.dispose()
        yield server


@pytest.fixture(scope="session")
def pg_seeded_template(pg_server: PgServer | None) -> str | None:
    """Name of the PostgreSQL template that ``svc``'s setting up was done in (None without a server)."""
    if pg_server is None:
        return None
    url = pg_server.create_database("casework_seeded", template="casework_template")
    _seed_svc(url)
    return "casework_seeded"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "casework.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def sqlite_seeded_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``sqlite_template`` that ``svc``'s setting up was done in."""
    path = tmp_path_factory.mktemp("seeded") / "casework.db"
    shutil.copy(sqlite_template, path)
    _seed_svc(f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _seed_svc(url: str) -> None:
    """Do in the database at ``url`` what ``svc`` does on a fresh one, at the ``clock`` fixture's time."""
    engine = make_engine(url)
    try:
        _load_svc(Casework(engine, FixedClock(START)))
    finally:
        engine.dispose()


def _load_svc(service: Casework) -> None:
    service.load_workflow(bundled())
    for username, name, roles, scopes in USERS:
        service.add_user(username, name, roles, scopes)


def _seeded_svc(request: pytest.FixtureRequest) -> bool:
    """Whether this test's database may be a copy of the seeded template.

    Only if the ``svc``, ``engine`` and ``clock`` in effect are this module's
    (a module's own ``svc`` may wrap this one) and every other fixture that
    reaches the database or the clock also takes ``svc``, so runs after it:
    then nothing can tell the copy from a database ``svc`` set up itself.
    """
    info = getattr(request.node, "_fixtureinfo", None)
    if info is None or "svc" not in info.names_closure:
        return False
    defs = info.name2fixturedefs

    def ours(fixturedef: object) -> bool:
        return getattr(getattr(fixturedef, "func", None), "__module__", None) == __name__

    if not all(name in defs and ours(defs[name][-1]) for name in ("engine", "clock")):
        return False
    for fixturedef in reversed(defs.get("svc", ())):
        if ours(fixturedef):
            break
        if "svc" not in fixturedef.argnames:  # a module's own svc, set up without this one
            return False
    else:
        return False
    for name, fixturedefs in defs.items():
        if name in ("svc", "engine", "clock", "db_url"):
            continue
        argnames = set(fixturedefs[-1].argnames)
        if argnames & {"engine", "db_url", "clock"} and "svc" not in argnames:
            return False
    return True


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh database at schema head, on the parametrised backend.

    Seeded (see the module's docstring) when the test's ``svc`` allows it.
    """
    seeded = request.node.stash[_SEEDED] = _seeded_svc(request)
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_seeded_template" if seeded else "sqlite_template")
        path = tmp_path / "casework.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    server = request.getfixturevalue("pg_server")
    if server is None:
        if os.environ.get("CASEWORK_PG_BINDIR"):
            pytest.fail("CASEWORK_PG_BINDIR is set but no PostgreSQL server could be found")
        pytest.skip(_pg_skip_reason[0] if _pg_skip_reason else "PostgreSQL unavailable")
    template = request.getfixturevalue("pg_seeded_template") if seeded else "casework_template"
    name = f"t{os.getpid()}_{next(_counter)}"
    url = server.create_database(name, template=template)
    yield url
    server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[object]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("ye", "叶志远", ["clerk", "reviewer"], ["芗城区"]),
    ("su", "苏文斌", ["approver"], ["*"]),
    ("xu", "许慧敏", ["approver", "reviewer"], ["*"]),
]


@pytest.fixture
def svc(engine: object, clock: FixedClock, request: pytest.FixtureRequest) -> Casework:
    """The engine on a fresh database, with the bundled workflow and users loaded."""
    service = Casework(engine, clock)  # type: ignore[arg-type]
    if request.node.stash.get(_SEEDED, False):
        # loaded in the template at this time: a clock moved before now would tell
        assert clock.now() == START, "a fixture moved the clock before svc; _seeded_svc should have said no"
        return service
    _load_svc(service)
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
