"""``casework case``: open, edit, advance and inspect cases (one at a time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, case_data, data_file_option, json_option, parse_sets, set_option
from casework.cli.output import Applicants, deadline_cell, emit_json, out, plain_table, short, visible

if TYPE_CHECKING:
    from engine import CaseView, Casework

__all__ = ["case", "case_table"]


@click.group()
def case() -> None:
    """Open, edit, advance and inspect cases."""


@case.command("new")
@click.argument("workflow_name", metavar="WORKFLOW")
@actor_option()
@set_option
@data_file_option
@json_option("Print the new case as JSON.")
@pass_app
def case_new(
    app: AppContext, workflow_name: str, actor: str, sets: tuple[str, ...], data_file: str | None, as_json: bool
) -> None:
    """Open a case; prints its reference."""
    view = app.service().create_case(workflow_name, actor, case_data(sets, data_file))
    if as_json:
        emit_json(view.to_json())
    else:
        click.echo(view.ref)


@case.command("update")
@click.argument("ref")
@actor_option()
@set_option
@data_file_option
@click.option("--expect-version", type=int, help="Refuse if the case is no longer at this version.")
@json_option("Print the case as JSON.")
@pass_app
def case_update(
    app: AppContext,
    ref: str,
    actor: str,
    sets: tuple[str, ...],
    data_file: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Edit a case's data (audited, old → new)."""
    data = case_data(sets, data_file)
    if not data:
        raise click.UsageError("nothing to change: give --set FIELD=VALUE or --data-file")
    svc = app.service()
    before = svc.get_case(ref).version
    view = svc.update_case(ref, actor, data, expected_version=expect_version)
    if as_json:
        emit_json(view.to_json())
    elif view.version == before:
        click.echo(f"{view.ref}: no change (values already as given)")
    else:
        click.echo(f"{view.ref}: updated (version {view.version})")


@case.command("fire")
@click.argument("ref")
@click.argument("trigger")
@actor_option()
@click.option("--comment", help="Why (required by some steps).")
@set_option
@click.option("--expect-version", type=int, help="Refuse if the case is no longer at this version.")
@json_option("Print the case after the step as JSON.")
@pass_app
def case_fire(
    app: AppContext,
    ref: str,
    trigger: str,
    actor: str,
    comment: str | None,
    sets: tuple[str, ...],
    expect_version: int | None,
    as_json: bool,
) -> None:
    """Take a step (e.g. submit) on a case."""
    view = app.service().fire(
        ref, trigger, actor, comment=comment, data=parse_sets(sets), expected_version=expect_version
    )
    if as_json:
        emit_json(view.to_json())
    else:
        click.echo(f"{view.ref}: {trigger} → {view.state} ({view.state_label})")


@case.command("show")
@click.argument("ref")
@actor_option("Show as this user, with the steps they may take now.", required=False)
@json_option()
@pass_app
def case_show(app: AppContext, ref: str, actor: str | None, as_json: bool) -> None:
    """Show a case: state, full data and (with --as) what that user may do now; recorded in the access log."""
    svc = app.service()
    view = svc.get_case(ref, actor)
    objections = svc.objections(ref)
    # the full personal data is about to be shown: the access log holds that first
    svc.log_access("read_case", {"refs": [view.ref]}, actor=actor)
    if as_json:
        emit_json({**view.to_json(), "objections": [o.to_json() for o in objections]})
        return
    from rich.markup import escape

    wf = svc.workflow(view.workflow, view.workflow_version)
    doc = view.to_json()
    out.print(f"[bold]{view.ref}[/]  {escape(wf.title)} (v{view.workflow_version})")
    out.print(f"state: {view.state} ({view.state_label}){'  (final)' if view.final else ''}", markup=False)
    out.print(f"opened by {view.created_by} at {doc['created_at']}; last change {doc['updated_at']}", markup=False)
    if view.deadline is not None or view.paused:
        overdue = "  OVERDUE" if view.overdue else ""
        out.print(f"deadline: {deadline_cell(view)}{overdue}", markup=False)
    table = plain_table("field", "label", "value")
    for f in wf.fields.values():
        value = view.data.get(f.name)
        shown = "" if value is None else ", ".join(value) if isinstance(value, list) else str(value)
        table.add_row(f.name, f.label, shown)
    out.print(table)
    if view.actions is not None:
        if view.actions:
            steps = ", ".join(
                f"{a.trigger} → {a.to}{' (comment required)' if a.comment_required else ''}" for a in view.actions
            )
            out.print(f"{actor} may now: {steps}", markup=False)
        else:
            out.print(f"{actor} has no step to take on this case now", markup=False)
    if objections:
        table = plain_table("objection", "channel", "received", "status", "text", "resolution", title="objections")
        for o in objections:
            received = o.to_json()["received_at"]
            resolution = f"{o.resolved_by}: {o.comment or ''}" if o.resolved_by else ""
            table.add_row(f"#{o.id}", o.channel, f"{received} by {o.received_by}", o.status, o.text, resolution)
        out.print(table)


