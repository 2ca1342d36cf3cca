"""``casework calendar``: the working-day calendar deadlines are counted on."""

from __future__ import annotations

import datetime as dt

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table

__all__ = ["calendar"]


@click.group()
def calendar() -> None:
    """The working-day calendar deadlines are counted on."""


@calendar.command("check")
@json_option()
@pass_app
def calendar_check(app: AppContext, as_json: bool) -> None:
    """List the years whose calendar is provisional (no official holiday schedule yet)."""
    from engine import WorkingCalendar

    cal = WorkingCalendar.load()
    this_year = dt.date.today().year
    years = list(range(this_year - 1, this_year + 3))
    provisional = cal.provisional_years(years)
    waiting = app.service().provisional_refs()
    if as_json:
        emit_json(
            {
                "years": years,
                "provisional": provisional,
                "cases_with_provisional_deadlines": waiting,
                "fingerprint": cal.fingerprint,
            }
        )
        return
    for year in years:
        mark = "provisional: weekends and fixed-date holidays only" if year in provisional else "official"
        click.echo(f"{year}: {mark}")
    click.echo(f"{len(waiting)} case{'s' if len(waiting) != 1 else ''} with a provisional deadline")
    if provisional:
        click.echo(
            "when the State Council publishes a year's schedule, add it to workflows/calendars/cn.yaml "
            "and run 'casework calendar reload'"
        )


@calendar.command("show")
@click.argument("month", metavar="YYYY-MM")
def calendar_show(month: str) -> None:
    """Print a month with its working days marked."""
    from engine import WorkingCalendar

    try:
        year, mon = (int(p) for p in month.split("-"))
        dt.date(year, mon, 1)
    except ValueError:
        raise click.BadParameter(f"{month!r} should be YYYY-MM, e.g. 2026-10", param_hint="MONTH") from None
    cal = WorkingCalendar.load()
    days = cal.month(year, mon)
    title = f"{year}-{mon:02d}" + ("  (provisional)" if cal.is_provisional(year) else "")
    table = plain_table("一 Mon", "二 Tue", "三 Wed", "四 Thu", "五 Fri", "六 Sat", "日 Sun", title=title)
    row: list[str] = [""] * days[0][0].weekday()
    for day, working, note in days:
        row.append(f"{day.day:2d} {'●' if working else '○'}{(' ' + note) if note and note != '周末' else ''}")
        if len(row) == 7:
            table.add_row(*row)
            row = []
    if row:
        table.add_row(*(row + [""] * (7 - len(row))))
    out.print(table)
    out.print("● working day   ○ rest day", markup=False)


@calendar.command("reload")
@pass_app
def calendar_reload(app: AppContext) -> None:
    """Re-read the calendar file and recompute every provisional deadline (audited on each case)."""
    from engine import WorkingCalendar

    svc = app.service()
    svc.calendar = WorkingCalendar.load()
    changed = svc.recompute_provisional()
    for ref, old, new in changed:
        click.echo(f"{ref}: deadline {old} → {new}")
    click.echo(
        f"calendar {svc.calendar.fingerprint}: {len(changed)} deadline{'s' if len(changed) != 1 else ''} changed"
    )
