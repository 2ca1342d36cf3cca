"""Fixtures for the end-to-end tests of the ``casework`` command.

The tests themselves drive the command as a user types it, in this process
(:mod:`tests.e2e.runner`; ``test_cli_process.py`` starts the real one). Only
the *setting up* of a scenario (loading the bundled workflow, adding the
usual users, parking a case in some state) goes through the engine's Python
API, so each scenario spends its commands on what it is about.
The API uses the system clock, as the command does, so the audit trail's
times stay in order whichever way an event was written.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from db import make_engine
from engine import Casework, load_definition_file

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
        svc.load_workflow(load_definition_file(BUNDLED))
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
