"""Flat cost: firing on the 100,000th case vs the 1st, and the memory of a process that fires on 100,000.

    python -m bench flat -v            # one round: 1,000 vs 100,000 cases (~3-4 minutes)
    python -m bench flat --quick       # 200 vs 2,000 cases: checks the harness, not the claim

The engine keeps one ``transitions`` machine per workflow version and never
registers cases with it, so the machine's cost must not grow with the number
of cases, and neither may the memory of a long-running process. Each variant:

1. **fills** a fresh SQLite file with N cases in ``apply`` — in a *child
   process* (``python -m bench.flat URL N``), so none of the fill's memory is
   in the measured process's peak RSS (``ru_maxrss`` of ``RUSAGE_SELF`` does
   not include children);
2. then, in the measured process, fires ``submit`` on every case through the
   public API (``Casework.fire(ref, "submit", "lin")``), in case order, and
   reports the median µs of the first 1,000 fires (``first_us``), of the last
   1,000 (``last_us``, the primary metric), the peak RSS after the first
   1,000 fires (``rss_1k_mb``) and at the end (``rss_mb``).

The 1,000-case process is the baseline: the ratio in the table is the
100,000th-case cost over the 1,000th-case cost (goal ≤ 1.10), and the RSS
growth is the ``rss_mb`` of the 100k row minus that of the 1k row (goal
< 20 MB). Timings are kept as the first window and a sliding window of the
last, not as a list of 100,000 floats, so the bench itself adds no memory
that grows with N; refs are formatted from their numbers for the same reason.

The fill is the engine's own import path (``Casework.import_cases``: the
same plan as ``case new``, written a batch at a time), not
``casework.population.populate``, which walks cases into every state of the
workflow (most end up filed) and has no way to leave them all in ``apply``.
The file is fresh, so the references are ``…-000001`` to ``…-N`` in order.

Default rounds: **1** (100,000 fires at ~1 ms each are 2-3 minutes, plus
~40 s of fill); pass ``--rounds 2`` for a second opinion. The ratio is a
10 % question, so run it on a quiet machine: other load drifting in or out
between the first and the last 1,000 fires moves it more than the engine does.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from sqlalchemy import select

from bench.harness import ROOT, Metric, Scenario, Variant
from casework.synthetic import SyntheticPeople
from db import RefCounter, make_engine, upgrade
from engine import Casework, load_definition_file
from engine.store.refs import format_ref

__all__ = ["SCENARIO", "fill", "fire"]

BUNDLED = Path(__file__).resolve().parent.parent / "workflows" / "poverty_archive.yaml"
CLERK = "lin"
# submit needs household_type, household_size, income_per_capita and cause besides
# the required fields; SyntheticPeople.household() always gives all of them
TRIGGER = "submit"


def fill(url: str, count: int, *, seed: int = 1, batch: int = 5000) -> None:
    """Open ``count`` cases in the initial state through the engine's import path, ``batch`` per transaction.

    Numbers them ``1..count`` in the current year (a fresh file), so the
    firing process can format every ref instead of holding a list of them.
    """
    engine = make_engine(url)
    upgrade(engine)
    svc = Casework(engine)
    wf = load_definition_file(BUNDLED)
    svc.load_workflow(wf)
    svc.add_user(CLERK, "林晓", ["clerk"], ["*"])
    # a reviewer, so that entering review queues a notification, as it would in production
    svc.add_user("wu", "吴明辉", ["reviewer"], ["*"])
    people = SyntheticPeople(seed)
    report = svc.import_cases(wf.name, CLERK, ((i, people.household()) for i in range(count)), batch=batch)
    if len(report.imported) != count:
        raise RuntimeError(f"the fill opened {len(report.imported)} cases, not {count}: {report.skipped[:3]}")
    engine.dispose()  # closing the last connection checkpoints the WAL: the firing process starts on a clean file


def _fill_in_child(url: str, count: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.flat", url, str(count)],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the fill of {count} cases failed:\n{proc.stderr[-3000:]}")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def fire(url: str, cases: int, quick_cases: int, quick: bool = False, window: int = 1000) -> dict[str, float]:
    """Fill ``cases`` cases (``quick_cases`` if ``quick``) in a child, then fire ``submit`` on each here.

    ``quick`` comes from the scenario's quick params, which apply to every
    variant alike; each variant says its own quick size in ``quick_cases``.
    """
    count = quick_cases if quick else cases
    _fill_in_child(url, count)
    engine = make_engine(url)
    svc = Casework(engine)
    with engine.connect() as conn:
        prefix, year, last_number = conn.execute(select(RefCounter.__table__)).one()
    if last_number != count:
        raise RuntimeError(f"the fill left {last_number} cases, not {count}")

    first: list[float] = []
    last: deque[float] = deque(maxlen=window)
    rss_first = 0.0
    clock = time.perf_counter
    for number in range(1, count + 1):
        ref = format_ref(prefix, year, number)
        t0 = clock()
        svc.fire(ref, TRIGGER, CLERK)
        elapsed = clock() - t0
        last.append(elapsed)
        if number <= window:
            first.append(elapsed)
            if number in (window, count):
                rss_first = _peak_rss_mb()
    rss = _peak_rss_mb()
    state = svc.get_case(format_ref(prefix, year, count)).state
    if state != "review":
        raise RuntimeError(f"the last case is in {state}, not review")
    engine.dispose()
    return {
        "cases": float(count),
        "first_us": statistics.median(first) * 1e6,
        "last_us": statistics.median(last) * 1e6,
        "rss_1k_mb": rss_first,
        "rss_mb": rss,
    }


SCENARIO = Scenario(
    name="flat",
    title="firing on the 100,000th case vs the 1st, and peak RSS at 100,000 cases vs 1,000",
    goal="100,000th case within 10 % of the 1st; RSS growth < 20 MB from 1,000 to 100,000 cases",
    variants=(
        Variant("fire-1k", "1,000 cases", "bench.flat:fire", {"cases": 1_000, "quick_cases": 200}),
        Variant(
            "fire-100k",
            "100,000 cases",
            "bench.flat:fire",
            {"cases": 100_000, "quick_cases": 2_000},
            baseline="fire-1k",
        ),
    ),
    metrics=(
        Metric("cases", "cases"),
        Metric("first_us", "first 1k µs"),
        Metric("last_us", "last 1k µs"),
        Metric("rss_1k_mb", "RSS after 1k fires MB", "{:,.1f}"),
        Metric("rss_mb", "peak RSS MB", "{:,.1f}"),
    ),
    primary="last_us",
    rounds=1,
    quick={"quick": True},
)


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.flat URL COUNT``: the fill, run as the measured process's child."""
    parser = argparse.ArgumentParser(description="fill a fresh database with COUNT cases in the initial state")
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    fill(args.url, args.count)
    print(f"filled {args.count} cases in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
