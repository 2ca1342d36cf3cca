"""Crash safety: a process killed with SIGKILL mid-batch leaves nothing half-done.

1,000 complete cases wait in ``apply``. A child process submits them — either the real
``casework case fire-many submit --refs-file F --as lin --batch 50`` command, or a small
script calling :meth:`Casework.fire` once per case — and is killed with SIGKILL at a
seeded random moment, 20 times, each time re-run on the cases still in ``apply``.

The child slows every statement it sends by a few milliseconds (a ``before_cursor_execute``
hook installed by its launcher, nothing in the engine), so that a transaction is open for
most of its life and the kills land between the statements of one change or one batch:
after the case rows were updated but before their audit events, after the audit events but
before the outbox rows, and so on. Then:

* every change is all or nothing: the cases in ``review`` are exactly the cases with a
  ``submit`` audit event (and, for the bulk command, a killed run committed whole batches
  of 50 only);
* ``casework check`` exits 0: every invariant of engine/invariants.py holds (state = last
  event, gapless seq, timers, outbox rows, unique keys);
* ``casework audit verify`` exits 0;

(Those checks, and the last run, are the command run in this process, tests/e2e/runner.py:
the process that matters here is the one killed.) A real-process scenario: ``make
test-scenarios`` runs it, not ``make test``.
* a last run without a kill submits exactly the rest: 1,000 cases in review, 1,000
  submit events, each case at version 2.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, func, select

from db import AuditEvent, Case
from engine import Casework
from tests.conftest import ROOT
from tests.e2e.runner import casework
from tests.integration.race_support import Households

WF = "poverty_archive"
N = 1000
KILLS = 20
BATCH = 50
STATEMENT_DELAY = 0.01  # seconds the child waits before each statement it sends
SEED = 20261130

pytestmark = pytest.mark.scenario  # SIGKILLs real processes

_cases = Case.__table__
_events = AuditEvent.__table__

# The child: slow every statement down a little and report, on stderr, each transaction's begin (B),
# statement (S) and commit (C), so the parent knows where each kill landed; say it is ready; run the work.
LAUNCHER = """\
import sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine

DELAY = float(sys.argv[1])


def _mark(what, conn):
    sys.stderr.write(f"{what} {id(conn)}\\n")
    sys.stderr.flush()


@event.listens_for(Engine, "begin")
def _begin(conn):
    _mark("B", conn)


@event.listens_for(Engine, "before_cursor_execute")
def _slow(conn, cursor, statement, params, context, many):
    time.sleep(DELAY)
    _mark("S", conn)


@event.listens_for(Engine, "commit")
def _commit(conn):
    _mark("C", conn)


@event.listens_for(Engine, "rollback")
def _rollback(conn):
    _mark("R", conn)


mode, url, refs_file = sys.argv[2:5]
if mode == "cli":
    from casework.cli import main

    print("ready", flush=True)
    main(["--db", url, "case", "fire-many", "submit", "--refs-file", refs_file, "--as", "lin",
          "--batch", sys.argv[5], "--quiet"])
else:
    from db import make_engine
    from engine import Casework

    svc = Casework(make_engine(url))
    refs = open(refs_file, encoding="utf-8").read().split()
    svc.workflows()  # connected
    print("ready", flush=True)
    for ref in refs:
        svc.fire(ref, "submit", "lin")
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CASEWORK_DB"}
    env.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8")
    return env


def counts(engine: Engine) -> tuple[int, int, int]:
    """(cases in apply, cases in review, submit events)."""
    with engine.connect() as conn:
        states = dict(conn.execute(select(_cases.c.state, func.count()).group_by(_cases.c.state)).all())
        submits = conn.execute(
            select(func.count()).select_from(_events).where(_events.c.trigger == "submit")
        ).scalar_one()
    return states.get("apply", 0), states.get("review", 0), submits


def remaining(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(_cases.c.ref).where(_cases.c.state == "apply").order_by(_cases.c.id)).scalars())


def per_case_consistent(engine: Engine) -> None:
    """Each case is either (apply, version 1, 1 event) or (review, version 2, created + submit): nothing between."""
    with engine.connect() as conn:
        events = dict(conn.execute(select(_events.c.case_id, func.count()).group_by(_events.c.case_id)).all())
        rows = conn.execute(select(_cases.c.id, _cases.c.ref, _cases.c.state, _cases.c.version, _cases.c.audit_seq))
        bad = [
            (r.ref, r.state, r.version, r.audit_seq, events.get(r.id, 0))
            for r in rows
            if (r.state, r.version, r.audit_seq, events.get(r.id, 0)) not in (("apply", 1, 1, 1), ("review", 2, 2, 2))
        ]
    assert not bad, f"{len(bad)} half-done cases, e.g. {bad[:5]}"


@pytest.fixture
def thousand(svc: Casework) -> list[str]:
    """1,000 complete households in apply, imported in bulk."""
    people = Households(seed=SEED)
    rows: list[dict[str, object]] = []
    seen: set[object] = set()
    while len(rows) < N:
        data = people()
        if data["id_number"] not in seen:
            seen.add(data["id_number"])
            rows.append(data)
    refs = svc.import_cases(WF, "lin", list(enumerate(rows, start=2)), batch=500).imported
    assert len(refs) == N
    return refs


def start_child(
    mode: str, url: str, refs: list[str], tmp_path: Path, round_: int, err: IO[str]
) -> subprocess.Popen[str]:
    launcher = tmp_path / "child.py"
    if not launcher.exists():
        launcher.write_text(LAUNCHER, encoding="utf-8")
    refs_file = tmp_path / f"refs{round_}.txt"
    refs_file.write_text("\n".join(refs) + "\n", encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(launcher), str(STATEMENT_DELAY), mode, url, str(refs_file), str(BATCH)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        env=_env(),
    )


