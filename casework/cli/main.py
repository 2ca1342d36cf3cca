"""Running the command: exit codes, and every error as one line a person can act on.

Exit codes: 0 ok; 1 refused by the rules (nothing changed); 2 a usage error,
an unusable input or workflow file (or an argument that is not UTF-8 text);
3 the database could not be used (unreachable, refused, not a database,
corrupt) — the message names the file, or the URL without its password. A
refusal is one line on stderr, ``error: ...``, in the CLI's words
(:mod:`casework.cli.wording`); with ``--json`` its code, facts and message are
also printed on stdout as ``{"error": {...}}``. No traceback reaches a user
for an expected error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from casework.cli.app import cli
from casework.cli.context import AppContext
from casework.cli.output import emit_json, err, fail_line, out
from casework.cli.wording import word
from engine.errors import CaseworkError, DefinitionError, StorageError

__all__ = ["EXIT_DATABASE", "main", "run"]

#: the exit code of a database that could not be used (see :class:`engine.errors.StorageError`)
EXIT_DATABASE = StorageError.exit_code


def run(argv: list[str] | None = None) -> int:
    """Run ``casework`` with ``argv`` (default: the process's arguments); return the exit code."""
    app = AppContext()
    out.forget()
    err.forget()
    args = sys.argv[1:] if argv is None else list(argv)
    undecodable = _not_utf8(args)
    if undecodable:
        # refused here, before anything can store or hash the text (an audit hash needs real UTF-8)
        fail_line(undecodable)
        return 2
    try:
        result = cli.main(args=args, prog_name="casework", standalone_mode=False, obj=app)
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
        storage = _storage_error(exc, app)
        if storage is None:
            raise
        fail_line(storage.message)
        if app.json:
            emit_json({"error": storage.to_json()})
        return storage.exit_code
    finally:
        app.close()


def _not_utf8(args: list[str]) -> str | None:
    """The one-line error for the first argument that is not UTF-8 text (a GBK terminal), or None.

    Python hands such bytes over as lone surrogates; they can be neither
    stored nor hashed, so the argument is named and nothing is done.
    """
    for index, arg in enumerate(args):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            if arg.startswith("--") and "=" in arg:
                name = arg.split("=", 1)[0]
            elif index > 0 and args[index - 1].startswith("-"):
                name = f"the value of {args[index - 1]}"
            else:
                name = f"argument {index + 1}"
            # surrogateescape gave byte B as U+DC00+B; any other lone surrogate is shown as itself
            code = ord(arg[exc.start])
            byte = code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else code
            return (
                f"{name} is not UTF-8 text (byte 0x{byte:02X} at character {exc.start + 1}); "
                "the terminal sends another encoding (GBK?): set it to UTF-8 (e.g. LANG=zh_CN.UTF-8) and type it again"
            )
    return None


def _storage_error(exc: Exception, app: AppContext) -> StorageError | None:
    """The database's own failure (unreachable server, a file that is not a database …) as a StorageError, or None.

    Errors that mean a bug (an integrity or programming error) are not
    storage failures: they are left to surface as they are.
    """
    from sqlalchemy.exc import DatabaseError, DataError, IntegrityError, InterfaceError, ProgrammingError

    if not isinstance(exc, (DatabaseError, InterfaceError)) or isinstance(
        exc, (IntegrityError, ProgrammingError, DataError)
    ):
        return None
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    detail = lines[0] if lines else "the database refused"
    from sqlalchemy.engine import make_url

    url = make_url(app.url)
    if url.get_backend_name() == "sqlite":
        where = str(Path(url.database).resolve()) if url.database and url.database != ":memory:" else ":memory:"
        lowered = detail.lower()
        if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
            message = (
                f"the database file {where} is not a SQLite database or is corrupt ({detail}); "
                "restore it from a backup, or give the right file with --db"
            )
        elif "unable to open" in lowered:
            message = (
                f"the database file {where} cannot be opened ({detail}); check that its folder exists and is writable"
            )
        else:
            message = f"the database file {where} could not be used: {detail}"
    else:
        where = app.safe_url()
        message = f"the database {where} could not be used: {detail}"
    return StorageError(message, database=where, detail=detail)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``casework`` command."""
    sys.exit(run(argv))
