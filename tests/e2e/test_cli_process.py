"""The real ``casework`` command in its own process: what only a process can show.

Everything else about the command is tested in-process (:mod:`tests.e2e.runner`,
the console script's own code). These few smoke tests start
``python -m casework`` (and the installed console script) as a user's shell
would — from the project root, with no ``CASEWORK_*`` settings in the
environment, ``PYTHONUTF8=1`` — and hold it to what a shell or a script sees:
the exit code, what is on stdout and what is on stderr, and no traceback —
also when the reader of its output has gone (a closed pipe) and when the
user presses Ctrl-C. The signals of the scheduler (SIGTERM, SIGKILL) are
real-process scenarios: tests/integration/test_scheduler_processes.py.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import click
import pytest

from casework.cli import cli
from tests.e2e.runner import ROOT

MISSING = "ZZ-2026-999999"


class Done(NamedTuple):
    rc: int
    out: str
    err: str


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWORK_")}
    env["PYTHONUTF8"] = "1"
    return env


def run(*args: str, command: list[str] | None = None) -> Done:
    """``python -m casework ARGS...`` in a new process, from the project root."""
    proc = subprocess.run(
        [*(command or [sys.executable, "-m", "casework"]), *args],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )
    return Done(proc.returncode, proc.stdout, proc.stderr)


def one_error_line(done: Done, rc: int) -> str:
    """Exit ``rc``, nothing on stdout, exactly one ``error: ...`` line on stderr; returns that line."""
    assert done.rc == rc, done
    assert done.out == "", done
    lines = done.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.err
    return lines[0]


@pytest.fixture
def initialised(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a SQLite database at schema head, private to this test."""
    path = tmp_path / "casework.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def test_help_lists_every_command_and_exits_0() -> None:
    done = run("--help")
    assert (done.rc, done.err) == (0, ""), done
    assert done.out.startswith("Usage: casework [OPTIONS] COMMAND [ARGS]..."), done.out
    listed = done.out.split("\nCommands:\n", 1)[1]
    names = {m[1] for line in listed.splitlines() if (m := re.match(r"  (\S+)", line))}
    assert isinstance(cli, click.Group)
    assert names == set(cli.commands), names ^ set(cli.commands)
    assert {"init", "workflow", "user", "case", "audit", "check", "scheduler"} <= names


def test_version_is_the_installed_version() -> None:
    done = run("--version")
    assert (done.rc, done.err) == (0, ""), done
    assert done.out == f"casework, version {importlib.metadata.version('casework')}\n"


def test_the_installed_console_script_starts() -> None:
    script = shutil.which("casework", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip(f"no casework console script beside {sys.executable} (package not installed there)")
    done = run("--version", command=[script])
    assert (done.rc, done.err) == (0, ""), done
    assert done.out == f"casework, version {importlib.metadata.version('casework')}\n"


def test_a_refusal_exits_1_with_one_error_line_and_nothing_on_stdout(initialised: str) -> None:
    line = one_error_line(run("--db", initialised, "case", "show", MISSING), rc=1)
    assert f"no case '{MISSING}'" in line, line
    assert "casework case list" in line, line  # the CLI's wording: what to do next


@pytest.mark.parametrize(
    "args",
    [("case", "frobnicate"), ("case", "show"), ("case", "list", "--limit", "many"), ("--no-such-option",)],
    ids=["unknown-command", "missing-argument", "bad-value", "unknown-option"],
)
def test_a_usage_error_exits_2_with_nothing_on_stdout(initialised: str, args: tuple[str, ...]) -> None:
    done = run("--db", initialised, *args)
    assert done.rc == 2, done
    assert done.out == "", done
    assert done.err.strip().splitlines()[-1].lower().startswith("error:"), done.err
    assert "Traceback" not in done.err


@pytest.mark.parametrize("kind", ["empty-file", "no-file"])
def test_an_uninitialised_database_exits_2_saying_run_init(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "fresh.db"
    if kind == "empty-file":
        path.touch()
    url = f"sqlite:///{path}"
    line = one_error_line(run("--db", url, "case", "list"), rc=2)
    assert f"the database {url} has no casework schema" in line, line
    assert "run 'casework init' first" in line, line


@pytest.mark.parametrize(
    "args",
    [("--help",), ("case", "list", "--json"), ("workflow", "validate", "workflows/poverty_archive.yaml")],
    ids=["help", "json", "table"],
)
def test_output_into_a_closed_pipe_prints_no_traceback(initialised: str, args: tuple[str, ...]) -> None:
    """``casework ... | head -0``: the reader has gone before the first write."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "casework", "--db", initialised, *args],
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            timeout=120,
        )
    finally:
        os.close(write_end)
    # no "Traceback", no "Exception ignored ... BrokenPipeError": nothing at all on stderr
    assert proc.stderr == "", proc.stderr
    # 120 is the interpreter failing to flush stdout at exit; a signal would be negative
    assert proc.returncode in (0, 1), proc.returncode


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _blocked_reading(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii") as wchan:
            return "pipe_read" in wchan.read()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc to see the command wait")
def test_ctrl_c_while_a_command_waits_for_input_is_one_line_not_a_traceback(initialised: str) -> None:
    """``casework case fire-many ... --refs-file -`` waits for refs on stdin; the user presses Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "casework", "--db", initialised, "case", "fire-many", "submit"]
        + ["--refs-file", "-", "--as", "lin"],
        cwd=ROOT,
        env=_env(),
        # as at a terminal: a test run started in the background inherits Ctrl-C ignored
        preexec_fn=_default_sigint,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        deadline = time.monotonic() + 30
        while not _blocked_reading(proc.pid):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the command never waited for its input"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        # stdin stays open until the command has ended: it must stop for the Ctrl-C, not for an end of input
        proc.wait(timeout=30)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, (proc.returncode, out, err)
    assert out == "" and "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines() == ["error: aborted"], err
