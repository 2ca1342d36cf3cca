"""Scenario "startup": the CPU a ``casework`` command costs before it has done anything of note.

    python -m bench startup              # 20 runs of each command per round, 3 rounds

A clerk types ``casework case show REF`` many times a day; the process's
start-up — importing the CLI, the engine and their libraries — is most of
what that costs. Each variant runs one command line 20 times, each in a new
process (the installed ``casework`` script, or ``python -c`` for the
baselines), and reports the median CPU time (user + system, from the child's
own ``rusage``) and wall time:

* ``python -c pass`` — the interpreter alone: the baseline of ``--help``;
* ``python -c "import click, sqlalchemy.engine, …"`` — the libraries a read
  cannot do without (click, SQLAlchemy's engine and SQLite dialect, pydantic,
  PyYAML, Jinja2's sandbox): the baseline of ``case show``;
* ``casework --help`` and ``casework case show REF`` (as a clerk would run it
  on a database holding the demo's archives).

Bytecode caching is on (``PYTHONDONTWRITEBYTECODE`` removed) and each command
runs once unmeasured first, as on a machine where casework is installed. The
goal (issue 10) is 0.3 s of CPU for both commands.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Metric, Scenario, Variant

__all__ = ["SCENARIO", "command"]

CASEWORK = str(Path(sys.executable).with_name("casework"))
LIBRARIES = "import click, sqlalchemy, sqlalchemy.engine, sqlalchemy.dialects.sqlite, pydantic, yaml, jinja2.sandbox"


def _prepare(url: str) -> str:
    """A database with the demo's archives; the ref of one of them."""
    from casework.cli import run

    with open(os.devnull, "w") as sink:
        saved = sys.stdout
        sys.stdout = sink
        try:
            if run(["--db", url, "demo", "--seed", "7"]) != 0:
                raise RuntimeError("the demo failed")
        finally:
            sys.stdout = saved
    return "ZZ-" + time.strftime("%Y") + "-000001"


def _cpu_of(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of running ``argv`` once in a new process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return usage.ru_utime + usage.ru_stime, wall


def command(url: str, which: str, runs: int = 20) -> dict[str, float]:
    """Run the ``which`` command line ``runs`` times; the median CPU and wall milliseconds."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "CASEWORK_DB")}
    argv = {
        "bare": [sys.executable, "-c", "pass"],
        "libraries": [sys.executable, "-c", LIBRARIES],
        "help": [CASEWORK, "--help"],
    }.get(which)
    if argv is None:
        ref = _prepare(url)
        argv = [CASEWORK, "--db", url, "case", "show", ref]
    _cpu_of(argv, env)  # once unmeasured: bytecode written, files in the page cache
    cpu, wall = zip(*(_cpu_of(argv, env) for _ in range(runs)), strict=True)
    return {"cpu_ms": statistics.median(cpu) * 1000, "wall_ms": statistics.median(wall) * 1000}


SCENARIO = Scenario(
    name="startup",
    title="CPU of a command's whole process: casework --help and case show, beside Python and the libraries alone",
    goal="casework --help and casework case show REF each under 300 ms of CPU",
    variants=(
        Variant("bare", "python -c pass", "bench.startup:command", {"which": "bare"}, backend=None),
        Variant("help", "casework --help", "bench.startup:command", {"which": "help"}, baseline="bare", backend=None),
        Variant("libraries", "python -c 'import <the libraries>'", "bench.startup:command", {"which": "libraries"}),
        Variant("show", "casework case show REF", "bench.startup:command", {"which": "show"}, baseline="libraries"),
    ),
    metrics=(Metric("cpu_ms", "CPU ms"), Metric("wall_ms", "wall ms")),
    primary="cpu_ms",
    rounds=3,
    quick={"runs": 2},
)
