"""``casework check`` on the demo database passes, and on each tampered copy fails naming what differs.

The demo runs once with an audit key; each test copies its database, makes
one edit the way someone with the sqlite3 shell would (foreign keys off, and
dropping a refusing trigger first where the database refuses the edit), and
runs the commands an inspector would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from casework.demo import programme_year
from engine.audit import Event
from tests.e2e.conftest import DEMO_AUDIT_KEY, DemoRun
from tests.e2e.runner import Result, casework

KEY = DEMO_AUDIT_KEY
# the demo's first archives are filed the year before its programme year (its prologue)
FIRST, SECOND = (f"ZZ-{programme_year() - 1}-{n:06d}" for n in (1, 2))


@pytest.fixture(scope="module")
def demo_db(keyed_demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The process's one demo run with the key (tests/e2e/conftest.py), copied for this module."""
    r = keyed_demo_run.result
    assert r.rc == 0, r.out + r.err
    return keyed_demo_run.copy(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def copy(demo_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy.db"
    shutil.copy(demo_db, path)
    return path


def shell(path: Path, *statements: str) -> None:
    """Statements as the sqlite3 shell runs them: foreign keys off, autocommit."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA foreign_keys = OFF")
    for s in statements:
        conn.execute(s)
    conn.close()


def check(path: Path, *args: str) -> Result:
    return casework(f"sqlite:///{path}", *args, env=KEY)


def failing(path: Path) -> str:
    """The output of ``check`` and ``audit verify`` on a tampered copy (both must exit 1)."""
    checked = check(path, "check")
    assert checked.rc == 1, checked.out + checked.err
    verified = check(path, "audit", "verify")
    assert verified.rc == 1, verified.out + verified.err
    return checked.out + checked.err + verified.out + verified.err


def test_the_demo_database_passes(demo_db: Path) -> None:
    r = check(demo_db, "check")
    assert r.rc == 0, r.out + r.err
    assert "all invariants hold" in (r.out + r.err) and "authenticated with the audit key" in (r.out + r.err)
    r = check(demo_db, "audit", "verify")
    assert r.rc == 0, r.out + r.err


def test_rewritten_income_is_named(copy: Path) -> None:
    shell(copy, "UPDATE cases SET data = json_set(data, '$.income_per_capita', 99999) WHERE id = 1")
    out = failing(copy)
    assert FIRST in out and "data.income_per_capita: stored 99999" in out


def test_cleared_fired_by_is_named(copy: Path) -> None:
    shell(copy, "UPDATE cases SET fired_by = '{}' WHERE id = 1")
    out = failing(copy)
    assert FIRST in out and "fired_by" in out


def test_a_workflow_source_edit_is_refused_and_when_forced_named(copy: Path) -> None:
    drop = "replace(source, '    not_by: submit\n', '')"
    with pytest.raises(sqlite3.DatabaseError, match="refused"):
        shell(copy, f"UPDATE workflow_versions SET source = {drop}")
    shell(copy, "DROP TRIGGER workflow_versions_no_update", f"UPDATE workflow_versions SET source = {drop}")
    assert "source: poverty_archive v4" in failing(copy)


def test_a_notice_edit_is_refused_and_when_forced_named(copy: Path) -> None:
    with pytest.raises(sqlite3.DatabaseError, match="refused"):
        shell(copy, "UPDATE notices SET html = '<p>x</p>'")
    shell(copy, "DROP TRIGGER notices_no_update", "UPDATE notices SET html = replace(html, '</body>', 'x</body>')")
    out = failing(copy)
    assert "notice: " in out and "does not hash" in out


def test_a_forged_event_with_a_correct_sha256_is_named(copy: Path) -> None:
    conn = sqlite3.connect(copy, isolation_level=None)
    case_id, ref, seq, head, state = conn.execute(
        "SELECT id, ref, audit_seq, audit_head, state FROM cases WHERE state = 'approve' LIMIT 1"
    ).fetchone()
    at = conn.execute("SELECT max(at) FROM audit_events").fetchone()[0]
    when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
    forged = Event(ref, seq + 1, when, "su", "approver", "fired", "grant", state, "enter", None, {}, head)
    row = {**forged.row(case_id), "at": at, "changes": "{}"}
    conn.execute(
        f"INSERT INTO audit_events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
    )
    fired_by = json.loads(conn.execute("SELECT fired_by FROM cases WHERE id = ?", (case_id,)).fetchone()[0])
    fired_by["grant"] = ["su"]
    fired_by["@grant"] = list(fired_by.get("@", []))  # who had entered the data when grant fired
    conn.execute(
        "UPDATE cases SET state = 'enter', version = version + 1, audit_seq = ?, audit_head = ?, fired_by = ?"
        " WHERE id = ?",
        (seq + 1, forged.hash, json.dumps(fired_by), case_id),
    )
    conn.execute("UPDATE timers SET status = 'cancelled' WHERE case_id = ?", (case_id,))
    conn.close()
    out = failing(copy)
    assert f"seal: {ref}" in out
    assert "chain" not in out and f"replay: {ref}" not in out  # consistent: only the seal can tell


def test_a_deleted_case_is_refused_and_when_forced_named(copy: Path) -> None:
    with pytest.raises(sqlite3.DatabaseError, match="refused"):
        shell(copy, "DELETE FROM cases WHERE id = 1")
    shell(
        copy,
        "DROP TRIGGER cases_no_delete",
        "DELETE FROM case_keys WHERE case_id = 1",
        "DELETE FROM cases WHERE id = 1",
    )
    out = failing(copy)
    assert "deleted: case id 1" in out and FIRST in out


def test_a_damaged_file_is_reported_not_intact(copy: Path) -> None:
    conn = sqlite3.connect(copy)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ix_cases_deadline'").fetchone()[0]
    conn.close()
    with open(copy, "r+b") as f:
        f.seek(root * page_size - 200)
        f.write(bytes(range(200)))
    r = check(copy, "audit", "verify")
    assert r.rc != 0
    assert "intact" not in (r.out + r.err) and "integrity_check" in (r.out + r.err)


def test_a_checkpoint_written_and_verified(copy: Path, tmp_path: Path) -> None:
    kept = tmp_path / "checkpoint.json"
    r = check(copy, "audit", "checkpoint", "-o", str(kept))
    assert r.rc == 0, r.out + r.err
    body = json.loads(kept.read_text(encoding="utf-8"))
    assert body["mac"] and len(body["cases"]) > 1
    assert check(copy, "audit", "verify", "--checkpoint", str(kept)).rc == 0
    shell(
        copy,
        "DROP TRIGGER cases_no_delete",
        "DELETE FROM case_keys WHERE case_id = 2",
        "DELETE FROM cases WHERE id = 2",
    )
    r = check(copy, "audit", "verify", "--checkpoint", str(kept))
    assert r.rc == 1 and f"checkpoint: {SECOND}" in (r.out + r.err)


def test_notice_hash_matches_html(demo_db: Path) -> None:
    conn = sqlite3.connect(demo_db)
    rows = conn.execute("SELECT html, sha256 FROM notices").fetchall()
    conn.close()
    assert rows and all(hashlib.sha256(h.encode()).hexdigest() == s for h, s in rows)
