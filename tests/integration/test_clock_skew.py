"""A scheduler whose clock runs an hour ahead fires nothing early (issue 6, scenario 6).

The scheduler runs as a real process under ``faketime`` (Debian's package),
against a real PostgreSQL server whose clock is right. Due checks — every
"now" of a PostgreSQL process — come from the database's clock
(:class:`engine.DatabaseClock`), so the skewed host changes nothing. The
same run with ``CASEWORK_CLOCK=host`` (trust the host) does fire early,
which shows the test can fail.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys

import pytest
from sqlalchemy import select, text, update

from db import Case, Timer
from engine import Casework
from notifications.notices import publish_list
from tests.conftest import ROOT
from tests.integration.test_service import file_through, household

# CI installs faketime (.ci/run), so there a missing one fails instead of skipping
pytestmark = [
    pytest.mark.scenario,  # a real scheduler process under faketime
    pytest.mark.skipif(
        shutil.which("faketime") is None and not os.environ.get("CI"), reason="needs faketime (apt install faketime)"
    ),
]

WF = "poverty_archive"


def ahead(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Python module in a process whose wall clock is one hour ahead."""
    return subprocess.run(
        ["faketime", "-f", "+1h", sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "FAKETIME_DONT_FAKE_MONOTONIC": "1", **(env or {})},
    )


def parked(svc: Casework, due_in: dt.timedelta, seed: int) -> str:
    """A published case in publicity whose period ends, and end-of-publicity timer falls due, ``due_in`` from
    the server's now (the period moved behind the engine's back: what is tested is whose clock says "due")."""
    ref = svc.create_case(WF, "lin", household(seed=seed)).ref
    file_through(svc, ref, "publicise")
    publish_list(svc, WF, "芗城区")
    with svc.engine.begin() as conn:
        server_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        case_id = conn.execute(select(Case.id).where(Case.ref == ref)).scalar_one()
        conn.execute(
            update(Timer)
            .where(Timer.case_id == case_id, Timer.status == "pending", Timer.kind == "timeout")
            .values(due_at=server_now + due_in)
        )
        conn.execute(update(Case).where(Case.id == case_id).values(deadline_at=server_now + due_in))
    return ref


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_scheduler_an_hour_ahead_fires_nothing_early(svc: Casework, db_url: str) -> None:
    skewed = ahead("-c", "import datetime; print(datetime.datetime.now(datetime.UTC).isoformat())")
    assert skewed.returncode == 0, skewed.stderr
    lead = dt.datetime.fromisoformat(skewed.stdout.strip()) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < lead < dt.timedelta(minutes=61)  # faketime really works here

    early = [parked(svc, dt.timedelta(minutes=30), seed=n) for n in range(1, 4)]
    late = [parked(svc, -dt.timedelta(minutes=5), seed=n) for n in range(4, 6)]
    run = ahead("-m", "casework", "--db", db_url, "timers", "run-due")
    assert run.returncode == 0, run.stderr
    assert [svc.get_case(r).state for r in late] == ["approve", "approve"]
    assert [svc.get_case(r).state for r in early] == ["publicise"] * 3
    # the events it wrote carry the server's time, not the skewed host's
    stamp = svc.history(late[0])[-1].at
    with svc.engine.connect() as conn:
        server_now = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    assert abs(server_now - stamp) < dt.timedelta(minutes=5)

    trusting = ahead("-m", "casework", "--db", db_url, "timers", "run-due", env={"CASEWORK_CLOCK": "host"})
    assert trusting.returncode == 0, trusting.stderr
    assert [svc.get_case(r).state for r in early] == ["approve"] * 3  # the host's clock would fire them early
