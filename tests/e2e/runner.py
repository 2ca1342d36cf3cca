"""Running the ``casework`` command in this process, as a user would type it.

:func:`casework` calls :func:`casework.cli.run` — the same code the console
script runs — inside click's test isolation: its own stdin, stdout, stderr
and environment, from the project root. It is what most end-to-end tests
use; a few real-process smoke tests (``test_cli_process.py``) prove that the
installed command starts, exits with the right codes and handles signals.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from click.testing import CliRunner

from casework.cli import run

ROOT = Path(__file__).resolve().parents[2]

# settings the command reads from the environment; a test gives them explicitly or not at all
_SETTINGS = re.compile(r"^CASEWORK_(DB|CONFIG|SMTP_.*|WEBHOOK_.*|RELAY_.*)$")


class Result(NamedTuple):
    """What a command did: its exit code, stdout and stderr."""

    rc: int
    out: str
    err: str


def casework(
    db_url: str | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    cwd: Path = ROOT,
) -> Result:
    """``casework [--db DB_URL] ARGS...`` from the project root (or ``cwd``); a traceback fails the test.

    The environment is the test process's without casework's own settings
    (no ``casework.toml`` either), plus ``env``. A command that writes files
    in the current directory (``demo``) is given a ``cwd`` of its own, so
    tests running side by side never share one.
    """
    overrides: dict[str, str | None] = {k: None for k in os.environ if _SETTINGS.match(k)}
    overrides.update(COLUMNS="200", CASEWORK_CONFIG=os.devnull)
    overrides.update(env or {})
    argv = ["--db", db_url, *args] if db_url is not None else list(args)
    with contextlib.chdir(cwd), CliRunner().isolation(input=input, env=overrides) as (stdout, stderr, _):
        rc = run(argv)
    return Result(rc, stdout.getvalue().decode("utf-8"), stderr.getvalue().decode("utf-8"))
