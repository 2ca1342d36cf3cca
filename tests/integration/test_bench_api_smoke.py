"""Smoke run of the HTTP API load benchmark (``python -m bench api``) on PostgreSQL, and its clean-up.

Two servers, four clients, two seconds, beside the engine's baseline: this
keeps the fleet (real ``casework serve`` and ``casework scheduler``
processes), the clients, the deliberate race, the idempotent replay and the
checks after the load from rotting; it measures nothing. The second test
kills the bench's process with SIGKILL mid-load and proves that every process
it started goes with it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.api import KINDS, SCENARIO, variants
from tests.integration.test_bench_peer_flat import RATIO, _rows
from tests.pgserver import PgServer, find_pg_bindir

ROOT = Path(__file__).resolve().parents[2]


def _fleet_of(marker: str) -> list[int]:
    """The pids of live processes whose command line holds ``marker`` (this bench's database name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and "casework" in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def test_quick_api_run_has_no_errors_a_clean_database_and_a_ratio_to_the_engine(tmp_path: Path) -> None:
    if find_pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "api", "--quick", "--servers", "2", "--seconds", "2", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shown = dataclasses.replace(SCENARIO, variants=variants((2,)))  # what --servers 2 runs
    for label, line in _rows(proc.stdout, shown).items():
        assert RATIO.search(line), f"api: no row with a ratio for {label!r}:\n{proc.stdout}"
    assert "HTTP/engine requests/s" in proc.stdout, proc.stdout
    saved = json.loads(out.read_text())["scenarios"]["api"]
    assert set(saved) == {"engine", "http_2"}
    for key, outcome in saved.items():
        assert outcome["error"] is None, f"{key}: {outcome['error']}"
        (figures,) = outcome["rounds"]
        assert figures["errors"] == 0, (key, figures, proc.stderr)
        assert figures["check_clean"] == figures["audit_clean"] == 1, (key, figures, proc.stderr)
        # every 201 is one case in the database, and each replay answered with it, never a second one
        assert figures["cases"] == figures["created"] > 0 and figures["cases_unaccounted"] == 0, (key, figures)
        for kind in KINDS:  # each client's first cycle has a replay and a race: every kind was answered
            assert figures[f"{kind}_rps"] > 0 and figures[f"{kind}_p50_ms"] <= figures[f"{kind}_p99_ms"], (key, kind)
        assert figures["races"] >= 4  # one lost race (412) per client at least
    assert saved["http_2"]["rounds"][0]["servers"] == 2
    left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in _fleet_of("/b_api_http_2_1")}
    assert not left, f"a server or the scheduler outlived the bench: {left}"


@pytest.mark.slow
@pytest.mark.scenario  # SIGKILL of a process that started a fleet of servers
def test_servers_and_scheduler_die_with_the_bench_process_killed_mid_load(tmp_path: Path) -> None:
    if find_pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries")
    with PgServer() as pg:
        url = pg.create_database("b_api_killed")
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", "bench.api:http", json.dumps({"url": url, "seconds": 60})],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(_fleet_of("/b_api_killed")) < 3:  # two servers and the scheduler
                assert worker.poll() is None, "the bench exited before its fleet started"
                assert time.monotonic() < deadline, "the fleet did not start within 120 s"
                time.sleep(0.2)
            time.sleep(2)  # under load
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
            deadline = time.monotonic() + 30
            while left := _fleet_of("/b_api_killed"):
                assert time.monotonic() < deadline, f"still running after the bench was killed: {left}"
                time.sleep(0.2)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            for pid in _fleet_of("/b_api_killed"):
                os.kill(pid, signal.SIGKILL)
