"""CLI commands for time: the working-day calendar, timers, and the scheduler service."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import sys
import threading
from typing import Any

import click

from casework.cli import PlainTable, _Context, _json, out, pass_ctx
from engine.calendar import WorkingCalendar

__all__ = ["register"]

logger = logging.getLogger("casework.scheduler")


# ---------------------------------------------------------------------- calendar


@click.group()
def calendar() -> None:
    """The working-day calendar deadlines are counted on."""


@calendar.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def calendar_check(ctx: _Context, as_json: bool) -> None:
    """List the years whose calendar is provisional (no official holiday schedule yet)."""
    cal = WorkingCalendar.load()
    this_year = dt.date.today().year
    years = list(range(this_year - 1, this_year + 3))
    provisional = cal.provisional_years(years)
    waiting = ctx.service().provisional_refs()
    if as_json:
        _json(
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
@pass_ctx
def calendar_show(ctx: _Context, month: str) -> None:
    """Print a month with its working days marked."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        dt.date(year, mon, 1)
    except ValueError:
        raise click.BadParameter(f"{month!r} should be YYYY-MM, e.g. 2026-10", param_hint="MONTH") from None
    cal = WorkingCalendar.load()
    days = cal.month(year, mon)
    title = f"{year}-{mon:02d}" + ("  (provisional)" if cal.is_provisional(year) else "")
    table = PlainTable("一 Mon", "二 Tue", "三 Wed", "四 Thu", "五 Fri", "六 Sat", "日 Sun", title=title)
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
@pass_ctx
def calendar_reload(ctx: _Context) -> None:
    """Re-read the calendar file and recompute every provisional deadline (audited on each case)."""
    svc = ctx.service()
    svc.calendar = WorkingCalendar.load()
    changed = svc.recompute_provisional()
    for ref, old, new in changed:
        click.echo(f"{ref}: deadline {old} → {new}")
    click.echo(
        f"calendar {svc.calendar.fingerprint}: {len(changed)} deadline{'s' if len(changed) != 1 else ''} changed"
    )


# ------------------------------------------------------------------------ timers


@click.group()
def timers() -> None:
    """Reminders, escalations and automatic steps waiting to fire."""


@timers.command("list")
@click.option("--due-before", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]))
@click.option("--status", type=click.Choice(["pending", "fired", "cancelled", "discarded", "all"]), default="pending")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def timers_list(ctx: _Context, due_before: dt.datetime | None, status: str, as_json: bool) -> None:
    """List timers, soonest first (times without an offset are Asia/Shanghai)."""
    from zoneinfo import ZoneInfo

    when = due_before.replace(tzinfo=ZoneInfo("Asia/Shanghai")) if due_before else None
    views = ctx.service().timers(when, None if status == "all" else status)
    if as_json:
        _json([v.to_json() for v in views])
        return
    table = PlainTable("id", "case", "kind", "state", "due", "status", "detail")
    for v in views:
        detail = v.payload.get("fire") or v.payload.get("to") or ""
        if v.held_at:
            detail += " (held)"
        due = v.to_json()["due_at"] + (" (provisional)" if v.provisional else "")
        table.add_row(str(v.id), v.case_ref, v.kind, v.state, due, v.status, detail)
    out.print(table)
    out.print(f"{len(views)} timer{'s' if len(views) != 1 else ''}")


@timers.command("run-due")
@click.option("--once", is_flag=True, help="One pass (default: repeat until nothing is due).")
@pass_ctx
def timers_run_due(ctx: _Context, once: bool) -> None:
    """Fire the timers that are due now."""
    svc = ctx.service()
    total: dict[str, int] = {"fired": 0, "held": 0, "discarded": 0, "failed": 0}
    while True:
        report = svc.sweep()
        for key in total:
            total[key] += getattr(report, key)
        for error in report.errors:
            click.echo(f"warning: {error}", err=True)
        if once or not (report.fired or report.discarded):
            break
    click.echo(", ".join(f"{k} {v}" for k, v in total.items()))
    for job, due, outcome in svc.run_due_schedules():
        click.echo(f"job {job} ({due}): {outcome}")


# --------------------------------------------------------------------- scheduler


@click.command()
@click.option(
    "--interval",
    type=click.FloatRange(min=0.2),
    default=10.0,
    show_default=True,
    help="Seconds between sweeps of due timers and the outbox.",
)
@click.option("--no-relay", is_flag=True, help="Only fire timers; leave the outbox to another process.")
@pass_ctx
def scheduler(ctx: _Context, interval: float, no_relay: bool) -> None:
    """Run the clock in the foreground: fire due timers and relay the outbox, until SIGTERM or Ctrl-C.

    Any number of schedulers may run against one database: timers and outbox
    rows are claimed under row locks, so each fires once. The database is
    the truth; APScheduler only wakes the sweep (its jobs live in memory,
    never shared between processes), and a timer missed during downtime
    fires on the next sweep however late it is.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    from casework.notify_commands import _relay

    # our own progress at INFO; libraries (transitions logs every callback) only when something is wrong
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in ("casework", "engine", "notifications"):
        logging.getLogger(name).setLevel(logging.INFO)
    svc = ctx.service()
    relay = None if no_relay else _relay(ctx)

    stopping = threading.Event()

    def tick() -> None:
        report = svc.sweep(should_stop=stopping.is_set)
        svc.run_due_schedules()
        relayed: Any = relay.run_once() if relay else None
        logger.info(
            "sweep: fired %s, held %s, discarded %s, failed %s%s",
            report.fired,
            report.held,
            report.discarded,
            report.failed,
            f"; outbox: sent {relayed.sent}, retry {relayed.failed}, dead {relayed.dead}" if relayed else "",
        )

    sched = BlockingScheduler(timezone="UTC")
    # misfire_grace_time=None: a late run still runs (APScheduler 3's default of 1 s would drop it);
    # coalesce: after a pause, one catch-up run, which fires everything due anyway
    sched.add_job(
        tick,
        "interval",
        seconds=interval,
        id="sweep",
        next_run_time=dt.datetime.now(dt.UTC),
        misfire_grace_time=None,
        coalesce=True,
        max_instances=1,
    )

    def stop(signum: int, _frame: Any) -> None:
        # a signal handler does as little as possible: locks taken here could deadlock
        if stopping.is_set():
            return  # a second signal while stopping: already on its way
        stopping.set()
        threading.Thread(target=sched.shutdown, kwargs={"wait": False}, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("scheduler started: sweeping every %s s%s", interval, "" if relay else " (no outbox relay)")
    sched.start()
    # from here on we are leaving anyway: a late second signal must not kill the
    # process while the sweep in progress finishes and reports
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stopping.is_set():
        logger.info("stopped by a signal after the current timer")
    logger.info("scheduler stopped")


def register(cli: Any) -> None:
    """Add these commands to the ``casework`` group."""
    for command in (calendar, timers, scheduler):
        cli.add_command(command)
