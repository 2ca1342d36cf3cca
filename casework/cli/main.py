"""Running the command: exit codes, and every error as one line a person can act on.

Exit codes: 0 ok; 1 refused by the rules (nothing changed); 2 a usage error,
an unusable input or workflow file, or a database problem. A refusal is one
line on stderr, ``error: ...``, in the CLI's words (:mod:`casework.cli.wording`);
with ``--json`` its code, facts and message are also printed on stdout as
``{"error": {...}}``. No traceback reaches a user for an expected error.
"""

from __future__ import annotations

import sys

import click

from casework.cli.app import cli
from casework.cli.context import AppContext
from casework.cli.output import emit_json, err, fail_line, out
from casework.cli.wording import word
from engine.errors import CaseworkError, DefinitionError

__all__ = ["main", "run"]


def run(argv: list[str] | None = None) -> int:
    """Run ``casework`` with ``argv`` (default: the process's arguments); return the exit code."""
    app = AppContext()
    out.forget()
    err.forget()
    try:
        result = cli.main(args=argv, prog_name="casework", standalone_mode=False, obj=app)
        return result if isinstance(result, int) else 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        fail_line("aborted")
        return 1
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "casework"
        fail_line(f"{exc.format_message()} (see '{command} --help')")
        return exc.exit_code
    except click.ClickException as exc:
        fail_line(exc.format_message())
        return exc.exit_code
    except DefinitionError as exc:
        for p in exc.problems:
            click.echo(str(p), err=True)
        if app.json:
            emit_json({"error": exc.to_json()})
        return exc.exit_code
    except CaseworkError as exc:
        fail_line(word(exc.code, exc.message, exc.facts))
        if app.json:
            emit_json({"error": exc.to_json()})
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        fail_line(f"database problem: {problem}")
        return 2
    finally:
        app.close()


def _database_problem(exc: Exception) -> str | None:
    """The first line of a database's own error (unreachable server, unreadable file …), or None."""
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, OperationalError):
        return str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "the database refused"
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``casework`` command."""
    sys.exit(run(argv))
