"""``casework timers``: reminders, escalations and automatic steps waiting to fire."""

from __future__ import annotations

import datetime as dt

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table

__all__ = ["timers"]


@click.group()
def timers() -> None:
    """Reminders, escalations and automatic steps waiting to fire."""


@timers.command("list")
@click.option(
    "--due-before",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Only timers due before this time (Asia/Shanghai), e.g. 2026-12-31 or 2026-12-31T17:00.",
)
@click.option(
    "--status",
    type=click.Choice(["pending", "fired", "cancelled", "discarded", "all"]),
    default="pending",
    show_default=True,
    help="Only timers in this state.",
)
@json_option()
@pass_app
def timers_list(app: AppContext, due_before: dt.datetime | None, status: str, as_json: bool) -> None:
    """List timers, soonest first."""
    from zoneinfo import ZoneInfo

    when = due_before.replace(tzinfo=ZoneInfo("Asia/Shanghai")) if due_before else None
    views = app.service().timers(when, None if status == "all" else status)
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table = plain_table("id", "case", "kind", "state", "due", "status", "detail")
    for v in views:
        detail = v.payload.get("fire") or v.payload.get("to") or ""
        if v.held_at:
            detail += " (held)"
        due = str(v.to_json()["due_at"]) + (" (provisional)" if v.provisional else "")
        table.add_row(str(v.id), v.case_ref, v.kind, v.state, due, v.status, detail)
    out.print(table)
    out.print(f"{len(views)} timer{'s' if len(views) != 1 else ''}")


@timers.command("run-due")
@click.option("--once", is_flag=True, help="One pass (default: repeat until nothing is due).")
@pass_app
def timers_run_due(app: AppContext, once: bool) -> None:
    """Fire the timers that are due now, then run the workflows' scheduled jobs that are due (digest, campaigns)."""
    svc = app.service()
    total = {"fired": 0, "held": 0, "discarded": 0, "failed": 0}
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
