"""``casework serve`` as a real process: logins over real HTTP, the clock beside it on SQLite, workers sharing sessions.

The cases are put in publicity three weeks ago (as in the scheduler's own
process tests), so their end-of-publicity timers are due when the server
starts: on SQLite the server's own clock fires them with nothing else
started; on PostgreSQL it does not (the scheduler is its own process there),
and two workers share the sessions stored in the database.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from db import Case, make_engine
from engine import Casework
from tests.conftest import ROOT
from tests.integration.test_scheduler_processes import seed_due_cases

pytestmark = pytest.mark.scenario  # real server processes

PASSWORD = "correct-horse-7"
_cases = Case.__table__


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(url: str, log: Path, *args: str) -> Iterator[str]:
    """``casework serve`` on a free port until the block ends (its output in ``log``); its base URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "casework", "--db", url, "serve", "--port", str(port), "--interval", "0.5", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/login", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"casework serve did not start: {log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _login(client: httpx.Client, username: str) -> None:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    assert response.status_code == 303, response.text


def _count_in(url: str, state: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(_cases.c.state == state)).scalar_one())
    finally:
        engine.dispose()


def _set_password(url: str, username: str) -> None:
    engine = make_engine(url)
    try:
        Casework(engine).logins.set_password(username, PASSWORD)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_the_server_runs_the_clock_and_a_login_works_over_real_http(
    db_url: str, backend: str, tmp_path: Path
) -> None:
    seed_due_cases(db_url, 3)
    _set_password(db_url, "wu")
    with serving(db_url, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            _login(client, "wu")
            account = client.get("/account")
            assert account.status_code == 200 and "吴明辉" in account.text
            assert account.headers["content-security-policy"].startswith("default-src 'self'")
        deadline = time.monotonic() + 60
        while _count_in(db_url, "approve") < 3:
            assert time.monotonic() < deadline, "the server's clock did not end the publicity periods"
            time.sleep(0.3)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_on_postgresql_two_workers_share_sessions_and_leave_the_clock_to_the_scheduler(
    db_url: str, backend: str, tmp_path: Path
) -> None:
    seed_due_cases(db_url, 2)
    _set_password(db_url, "wu")
    with serving(db_url, tmp_path / "serve.log", "--workers", "2") as base:
        with httpx.Client(base_url=base, follow_redirects=False, timeout=10) as client:
            _login(client, "wu")
            # fresh connections spread over both workers; each one reads the session from the database
            for _ in range(20):
                with httpx.Client(base_url=base, cookies=client.cookies, timeout=10) as other:
                    assert other.get("/account", follow_redirects=False).status_code == 200
        time.sleep(2)
        assert _count_in(db_url, "approve") == 0  # no clock in serve on PostgreSQL
