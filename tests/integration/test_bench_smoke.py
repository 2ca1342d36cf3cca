"""Smoke run of the transition, bulk and inbox benchmarks, on SQLite and PostgreSQL.

``--quick`` sizes, one round: this keeps the harness and every variant from
rotting (fresh processes, both backends, the tables and ratios); it measures
nothing. The peer and flat scenarios have their own smoke test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.bulk import SCENARIO as BULK
from bench.inbox import SCENARIO as INBOX
from bench.transition import SCENARIO as TRANSITION
from tests.integration.test_bench_peer_flat import RATIO, _rows
from tests.pgserver import find_pg_bindir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.scenario  # the bench starts its variants in fresh worker processes
def test_quick_run_has_a_row_with_a_ratio_for_every_variant_on_both_backends(tmp_path: Path) -> None:
    if find_pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries for the PostgreSQL variants")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "transition", "bulk", "inbox", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for scenario in (TRANSITION, BULK, INBOX):
        for label, line in _rows(proc.stdout, scenario).items():
            assert RATIO.search(line), f"{scenario.name}: no row with a ratio for {label!r}:\n{proc.stdout}"
    saved = json.loads(out.read_text())
    engine_pg = saved["scenarios"]["transition"]["engine-postgresql"]["rounds"][0]
    assert engine_pg["round_trips"] <= 4  # the goal the benchmark reports, counted the same way


@pytest.mark.slow
@pytest.mark.scenario
def test_quick_report_run_counts_alike_and_has_a_ratio_on_both_backends(tmp_path: Path) -> None:
    """The report bench: its baseline (every case fetched, counted in Python) must agree with the engine first."""
    from bench.report import SCENARIO as REPORT

    if find_pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries for the PostgreSQL variants")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "report", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a baseline counting otherwise fails its variant
    for label, line in _rows(proc.stdout, REPORT).items():
        assert RATIO.search(line), f"report: no row with a ratio for {label!r}:\n{proc.stdout}"
    saved = json.loads(out.read_text())["scenarios"]["report"]
    for key in ("engine_sqlite", "engine_postgresql"):
        figures = saved[key]["rounds"][0]
        assert all(figures[f"{m}_ms"] > 0 for m in ("archives", "archives_asof", "exit_rate", "overdue"))
