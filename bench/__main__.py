"""``python -m bench [SCENARIO ...]`` — run the benchmarks and print their tables.

    python -m bench                      # every scenario, default rounds
    python -m bench transition inbox     # some of them
    python -m bench --quick              # a few iterations each: the smoke run the tests use
    python -m bench --rounds 5 --json results.json
    python -m bench api --servers 2 4 --clients 8 --seconds 20   # the HTTP API on real server processes

PostgreSQL variants run on a throwaway server (tests/pgserver.py) started for
the run when ``initdb``/``pg_ctl`` are installed; ``--no-postgres`` skips them.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import Scenario, render, run_scenario

SCENARIOS = ("startup", "transition", "peer", "flat", "bulk", "inbox", "report", "web", "api")


def load(name: str) -> Scenario:
    """The ``SCENARIO`` of ``bench/<name>.py``."""
    return importlib.import_module(f"bench.{name}").SCENARIO


def with_cases(scenario: Scenario, cases: int) -> Scenario:
    """``scenario`` with ``cases`` cases for each variant whose function takes a ``cases`` (``--cases``)."""
    variants = []
    for v in scenario.variants:
        module, name = v.run.split(":")
        if "cases" in inspect.signature(getattr(importlib.import_module(module), name)).parameters:
            v = dataclasses.replace(v, params={**v.params, "cases": cases})
        variants.append(v)
    quick = {**scenario.quick, "cases": cases} if "cases" in scenario.quick else scenario.quick
    return dataclasses.replace(scenario, variants=tuple(variants), quick=quick)


def with_param(scenario: Scenario, name: str, value: Any) -> Scenario:
    """``scenario`` with ``name=value`` for each variant whose function takes it (``--clients``, ``--seconds``)."""
    variants = []
    for v in scenario.variants:
        module, func = v.run.split(":")
        if name in inspect.signature(getattr(importlib.import_module(module), func)).parameters:
            v = dataclasses.replace(v, params={**v.params, name: value})
        variants.append(v)
    quick = {k: v for k, v in scenario.quick.items() if k != name}  # what is asked for wins over --quick's size
    return dataclasses.replace(scenario, variants=tuple(variants), quick=quick)


def with_servers(scenario: Scenario, counts: list[int]) -> Scenario:
    """``scenario`` with one variant per count in ``counts`` in place of those that take ``servers``."""
    fleet = [v for v in scenario.variants if "servers" in v.params]
    if not fleet:
        return scenario
    model = fleet[0]
    prefix = model.key.rsplit("_", 1)[0]
    made = tuple(
        dataclasses.replace(
            model,
            key=f"{prefix}_{n}",
            label=model.label.replace(f"{model.params['servers']} servers", f"{n} server{'s' if n != 1 else ''}"),
            params={**model.params, "servers": n},
        )
        for n in counts
    )
    return dataclasses.replace(scenario, variants=(*(v for v in scenario.variants if v not in fleet), *made))


def machine() -> str:
    """One line saying what this ran on."""
    import sqlalchemy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}){mem}; Python {platform.python_version()}; "
        f"SQLAlchemy {sqlalchemy.__version__}; SQLite {__import__('sqlite3').sqlite_version}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default all)")
    parser.add_argument("--rounds", type=int, help="rounds per variant (default: each scenario's own)")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: checks the harness, not speed")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL variants")
    parser.add_argument("--cases", type=int, help="cases in the database of the scenarios that populate one")
    parser.add_argument(
        "--servers", type=int, nargs="+", metavar="N", help="api: server processes, one variant per count (default 2 4)"
    )
    parser.add_argument("--clients", type=int, help="api: concurrent clients (default 8)")
    parser.add_argument("--seconds", type=float, help="api: seconds of load per round (default 30)")
    parser.add_argument(
        "--tokens-per-client", action="store_true", help="api: a token of each user per client, not one per user"
    )
    parser.add_argument("--json", type=Path, help="also write every round's figures to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="say which round is running")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    names = args.scenarios or list(SCENARIOS)
    scenarios = [load(n) for n in names]
    if args.cases is not None:
        scenarios = [with_cases(s, args.cases) for s in scenarios]
    if args.servers:
        if min(args.servers) < 1:
            parser.error("--servers needs counts of 1 or more")
        scenarios = [with_servers(s, args.servers) for s in scenarios]
    for option in ("clients", "seconds", "tokens_per_client"):
        if getattr(args, option) not in (None, False):
            scenarios = [with_param(s, option, getattr(args, option)) for s in scenarios]

    def log(line: str) -> None:
        if args.verbose:
            print(line, file=sys.stderr, flush=True)

    server = None
    wants_pg = any(v.backend == "postgresql" for s in scenarios for v in s.variants)
    if wants_pg and not args.no_postgres:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from pgserver import PgServer, find_pg_bindir

        if find_pg_bindir() is not None:
            server = PgServer().start()
    print(f"# casework benchmarks — {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"machine: {machine()}")
    if server is not None:
        print("PostgreSQL: a throwaway local server (tests/pgserver.py; fsync off, as in the tests)")
    print()
    saved = {}
    try:
        for scenario in scenarios:
            outcomes = run_scenario(
                scenario,
                rounds=args.rounds,
                quick=args.quick,
                postgres_url=server.create_database if server else None,
                drop_postgres=server.drop_database if server else None,
                log=log,
            )
            print(render(scenario, outcomes), flush=True)
            print()
            details = getattr(importlib.import_module(f"bench.{scenario.name}"), "details", None)
            if details is not None:  # what one table cannot hold, e.g. the api's figures by kind of request
                print(details(outcomes), flush=True)
                print()
            saved[scenario.name] = {
                o.variant.key: {"label": o.variant.label, "rounds": o.rounds, "error": o.error} for o in outcomes
            }
            failed = [o for o in outcomes if o.error and not o.error.startswith("skipped")]
            for o in failed:
                print(f"{scenario.name}/{o.variant.key} failed:\n{o.error}\n", file=sys.stderr)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "scenarios": saved}, indent=2, ensure_ascii=False))
    errors = [v for s in saved.values() for v in s.values() if v["error"] and not v["error"].startswith("skipped")]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
