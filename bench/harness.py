"""The benchmark harness: scenarios, fresh processes, rounds, medians, ratios.

A *scenario* is a question with a baseline ("how long does one persisted
transition take, next to SQLAlchemy Core doing the same writes?"). It has
*variants*; every non-baseline variant names the variant it is compared to.
Each round of each variant runs in a **fresh Python process**
(``python -m bench.worker``) on a **fresh database**, so no variant warms a
cache, a page or an allocator for another. The harness takes the median of
each metric over the rounds and prints it next to the baseline measured in
the same run, with the ratio of the scenario's primary metric.

A variant is a plain function ``f(url=..., **params) -> dict[str, float]``
named as ``"module:function"``; its ``url`` is a fresh SQLite file or a fresh
database on a throwaway PostgreSQL server started for the run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Metric", "Scenario", "Variant", "render", "run_scenario"]

ROOT = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH-RESULT "


@dataclass(frozen=True)
class Metric:
    """One column of a scenario's table. ``lower`` says whether smaller is better."""

    key: str
    label: str
    fmt: str = "{:,.0f}"
    lower: bool = True


@dataclass(frozen=True)
class Variant:
    """One contender: ``run`` is ``"module:function"``; ``baseline`` the key it is compared to."""

    key: str
    label: str
    run: str
    params: Mapping[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    backend: str | None = "sqlite"  # "sqlite", "postgresql", or None (no database)


@dataclass(frozen=True)
class Scenario:
    """A benchmark question: its variants, the columns it prints and its goal."""

    name: str
    title: str
    goal: str
    variants: tuple[Variant, ...]
    metrics: tuple[Metric, ...]
    primary: str
    rounds: int = 3
    quick: Mapping[str, Any] = field(default_factory=dict)  # params for the smoke run
    timeout: float = 3600.0


@dataclass
class Outcome:
    """What one variant measured: every round, and the median of each metric."""

    variant: Variant
    rounds: list[dict[str, float]]
    error: str | None = None

    def median(self, key: str) -> float | None:
        values = [r[key] for r in self.rounds if r.get(key) is not None]
        return statistics.median(values) if values else None


def run_scenario(
    scenario: Scenario,
    *,
    rounds: int | None = None,
    quick: bool = False,
    postgres_url: Callable[[str], str] | None = None,
    drop_postgres: Callable[[str], None] | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> list[Outcome]:
    """Run every round of every variant in its own process; return the outcomes.

    ``postgres_url(name)`` creates a fresh PostgreSQL database and returns its
    URL; without it, PostgreSQL variants are skipped (reported as such).
    """
    count = rounds or (1 if quick else scenario.rounds)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix=f"bench-{scenario.name}-") as tmp:
        for variant in scenario.variants:
            outcome = Outcome(variant, [])
            outcomes.append(outcome)
            if variant.backend == "postgresql" and postgres_url is None:
                outcome.error = "skipped: no PostgreSQL server (--no-postgres, or initdb/pg_ctl not found)"
                continue
            for n in range(1, count + 1):
                dbname = f"b_{scenario.name}_{variant.key}_{n}".replace("-", "_")
                if variant.backend == "sqlite":
                    url = f"sqlite:///{tmp}/{dbname}.db"
                elif variant.backend == "postgresql":
                    url = postgres_url(dbname)  # type: ignore[misc]
                else:
                    url = ""
                params = {**variant.params, **(scenario.quick if quick else {}), "url": url}
                log(f"{scenario.name}: {variant.label}, round {n}/{count}")
                t0 = time.perf_counter()
                try:
                    outcome.rounds.append(_run_worker(variant.run, params, scenario.timeout))
                except WorkerFailed as exc:
                    outcome.error = str(exc)
                    break
                finally:
                    if variant.backend == "postgresql" and drop_postgres is not None:
                        drop_postgres(dbname)
                    elif variant.backend == "sqlite":
                        for suffix in ("", "-wal", "-shm"):
                            Path(f"{tmp}/{dbname}.db{suffix}").unlink(missing_ok=True)
                log(f"  {time.perf_counter() - t0:.1f} s")
    return outcomes


class WorkerFailed(RuntimeError):
    """A variant's process failed; its output says why."""


def _run_worker(target: str, params: Mapping[str, Any], timeout: float) -> dict[str, float]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.worker", target, json.dumps(params)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-12:])
    raise WorkerFailed(f"{target} exited with {proc.returncode}:\n{tail}")


def render(scenario: Scenario, outcomes: Sequence[Outcome]) -> str:
    """The scenario's table: medians of every metric and the ratio to each row's baseline."""
    by_key = {o.variant.key: o for o in outcomes}
    rounds = max((len(o.rounds) for o in outcomes), default=0)
    header = ["variant", *(m.label for m in scenario.metrics), "× baseline"]
    rows: list[list[str]] = []
    for outcome in outcomes:
        if outcome.error:
            rows.append([outcome.variant.label, outcome.error.splitlines()[0]])
            continue
        cells = [outcome.variant.label]
        for metric in scenario.metrics:
            value = outcome.median(metric.key)
            cells.append("–" if value is None else metric.fmt.format(value))
        cells.append(_ratio(scenario, outcome, by_key))
        rows.append(cells)
    table = [header, *(r for r in rows if len(r) == len(header))]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        f"## {scenario.name}: {scenario.title}",
        f"goal: {scenario.goal}",
        f"medians of {rounds} round(s), each in a fresh process on a fresh database",
        "",
    ]
    for r in [header, *rows]:
        if len(r) == 2 and len(header) > 2:  # an error row spans the table
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]}")
            continue
        cells = [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _ratio(scenario: Scenario, outcome: Outcome, by_key: Mapping[str, Outcome]) -> str:
    base_key = outcome.variant.baseline
    if base_key is None:
        return "1.00 (base)"
    base = by_key.get(base_key)
    primary = next(m for m in scenario.metrics if m.key == scenario.primary)
    mine = outcome.median(primary.key)
    theirs = base.median(primary.key) if base and not base.error else None
    if not mine or not theirs:
        return "–"
    ratio = mine / theirs if primary.lower else theirs / mine
    return f"{ratio:.2f}"
