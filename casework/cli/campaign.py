"""``casework campaign``: the yearly campaigns whose date a supervisor sets (a workflow's ``campaign:``)."""

from __future__ import annotations

import datetime as dt

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, json_option
from casework.cli.output import emit_json, out, plain_table

__all__ = ["campaign"]


@click.group()
def campaign() -> None:
    """Yearly campaigns on a date set each year (e.g. 春节送温暖 before the Spring Festival)."""


@campaign.command("set")
@click.argument("workflow_name", metavar="WORKFLOW")
@click.option(
    "--on", "on", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The campaign's date, e.g. 2027-01-25."
)
@click.option(
    "--year",
    type=click.IntRange(2000, 2200),
    default=None,
    help="The programme year (default: the date's year); the date falls from 1 November of the year before "
    "to 31 December of it.",
)
@actor_option("Who sets it: a holder of the campaign's set_by role covering every county (*).")
@json_option("Print the campaign as JSON.")
@pass_app
def campaign_set(
    app: AppContext, workflow_name: str, on: dt.datetime, year: int | None, actor: str, as_json: bool
) -> None:
    """Set the date of WORKFLOW's campaign of a programme year (replacing a date set before, until it runs).

    The year is the date's unless --year says otherwise: 送温暖 for a late-January Spring Festival may
    start in December (--on 2026-12-20 --year 2027); its cases get that year.

    On that day (from 00:00, in the workflow's timezone) the scheduler opens one case for every case
    the campaign reaches, once; after downtime, on its first pass after the date.
    """
    view, replaced = app.service().set_campaign(workflow_name, on.date(), actor, year)
    if as_json:
        emit_json({**view.to_json(), "replaced": replaced.to_json() if replaced else None})
        return
    head = f"{view.label} ({view.workflow}) {view.year}: set for {view.date} by {view.set_by}"
    if replaced is not None and replaced.date != view.date:
        head += f", replacing {replaced.date} (set by {replaced.set_by})"
    elif replaced is not None:
        head += " (the same date as before)"
    click.echo(head)
    click.echo(f"it opens one {view.workflow} case for each {view.source} case in {view.state} on that day")


@campaign.command("cancel")
@click.argument("workflow_name", metavar="WORKFLOW")
@click.option(
    "--year", required=True, type=click.IntRange(2000, 2200), help="The programme year whose campaign to cancel."
)
@actor_option("Who cancels it: a holder of the campaign's set_by role covering every county (*).")
@json_option("Print the campaign as JSON.")
@pass_app
def campaign_cancel(app: AppContext, workflow_name: str, year: int, actor: str, as_json: bool) -> None:
    """Cancel WORKFLOW's campaign of YEAR before it runs (a new date can be set afterwards)."""
    view = app.service().cancel_campaign(workflow_name, year, actor)
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"{view.label} ({view.workflow}) {view.year}: cancelled by {view.cancelled_by}; nothing will run")


@campaign.command("run")
@click.argument("workflow_name", metavar="WORKFLOW")
@actor_option("Who runs it: a holder of the campaign's set_by role covering every county (*).")
@json_option("Print the campaign as JSON.")
@pass_app
def campaign_run(app: AppContext, workflow_name: str, actor: str, as_json: bool) -> None:
    """Run WORKFLOW's pending campaign now, if its date is today or past (not waiting for the scheduler)."""
    view = app.service().run_campaign(workflow_name, actor)
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(view.outcome or "ran")


@campaign.command("list")
@json_option("Print the campaigns as JSON.")
@pass_app
def campaign_list(app: AppContext, as_json: bool) -> None:
    """Each workflow's campaign: the date of each year, who set it, and whether it ran (with what it opened)."""
    views = app.service().campaigns()
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table = plain_table("workflow", "campaign", "year", "date", "set by", "status", "outcome")
    for v in views:
        set_by = f"{v.set_by} ({v.to_json()['set_at']})" if v.set_by else ""
        status = v.status
        if v.status == "cancelled" and v.cancelled_by:
            status += f" by {v.cancelled_by}"
        elif v.status == "ran":
            status += f" {v.to_json()['ran_at']}"
        table.add_row(v.workflow, v.label, str(v.year or ""), str(v.date or ""), set_by, status, v.outcome or "")
    out.print(table)
    out.print(f"{len(views)} campaign{'s' if len(views) != 1 else ''}")
