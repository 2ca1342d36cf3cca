"""``casework case``: open, edit, advance and inspect cases (one at a time)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import (
    actor_option,
    case_data,
    data_file_option,
    json_option,
    output_file,
    parse_sets,
    set_option,
)
from casework.cli.output import Applicants, deadline_cell, emit_json, out, plain_table, short, visible

if TYPE_CHECKING:
    from casework.export import Column
    from engine import CaseView, Casework
    from engine.sheets import Kind

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


#: what ``case list --format`` writes (casework.export.FORMATS; not imported here: the CLI starts without the engine)
LIST_FORMATS = ("table", "json", "csv", "xlsx")


@case.command("list")
@click.option("--workflow", "workflow_name", help="Only this workflow (an unknown name is an error).")
@click.option("--state", help="Only cases in this state.")
@actor_option("Only the cases this user may see.", required=False)
@click.option("--county", "counties", multiple=True, metavar="COUNTY", help="Only cases of this county (repeatable).")
@click.option("--household-type", metavar="TYPE", help="Only cases of this household type (困难类型), e.g. 低保户.")
@click.option(
    "--search",
    metavar="TEXT",
    help="Only cases whose reference or applicant's name holds TEXT (ignoring case; with --as: their cases); logged.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--overdue", is_flag=True, help="Only cases past their deadline (with --as: waiting for that user).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(LIST_FORMATS),
    help="table (the default; names masked), json (as --json), csv, or xlsx (needs -o); all logged but a table.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write json, csv or xlsx to this file.")
@json_option("Print JSON (the same as --format json; a refusal too).")
@pass_app
def case_list(
    app: AppContext,
    workflow_name: str | None,
    state: str | None,
    actor: str | None,
    counties: tuple[str, ...],
    household_type: str | None,
    search: str | None,
    limit: int | None,
    overdue: bool,
    fmt: str | None,
    output: str | None,
    as_json: bool,
) -> None:
    """List cases (with --overdue --as USER: a to-do list); the table masks names, the rest shows full data (logged).

    --search matches a reference in whole or part (ZZ-2026-000041, zz-2026,
    000041) or the applicant's name; it finds only cases the user of --as may
    see (their counties), so a name from another county finds nothing.
    --format csv/xlsx -o FILE exports the list: reference, workflow, state,
    county, deadline and every field, the values --json shows; a file is
    written whole or not at all, and every export is in the access log.
    """

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} disagree: give one of them")
    fmt = "json" if as_json else fmt or "table"
    app.json = fmt == "json"
    target = output_file(output, fmt)
    svc = app.service()
    filters = {
        "workflow": workflow_name,
        "state": state,
        "county": list(counties) or None,
        "household_type": household_type,
        "search": _logged_search(search),
        "limit": limit,
        "overdue": overdue or None,
    }
    logged = {k: v for k, v in filters.items() if v is not None}
    wanted: dict[str, Any] = {
        "workflow": workflow_name,
        "state": state,
        "actor": actor,
        "limit": limit,
        "overdue": overdue,
        "counties": counties,
        "household_type": household_type,
        "search": search,
    }
    if fmt in ("csv", "xlsx"):
        _export(app, svc.iter_cases(**wanted), fmt, target, actor, logged, workflow_name)
        return
    views = svc.list_cases(**wanted)
    if fmt == "json":
        text = json.dumps([v.to_json() for v in views], ensure_ascii=False, indent=2, default=str)

        def log() -> None:
            # the full personal data is about to be shown: the access log holds that first
            svc.log_access("list_cases", {"filters": logged, "refs": [v.ref for v in views]}, actor=actor)

        if target is None:
            log()
            click.echo(text)
        else:
            _write_text(target, text + "\n", log)
            click.echo(f"wrote {target} ({_count(len(views))})")
        return
    if search is not None:
        # a search by name is a look-up of personal data even when the table masks it: logged too
        svc.log_access("search_cases", {"filters": logged, "refs": [v.ref for v in views]}, actor=actor)
    case_table(svc, views)


def _count(n: int) -> str:
    return f"{n} case{'s' if n != 1 else ''}"


def _logged_search(search: str | None) -> str | None:
    """The search text as the access log keeps it: an ID number typed into it masked."""
    if search is None:
        return None
    from engine.masking import mask_id_numbers

    return mask_id_numbers(search)


def _write_text(path: Path, text: str, log: Callable[[], None]) -> None:
    """Write ``text`` to ``path`` whole or not at all, calling ``log`` before it takes the path's place."""
    from casework.export import replace_into

    _writing(path, lambda: replace_into(path, lambda stream: stream.write(text), binary=False, before_publish=log))


