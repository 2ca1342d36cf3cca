"""Smoke run of the peer and flat benchmarks: every variant runs and gets a row with a ratio.

This checks the harness wiring (fresh processes, the child fill, the SpiffWorkflow
and naive peers), not speed: ``--quick`` sizes, one round, about 20 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.flat import SCENARIO as FLAT
from bench.harness import Scenario
from bench.peer import SCENARIO as PEER

ROOT = Path(__file__).resolve().parents[2]
# a row ends with its ratio: "1.00 (base)" for the baseline, a number for the others ("–" means none)
RATIO = re.compile(r"\s(\d+\.\d\d|1\.00 \(base\))$")


def _rows(output: str, scenario: Scenario) -> dict[str, str]:
    """The table lines of ``scenario`` in ``output``, by variant label."""
    section = output.split(f"## {scenario.name}:", 1)[1].split("\n## ", 1)[0]
    return {
        v.label: next((line for line in section.splitlines() if line.startswith(v.label + " ")), "")
        for v in scenario.variants
    }


@pytest.mark.slow
@pytest.mark.scenario  # the bench starts its variants in fresh worker processes
def test_quick_run_has_a_row_with_a_ratio_for_every_variant() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "peer", "flat", "--quick", "--no-postgres"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for scenario in (PEER, FLAT):
        for label, line in _rows(proc.stdout, scenario).items():
            assert RATIO.search(line), f"{scenario.name}: no row with a ratio for {label!r}:\n{proc.stdout}"