def kill_moment(mode: str, rng: random.Random) -> tuple[int, float]:
    """Seeded: kill once the child has sent this many statements, plus up to one statement's delay.

    The bulk command sends a few reads while it starts, then ~8 statements per batch of 50; the loop
    sends 2 (PostgreSQL) to 7 (SQLite) per case. So a kill lands late in start-up, or inside the
    first or second batch, or somewhere in the first dozens of single steps — and 20 kills use up
    well under the 1,000 cases.
    """
    statements = rng.randint(4, 16) if mode == "cli" else rng.randint(1, 60)
    return statements, rng.uniform(0, STATEMENT_DELAY)


def where_killed(log: str) -> int | None:
    """From the child's marks (``B|S|C|R <connection>``): how many statements its open transaction had
    sent when it died — the most, if several were open — or None if none was open."""
    open_: dict[str, int] = {}
    for line in log.splitlines():
        mark, _, conn = line.partition(" ")
        if mark == "B":
            open_[conn] = 0
        elif mark == "S" and conn in open_:
            open_[conn] += 1
        elif mark in ("C", "R"):
            open_.pop(conn, None)
    return max(open_.values()) if open_ else None


def sent(log: Path) -> int:
    """Statements the child has sent so far."""
    return sum(1 for line in log.read_text(encoding="utf-8").splitlines() if line.startswith("S "))


def kill_one_run(
    mode: str, engine: Engine, url: str, todo: list[str], tmp_path: Path, round_: int, err: IO[str], rng: random.Random
) -> None:
    """Start the child on ``todo``, wait until it is ready, SIGKILL it at a seeded random moment."""
    statements, extra = kill_moment(mode, rng)
    log = tmp_path / f"child{round_}.err"
    child = start_child(mode, url, todo, tmp_path, round_, err)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ready", (line, log.read_text(encoding="utf-8"))
        sent_before = sent(log)  # connecting, before the work
        deadline = time.monotonic() + 60
        while sent(log) < sent_before + statements:
            assert child.poll() is None, "the child finished before it was killed"
            assert time.monotonic() < deadline, f"the child sent fewer than {statements} statements in 60 s"
            time.sleep(0.002)
        time.sleep(extra)
        assert child.poll() is None, "the child finished before it was killed"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        assert child.stdout is not None
        child.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["cli", "single"], ids=["cli-fire-many-batch50", "single-fire-loop"])
def test_twenty_sigkills_mid_batch_leave_nothing_half_done(
    svc: Casework, thousand: list[str], db_url: str, tmp_path: Path, mode: str, backend: str
) -> None:
    engine = svc.engine
    rng = random.Random(SEED)
    progress = []
    landed: list[int | None] = []  # per kill: statements its open transaction had sent, or None
    started = time.perf_counter()
    for round_ in range(KILLS):
        todo = remaining(engine)
        assert todo, f"no cases left to submit before kill {round_ + 1}: {progress}"
        before = counts(engine)
        log = tmp_path / f"child{round_}.err"
        with log.open("w", encoding="utf-8") as err:
            kill_one_run(mode, engine, db_url, todo, tmp_path, round_, err, rng)
        landed.append(where_killed(log.read_text(encoding="utf-8")))
        in_apply, in_review, submits = counts(engine)
        fired = in_review - before[1]
        progress.append(fired)
        # all or nothing: a case is in review exactly when its submit event exists
        assert in_review == submits and in_apply + in_review == N
        if mode == "cli":
            assert fired % BATCH == 0, f"kill {round_ + 1}: {fired} cases fired, not whole batches of {BATCH}"
    per_case_consistent(engine)
    kills_took = time.perf_counter() - started
    inside = [n for n in landed if n is not None]
    print(
        f"\n[{backend}, {mode}] {KILLS} SIGKILLs in {kills_took:.1f} s; cases submitted per killed run: {progress}; "
        f"{sum(progress)} of {N}; {len(inside)} kills inside an open transaction, after "
        f"{sorted(inside)} of its statements"
    )
    # the point of the exercise: most kills cut a transaction in the middle, some after writes were sent
    assert len(inside) >= KILLS // 2, landed
    assert any(n >= 2 for n in inside), landed

    check = casework(db_url, "check")
    assert check.rc == 0, check.out + check.err
    assert check.out.startswith(f"all invariants hold: {N} cases, {N + sum(progress)} audit events")
    verify = casework(db_url, "audit", "verify")
    assert verify.rc == 0, verify.out + verify.err
    assert verify.out.startswith(f"audit trail intact: {N + sum(progress)} events in {N} cases")

    # the survivors' run: exactly the rest, once
    rest = remaining(engine)
    assert len(rest) == N - sum(progress)
    refs_file = tmp_path / "rest.txt"
    refs_file.write_text("\n".join(rest) + "\n", encoding="utf-8")
    done = casework(db_url, "case", "fire-many", "submit", "--refs-file", str(refs_file), "--as", "lin", "--quiet")
    assert done.rc == 0, done.out + done.err
    assert done.out.strip() == f"submit: {len(rest)} fired, 0 refused"
    assert counts(engine) == (0, N, N)
    per_case_consistent(engine)
    check = casework(db_url, "check")
    assert check.rc == 0 and check.out.startswith(f"all invariants hold: {N} cases, {2 * N} audit events"), check
    verify = casework(db_url, "audit", "verify")
    assert verify.rc == 0 and verify.out.startswith(f"audit trail intact: {2 * N} events in {N} cases"), verify
    assert svc.check().ok
