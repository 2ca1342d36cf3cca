"""``casework report NAME``: the office's reports — archives, exit-rate, programmes, petitions, overdue.

Each report is counted in the database (:mod:`engine.reports`) and shown as
a table with its definitions underneath, or written as JSON, CSV or XLSX.
Everything a report is told is checked before anything is counted or
written: a refused report writes no file.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, output_file
from casework.cli.output import out, plain_table

if TYPE_CHECKING:
    from rich.console import Console

    from engine.sheets import Sheet

__all__ = ["report", "show_sheet"]

#: casework.export.FORMATS (not imported here: the CLI starts without the engine)
REPORT_FORMATS = ("table", "json", "csv", "xlsx")


@click.command("report")
@click.argument("name", metavar="NAME")
@click.option(
    "--year", type=int, metavar="YYYY", help="The year (exit-rate: required; programmes, petitions: only it)."
)
@click.option("--county", metavar="COUNTY", help="Only this county, e.g. 芗城区.")
@click.option("--as-of", "as_of", metavar="DATE", help="archives only: as they stood at the end of DATE (YYYY-MM-DD).")
@actor_option("Count only the cases in this user's counties.", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default="table",
    show_default=True,
    help="table on the screen, or json, csv, xlsx (xlsx needs -o).",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write json, csv or xlsx to this file.")
@pass_app
def report(
    app: AppContext,
    name: str,
    year: int | None,
    county: str | None,
    as_of: str | None,
    actor: str | None,
    fmt: str,
    output: str | None,
) -> None:
    """Run a report: archives, exit-rate, programmes, petitions or overdue.

    \b
    archives    archives per state, county and household type (--as-of DATE: as they stood then)
    exit-rate   per county: archives on file on 1 January, of them exited in the year, the rate (30 % target)
    programmes  per programme, year and county: cases, people, amounts granted and paid
    petitions   per county: registered, closed, open, overdue, the closure rate (100 % target)
    overdue     per county and step: cases past their deadline, the oldest first

    The definitions are in docs/reports.md. Example: casework report exit-rate --year 2026 --format xlsx -o 2026.xlsx
    """
    from engine import InputError
    from engine.reports import check_report

    check_report(name)  # before --format json takes over how a refusal is printed
    app.json = fmt == "json"
    target = output_file(output, fmt)
    when = _as_of(as_of) if as_of is not None else None
    sheet = app.service().report(name, year=year, county=county, as_of=when, actor=actor)
    if fmt == "table":
        show_sheet(sheet)
        return
    from casework.export import write_sheet

    if target is None:
        click.echo(write_sheet(sheet, fmt, None), nl=False)
        return
    try:
        write_sheet(sheet, fmt, target)
    except OSError as exc:
        raise InputError(
            f"cannot write {target}: {exc.strerror or exc}; nothing was written", option="output", value=str(target)
        ) from None
    click.echo(f"wrote {target} ({name}: {len(sheet.rows)} row{'s' if len(sheet.rows) != 1 else ''})")


def _as_of(text: str) -> dt.date | dt.datetime:
    """``--as-of``: a date (its end is meant) or an ISO date and time with its offset."""
    from engine import InputError

    value = text.strip()
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InputError(
            f"--as-of {text!r} is not a date: give YYYY-MM-DD (the end of that day), e.g. 2025-12-31, "
            "or a time with its offset, e.g. 2026-01-01T08:00+08:00",
            option="as_of",
            value=text,
        )
    return at


def show_sheet(sheet: Sheet, console: Console | None = None) -> None:
    """Print the sheet as a terminal table (on ``console``, the CLI's stdout by default), its notes underneath.

    Numbers are never cut short on a narrow screen.
    """
    shown = console if console is not None else out
    table = plain_table(*(c.title for c in sheet.columns), title=sheet.title)
    cells = [[c.shown(row.get(c.key)) for c in sheet.columns] for row in sheet.rows]
    for j, (c, column) in enumerate(zip(sheet.columns, table.columns, strict=True)):
        column.overflow = "fold"
        if c.kind != "text":
            column.justify = "right"
            column.min_width = max((len(line[j]) for line in cells), default=1)
    for line in cells:
        table.add_row(*line)
    shown.print(table)
    for note in sheet.notes:
        shown.print(f"注：{note}", markup=False)
