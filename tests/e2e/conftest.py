"""Fixtures for the end-to-end tests of the ``casework`` command.

The tests themselves drive the command as a user types it, in this process
(:mod:`tests.e2e.runner`; ``test_cli_process.py`` starts the real one). Only
the *setting up* of a scenario (loading the bundled workflow, adding the
usual users, parking a case in some state) goes through the engine's Python
API, so each scenario spends its commands on what it is about.
The API uses the system clock, as the command does, so the audit trail's
times stay in order whichever way an event was written.

``casework demo`` (the whole tour, several seconds) runs at most once per
test process for each audit key setting (:func:`demo_run`,
:func:`keyed_demo_run`); tests work on copies of its database.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from db import make_engine
from engine import Casework
from tests.conftest import bundled
from tests.e2e.runner import Result, casework

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "workflows" / "poverty_archive.yaml"

# username, name, roles, scopes
USERS = [
    ("lin", "林晓", ["clerk"], ["芗城区"]),
    ("chen", "陈建华", ["clerk"], ["龙文区"]),
    ("wu", "吴明辉", ["reviewer"], ["芗城区", "龙文区"]),
    ("ye", "叶志远", ["clerk", "reviewer"], ["芗城区"]),  # two roles: four-eyes still applies
    ("su", "苏文斌", ["approver"], ["*"]),
]


@dataclass
class Seeded:
    """A database URL plus the engine API on it, for setting scenes."""

    url: str
    svc: Casework


def _seed(url: str, *, users: bool) -> Iterator[Seeded]:
    engine = make_engine(url)
    try:
        svc = Casework(engine)
        svc.load_workflow(bundled())
        if users:
            for username, name, roles, scopes in USERS:
                svc.add_user(username, name, roles, scopes)
        yield Seeded(url, svc)
    finally:
        engine.dispose()


@pytest.fixture
def wf_db(db_url: str) -> Iterator[Seeded]:
    """Both backends: the bundled workflow loaded, no users yet."""
    yield from _seed(db_url, users=False)


@pytest.fixture
def seeded(db_url: str) -> Iterator[Seeded]:
    """Both backends: the bundled workflow and the usual users."""
    yield from _seed(db_url, users=True)


@pytest.fixture
def sqlite_seeded(sqlite_template: Path, tmp_path: Path) -> Iterator[Seeded]:
    """SQLite only (for checks that do not depend on the backend): workflow and users."""
    path = tmp_path / "seeded.db"
    shutil.copy(sqlite_template, path)
    yield from _seed(f"sqlite:///{path}", users=True)


# ------------------------------------------------------------------------ the demo

#: the audit key ``keyed_demo_run``'s demo ran with (its heads are sealed under it)
DEMO_AUDIT_KEY = {"CASEWORK_AUDIT_KEY": "an audit key of forty-two characters long!"}


@dataclass(frozen=True)
class DemoRun:
    """One run of ``casework demo`` in a folder of its own: what it printed and how long it took.

    The folder holds the run's database (``demo.db``) and notices (``demo-output/``) and is
    shared by the tests of a process: a test that runs a command on the database (even a read
    writes the access log) works on a :meth:`copy`.
    """

    folder: Path
    result: Result
    seconds: float

    @property
    def db(self) -> Path:
        return self.folder / "demo.db"

    def copy(self, folder: Path) -> Path:
        """The database copied into ``folder`` (as ``demo.db``); its path."""
        path = folder / "demo.db"
        shutil.copy(self.db, path)
        return path


def _run_demo(tmp_path_factory: pytest.TempPathFactory, env: Mapping[str, str] | None) -> DemoRun:
    folder = tmp_path_factory.mktemp("demo")
    started = time.monotonic()
    result = casework(f"sqlite:///{folder / 'demo.db'}", "demo", env=env, cwd=folder)  # notices: ./demo-output
    return DemoRun(folder, result, time.monotonic() - started)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``casework demo`` on a new SQLite database, as ``make run`` does (no audit key); once per process."""
    return _run_demo(tmp_path_factory, None)


@pytest.fixture(scope="session")
def keyed_demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``casework demo`` with :data:`DEMO_AUDIT_KEY` set; once per process."""
    return _run_demo(tmp_path_factory, DEMO_AUDIT_KEY)