def _writing(path: Path, write: Callable[[], object]) -> None:
    """Run ``write``; a failure of the file system is an input error naming the file (nothing is left of it)."""
    from engine import InputError

    try:
        write()
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc.strerror or exc}; nothing was written", option="output", value=str(path)
        ) from None


def _export(
    app: AppContext,
    views: Iterator[CaseView],
    fmt: str,
    target: Path | None,
    actor: str | None,
    filters: dict[str, Any],
    workflow_name: str | None,
) -> None:
    """Write the listed cases as CSV or XLSX, one row at a time; logged before the file is there (or printed)."""
    from casework.export import Sheet, write_sheet

    svc = app.service()
    columns, kinds = _export_columns(svc, workflow_name)
    refs: list[str] = []

    def rows() -> Iterator[dict[str, Any]]:
        for view in views:
            refs.append(view.ref)
            yield _export_row(view, kinds)

    def log() -> None:
        detail = {"filters": filters, "format": fmt, "refs": refs}
        if target is not None:
            detail["file"] = str(target.resolve())
        svc.log_access("export_cases", detail, actor=actor)

    sheet = Sheet("cases", columns, ())
    if target is None:
        text = write_sheet(sheet, fmt, None, rows=rows(), before_publish=log)
        click.echo(text, nl=False)
        return
    _writing(target, lambda: write_sheet(sheet, fmt, target, rows=rows(), before_publish=log))
    click.echo(f"wrote {target} ({_count(len(refs))})")


#: the columns every export starts with (key, heading); then one per field of the listed workflows
_EXPORT_HEAD = (("ref", "编号"), ("workflow", "业务"), ("state", "状态"), ("county", "县区"), ("deadline", "办理期限"))


def _export_columns(svc: Casework, workflow_name: str | None) -> tuple[tuple[Column, ...], dict[str, str]]:
    """The export's columns: the fixed ones, then every field of every loaded version listed (not the county again).

    Also each field's kind, by (workflow, version, field) type: a decimal
    field's text becomes a number in the file.
    """
    from casework.export import Column

    columns = [Column(key, title) for key, title in _EXPORT_HEAD]
    kinds: dict[str, str] = {}
    seen = {key for key, _ in _EXPORT_HEAD}
    infos = [i for i in svc.workflows() if workflow_name is None or i.name == workflow_name]
    definitions = [svc.workflow(i.name, i.version) for i in sorted(infos, key=lambda i: (i.name, -i.version))]
    scope_fields = {wf.scope_field for wf in definitions if wf.scope_field}
    for wf in definitions:
        for f in wf.fields.values():
            kinds.setdefault(f"{wf.name}:{wf.version}:{f.name}", f.type)
            if f.name in scope_fields or f"data.{f.name}" in seen:
                continue
            seen.add(f"data.{f.name}")
            kind: Kind = "decimal" if f.type == "decimal" else "integer" if f.type == "integer" else "text"
            columns.append(Column(f"data.{f.name}", f.label, kind))
    return tuple(columns), kinds


def _export_row(view: CaseView, kinds: dict[str, str]) -> dict[str, Any]:
    """One case as an export row: the values ``--json`` shows, a decimal field's text as a number."""
    doc = view.to_json()
    row: dict[str, Any] = {
        "ref": view.ref,
        "workflow": view.workflow,
        "state": view.state_label,
        "county": view.scope,
        "deadline": doc["deadline"],
    }
    for name, value in doc["data"].items():
        if kinds.get(f"{view.workflow}:{view.workflow_version}:{name}") == "decimal" and isinstance(value, str):
            with contextlib.suppress(ArithmeticError):
                number = Decimal(value)
                value = number if number.is_finite() else value
        row[f"data.{name}"] = value
    return row


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