@case.command("list")
@click.option("--workflow", "workflow_name", help="Only this workflow.")
@click.option("--state", help="Only cases in this state.")
@actor_option("Only the cases this user may see.", required=False)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--overdue", is_flag=True, help="Only cases past their deadline (with --as: waiting for that user).")
@json_option()
@pass_app
def case_list(
    app: AppContext,
    workflow_name: str | None,
    state: str | None,
    actor: str | None,
    limit: int | None,
    overdue: bool,
    as_json: bool,
) -> None:
    """List cases (with --overdue --as USER: a to-do list); the table masks names, --json shows full data (logged)."""
    views = app.service().list_cases(workflow=workflow_name, state=state, actor=actor, limit=limit, overdue=overdue)
    if as_json:
        filters = {"workflow": workflow_name, "state": state, "limit": limit, "overdue": overdue or None}
        detail = {"filters": {k: v for k, v in filters.items() if v is not None}, "refs": [v.ref for v in views]}
        app.service().log_access("list_cases", detail, actor=actor)
        emit_json([v.to_json() for v in views])
        return
    case_table(app.service(), views)


def case_table(svc: Casework, views: list[CaseView]) -> None:
    """Cases as a table; the applicant's name masked (a list is a screen others may glance at)."""
    applicant = Applicants(svc)
    table = plain_table("ref", "workflow", "state", "scope", "applicant", "deadline", "updated")
    for v in views:
        table.add_row(
            v.ref,
            f"{v.workflow} v{v.workflow_version}",
            f"{v.state} ({v.state_label})",
            v.scope or "",
            applicant(v),
            deadline_cell(v),
            str(v.to_json()["updated_at"]),
        )
    out.print(table)
    out.print(f"{len(views)} case{'s' if len(views) != 1 else ''}")


@case.command("history")
@click.argument("ref")
@actor_option("Only if this user may see the case.", required=False)
@json_option()
@pass_app
def case_history(app: AppContext, ref: str, actor: str | None, as_json: bool) -> None:
    """Show the case's audit trail (personal data masked)."""
    from rich.markup import escape

    records = app.service().history(ref, actor)
    if as_json:
        emit_json([r.to_json() for r in records])
        return
    for r in records:
        at = r.to_json()["at"]
        what = r.action if not r.trigger else f"{r.trigger}: {r.from_state} → {r.to_state}"
        role = f" ({r.role})" if r.role else ""
        out.print(f"[bold]{r.seq:>3}[/]  {at}  {escape(visible(r.actor))}{role}  {escape(visible(what))}")
        # each stored text on its own line, made visible: a line break in a comment or a value
        # shows as \n and cannot print what looks like another event
        if r.comment:
            out.print(f"       comment: {visible(r.comment)}", markup=False)
        for k, (a, b) in r.changes.items():
            out.print(f"       {k}: {short(a)} → {short(b)}", markup=False)


@case.command("pause")
@click.argument("ref")
@actor_option()
@click.option("--reason", required=True, help="What is missing (补正).")
@json_option("Print the time left as JSON.")
@pass_app
def case_pause(app: AppContext, ref: str, actor: str, reason: str, as_json: bool) -> None:
    """Stop the deadline clock while materials are missing (补正)."""
    left = app.service().pause(ref, actor, reason)
    if as_json:
        emit_json({"ref": ref, "left": left})
        return
    click.echo(f"{ref}: deadline paused with {left['amount']} {left['unit'].replace('_', ' ')} left")


@case.command("resume")
@click.argument("ref")
@actor_option()
@click.option("--comment", help="What arrived.")
@json_option("Print the case after resuming as JSON.")
@pass_app
def case_resume(app: AppContext, ref: str, actor: str, comment: str | None, as_json: bool) -> None:
    """Restart the deadline clock with the time that was left."""
    svc = app.service()
    svc.resume(ref, actor, comment)
    view = svc.get_case(ref)
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"{ref}: resumed; new deadline {deadline_cell(view)}")
