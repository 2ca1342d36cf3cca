"""Smoke run of the web benchmark (``python -m bench web``) on SQLite and PostgreSQL.

A tiny population (``--cases``), a few requests: this keeps the harness, the
login, both pages and their ``Server-Timing`` from rotting; it measures nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.web import SCENARIO as WEB
from tests.pgserver import find_pg_bindir

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.scenario  # the bench starts its variants in fresh worker processes
def test_quick_web_run_times_both_pages_beside_the_engine_on_both_backends(tmp_path: Path) -> None:
    if find_pg_bindir() is None:
        pytest.skip("needs PostgreSQL server binaries for the PostgreSQL variant")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "web", "--quick", "--cases", "600", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for variant in WEB.variants:
        assert variant.label in proc.stdout, proc.stdout
    saved = json.loads(out.read_text())["scenarios"]["web"]
    assert set(saved) == {"pages_sqlite", "pages_postgresql"}
    for key, outcome in saved.items():
        assert outcome["error"] is None, f"{key}: {outcome['error']}"
        (figures,) = outcome["rounds"]
        assert figures["cases"] == 600  # --cases reached the variant, under --quick too
        for name in ("inbox_page", "inbox_engine", "case_page", "case_engine"):
            # a page's time is the server's own (Server-Timing), and it does at least what the engine does
            assert 0 < figures[f"{name}_p50_ms"] <= figures[f"{name}_p95_ms"], (key, name, figures)
        assert figures["worst_page_p95_ms"] == max(figures["inbox_page_p95_ms"], figures["case_page_p95_ms"])
