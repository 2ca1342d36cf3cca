"""The ``casework`` command: a thin shell over the engine's public API.

It parses options, calls :class:`engine.Casework`, prints tables (rich) or
JSON, and turns :class:`engine.CaseworkError` into one line on stderr and an
exit code: 0 ok, 1 refused by the rules, 2 usage error or unusable input.
No rule, query or transaction lives here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import OperationalError

from db import current_revision, head_revision, make_engine, resolve_url, upgrade
from engine import (
    CaseView,
    Casework,
    CaseworkError,
    DefinitionError,
    InputError,
    WorkflowDef,
    load_definition_file,
)

__all__ = ["main"]


class PlainTable(Table):
    """A table whose text cells are shown as written: stored data is never rich markup."""

    def add_row(self, *cells: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **kwargs)


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class _Context:
    def __init__(self, url: str | None) -> None:
        self.url = resolve_url(url)
        self._service: Casework | None = None

    def engine(self) -> Any:
        return make_engine(self.url)

    def service(self) -> Casework:
        """The engine service, after checking the schema is there and current."""
        if self._service is None:
            engine = self.engine()
            current = current_revision(engine)
            if current != head_revision():
                state = "has no casework schema" if current is None else f"is at schema {current}"
                raise InputError(f"the database {_safe_url(self.url)} {state}; run 'casework init' first")
            self._service = Casework(engine)
        return self._service


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


pass_ctx = click.make_pass_decorator(_Context)


def _json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _parse_sets(pairs: Iterable[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise click.BadParameter(f"{pair!r} should be FIELD=VALUE, e.g. household_size=4", param_hint="--set")
        key, value = pair.split("=", 1)
        data[key.strip()] = value
    return data


def _read_data_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    p = Path(path)
    try:
        if p.stat().st_size > 1_000_000:
            raise InputError(f"{path}: a data file may be at most 1 MB")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f'{path}: expected a JSON object of field: value, e.g. {{"household_size": 4}}')
    return data


def _data(sets: Iterable[str], data_file: str | None) -> dict[str, Any]:
    data = _read_data_file(data_file)
    data.update(_parse_sets(sets))
    return data


# --------------------------------------------------------------------------- root


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $CASEWORK_DB, else sqlite:///casework.db in the current directory).",
)
@click.version_option(package_name="casework")
@click.pass_context
def cli(ctx: click.Context, url: str | None) -> None:
    """casework: approve cases in fixed steps, with an audit trail."""
    ctx.obj = _Context(url)


@cli.command()
@pass_ctx
def init(ctx: _Context) -> None:
    """Create or upgrade the database schema (idempotent)."""
    before, after = upgrade(ctx.engine())
    if before == after:
        click.echo(f"schema up to date (revision {after}) at {_safe_url(ctx.url)}")
    else:
        click.echo(f"schema upgraded {before or 'empty'} → {after} at {_safe_url(ctx.url)}")


# ---------------------------------------------------------------------- workflow


@cli.group()
def workflow() -> None:
    """Validate, load and inspect workflow definitions."""


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def workflow_validate(files: tuple[str, ...]) -> None:
    """Check workflow files; print every problem as FILE:LINE:COL: message."""
    failed = 0
    for f in files:
        try:
            wf = load_definition_file(f)
        except DefinitionError as exc:
            failed += 1
            for p in exc.problems:
                click.echo(str(p), err=True)
            continue
        click.echo(f"{f}: ok ({wf.name} version {wf.version}: {len(wf.states)} states, {len(wf.transitions)} steps)")
    if failed:
        click.echo(f"{failed} of {len(files)} file{'s' if len(files) > 1 else ''} invalid", err=True)
        sys.exit(2)


@workflow.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_ctx
def workflow_load(ctx: _Context, file: str) -> None:
    """Store a workflow as an immutable version (same source again: no-op)."""
    wf = load_definition_file(file)
    info, created = ctx.service().load_workflow(wf)
    if created:
        click.echo(f"loaded {info.name} version {info.version} ({info.source_hash[:12]})")
    else:
        click.echo(f"{info.name} version {info.version} already loaded with this content; nothing changed")


@workflow.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def workflow_list(ctx: _Context, as_json: bool) -> None:
    """List loaded workflow versions."""
    infos = ctx.service().workflows()
    if as_json:
        _json([i.to_json() for i in infos])
        return
    table = PlainTable("workflow", "version", "title", "cases", "latest", "loaded", "hash")
    for i in infos:
        table.add_row(
            i.name,
            str(i.version),
            i.title,
            str(i.cases),
            "yes" if i.latest else "",
            i.to_json()["loaded_at"],
            i.source_hash[:12],
        )
    out.print(table)


@workflow.command("show")
@click.argument("name")
@click.option("--version", "version", type=int, help="A specific version (default: the latest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--diagram", is_flag=True, help="Print the state diagram as Mermaid text.")
@pass_ctx
def workflow_show(ctx: _Context, name: str, version: int | None, as_json: bool, diagram: bool) -> None:
    """Show a workflow's fields, states and steps."""
    wf = ctx.service().workflow(name, version)
    if diagram:
        click.echo(mermaid(wf))
        return
    if as_json:
        _json(wf.describe())
        return
    out.print(
        f"[bold]{wf.name}[/] version {wf.version}: {escape(wf.title)}  "
        f"(timezone {escape(wf.timezone)}, refs {wf.ref_prefix}-)"
    )
    roles = PlainTable("role", "label", title="roles")
    for r, label in wf.roles.items():
        roles.add_row(r, label)
    out.print(roles)
    fields = PlainTable("field", "type", "label", "rules", title="fields")
    for f in wf.fields.values():
        rules = [
            x
            for x in (
                "required" if f.required else "",
                f"pii:{f.pii}" if f.pii else "",
                "unique" if f.unique else "",
                "scope" if f.scope else "",
                f"min {f.min:g}" if f.min is not None else "",
                f"max {f.max:g}" if f.max is not None else "",
                "/".join(f.choices or f.items),
            )
            if x
        ]
        fields.add_row(f.name, f.type, f.label, ", ".join(rules))
    out.print(fields)
    states = PlainTable("state", "label", "kind", "deadline", title="states")
    for s in wf.states.values():
        kind = "initial" if s.initial else ("final" + (" (void)" if s.void else "")) if s.final else ""
        states.add_row(s.name, s.label, kind, str(s.deadline) if s.deadline else "")
    out.print(states)
    steps = PlainTable("step", "label", "from → to", "by", "rules", title="steps")
    for t in wf.transitions.values():
        rules = [
            x
            for x in (
                f"when {t.when.text}" if t.when else "",
                f"unless {t.unless.text}" if t.unless else "",
                f"not by whoever fired {', '.join(t.not_by)}" if t.not_by else "",
                f"needs {', '.join(t.require)}" if t.require else "",
                "comment required" if t.comment_required else "",
            )
            if x
        ]
        steps.add_row(t.name, t.label, f"{', '.join(t.sources)} → {t.dest}", ", ".join(t.by), "; ".join(rules))
    out.print(steps)


def mermaid(wf: WorkflowDef) -> str:
    """The workflow's states and steps as a Mermaid ``stateDiagram-v2``."""
    lines = ["stateDiagram-v2"]
    for s in wf.states.values():
        lines.append(f'    state "{s.label}" as {s.name}')
    lines.append(f"    [*] --> {wf.initial_state}")
    for t in wf.transitions.values():
        by = ", ".join(t.by)
        for src in t.sources:
            lines.append(f"    {src} --> {t.dest}: {t.name} ({by})")
    for s in wf.states.values():
        if s.final:
            lines.append(f"    {s.name} --> [*]")
    return "\n".join(lines)


# -------------------------------------------------------------------------- user


@cli.group()
def user() -> None:
    """Manage users, their roles and scopes."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Full name, e.g. 林晓.")
@click.option("--role", "roles", multiple=True, required=True, help="A role id from the workflow (repeatable).")
@click.option(
    "--scope", "scopes", multiple=True, required=True, help="A scope value, e.g. 芗城区; * = all (repeatable)."
)
@click.option("--email", help="Email address for notifications.")
@pass_ctx
def user_add(
    ctx: _Context, username: str, name: str, roles: tuple[str, ...], scopes: tuple[str, ...], email: str | None
) -> None:
    """Add a user."""
    svc = ctx.service()
    info = svc.add_user(username, name, list(roles), list(scopes), email=email)
    known = svc.known_roles()
    from engine.suggest import did_you_mean

    for r in info.roles:
        if known and r not in known:
            err.print(f"warning: no loaded workflow uses role {r!r}{did_you_mean(r, known)}")
    click.echo(f"added {info.username} ({info.name}): roles {', '.join(info.roles)}; scopes {', '.join(info.scopes)}")


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def user_list(ctx: _Context, as_json: bool) -> None:
    """List users."""
    users = ctx.service().users()
    if as_json:
        _json([u.to_json() for u in users])
        return
    table = PlainTable("username", "name", "roles", "scopes", "email")
    for u in users:
        table.add_row(u.username, u.name, ", ".join(u.roles), ", ".join(u.scopes), u.email or "")
    out.print(table)


# -------------------------------------------------------------------------- case


@cli.group()
def case() -> None:
    """Open, edit, advance and inspect cases."""


_set_option = click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="Set a field (repeatable).")
_as_option = click.option("--as", "actor", required=True, metavar="USER", help="Who is acting.")


@case.command("new")
@click.argument("workflow_name", metavar="WORKFLOW")
@_as_option
@_set_option
@click.option("--data-file", type=click.Path(dir_okay=False), help="JSON object of field values.")
@click.option("--json", "as_json", is_flag=True, help="Print the new case as JSON.")
@pass_ctx
def case_new(
    ctx: _Context, workflow_name: str, actor: str, sets: tuple[str, ...], data_file: str | None, as_json: bool
) -> None:
    """Open a case; prints its reference."""
    view = ctx.service().create_case(workflow_name, actor, _data(sets, data_file))
    if as_json:
        _json(view.to_json())
    else:
        click.echo(view.ref)


@case.command("update")
@click.argument("ref")
@_as_option
@_set_option
@click.option("--data-file", type=click.Path(dir_okay=False), help="JSON object of field values.")
@click.option("--expect-version", type=int, help="Refuse if the case is no longer at this version.")
@pass_ctx
def case_update(
    ctx: _Context, ref: str, actor: str, sets: tuple[str, ...], data_file: str | None, expect_version: int | None
) -> None:
    """Edit a case's data (audited, old → new)."""
    data = _data(sets, data_file)
    if not data:
        raise click.UsageError("nothing to change: give --set FIELD=VALUE or --data-file")
    svc = ctx.service()
    before = svc.get_case(ref).version
    view = svc.update_case(ref, actor, data, expected_version=expect_version)
    if view.version == before:
        click.echo(f"{view.ref}: no change (values already as given)")
    else:
        click.echo(f"{view.ref}: updated (version {view.version})")


@case.command("fire")
@click.argument("ref")
@click.argument("trigger")
@_as_option
@click.option("--comment", help="Why (required by some steps).")
@_set_option
@click.option("--expect-version", type=int, help="Refuse if the case is no longer at this version.")
@pass_ctx
def case_fire(
    ctx: _Context,
    ref: str,
    trigger: str,
    actor: str,
    comment: str | None,
    sets: tuple[str, ...],
    expect_version: int | None,
) -> None:
    """Take a step (e.g. submit) on a case."""
    view = ctx.service().fire(
        ref, trigger, actor, comment=comment, data=_parse_sets(sets), expected_version=expect_version
    )
    click.echo(f"{view.ref}: {trigger} → {view.state} ({view.state_label})")


@case.command("show")
@click.argument("ref")
@click.option("--as", "actor", metavar="USER", help="Show as this user, with the steps they may take now.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def case_show(ctx: _Context, ref: str, actor: str | None, as_json: bool) -> None:
    """Show a case: state, data and (with --as) what that user may do now."""
    svc = ctx.service()
    view = svc.get_case(ref, actor)
    objections = svc.objections(ref)
    if as_json:
        _json({**view.to_json(), "objections": [o.to_json(view.timezone) for o in objections]})
        return
    wf = svc.workflow(view.workflow, view.workflow_version)
    doc = view.to_json()
    out.print(f"[bold]{view.ref}[/]  {escape(wf.title)} (v{view.workflow_version})")
    out.print(f"state: {view.state} ({view.state_label}){'  (final)' if view.final else ''}", markup=False)
    out.print(f"opened by {view.created_by} at {doc['created_at']}; last change {doc['updated_at']}", markup=False)
    if view.deadline is not None or view.paused:
        overdue = "  OVERDUE" if view.overdue else ""
        out.print(f"deadline: {_deadline_cell(view)}{overdue}", markup=False)
    table = PlainTable("field", "label", "value")
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
            out.print(f"{actor} has no step to take on this case now")
    if objections:
        table = PlainTable("objection", "channel", "received", "status", "text", "resolution", title="objections")
        for o in objections:
            doc = o.to_json(view.timezone)
            resolution = f"{o.resolved_by}: {o.comment}" if o.resolved_by else ""
            table.add_row(
                f"#{o.id}", o.channel, f"{doc['received_at']} by {o.received_by}", o.status, o.text, resolution
            )
        out.print(table)


@case.command("list")
@click.option("--workflow", "workflow_name", help="Only this workflow.")
@click.option("--state", help="Only cases in this state.")
@click.option("--as", "actor", metavar="USER", help="Only the cases this user may see.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--overdue", is_flag=True, help="Only cases past their deadline (with --as: waiting for that user).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def case_list(
    ctx: _Context,
    workflow_name: str | None,
    state: str | None,
    actor: str | None,
    limit: int | None,
    overdue: bool,
    as_json: bool,
) -> None:
    """List cases (with --overdue --as USER: a to-do list)."""
    views = ctx.service().list_cases(workflow=workflow_name, state=state, actor=actor, limit=limit, overdue=overdue)
    if as_json:
        _json([v.to_json() for v in views])
        return
    _case_table(views)


def _case_table(views: list[CaseView]) -> None:
    from engine.masking import mask_name

    table = PlainTable("ref", "workflow", "state", "scope", "applicant", "deadline", "updated")
    for v in views:
        # a list is a screen others may glance at: names masked here, full in 'case show'
        name = next((str(x) for k, x in v.data.items() if k.endswith("name")), "")
        table.add_row(
            v.ref,
            f"{v.workflow} v{v.workflow_version}",
            f"{v.state} ({v.state_label})",
            v.scope or "",
            mask_name(name) if name else "",
            _deadline_cell(v),
            v.to_json()["updated_at"],
        )
    out.print(table)
    out.print(f"{len(views)} case{'s' if len(views) != 1 else ''}")


def _deadline_cell(view: CaseView) -> str:
    if view.paused:
        return view.time_left or "paused"
    if view.deadline is None:
        return ""
    at = view.to_json()["deadline"][:16].replace("T", " ")
    flag = " (provisional)" if view.deadline_provisional else ""
    return f"{at}{flag}: {view.time_left}"


@case.command("pause")
@click.argument("ref")
@_as_option
@click.option("--reason", required=True, help="What is missing (补正).")
@pass_ctx
def case_pause(ctx: _Context, ref: str, actor: str, reason: str) -> None:
    """Stop the deadline clock while materials are missing (补正)."""
    left = ctx.service().pause(ref, actor, reason)
    click.echo(f"{ref}: deadline paused with {left['amount']} {left['unit'].replace('_', ' ')} left")


@case.command("resume")
@click.argument("ref")
@_as_option
@click.option("--comment", help="What arrived.")
@pass_ctx
def case_resume(ctx: _Context, ref: str, actor: str, comment: str | None) -> None:
    """Restart the deadline clock with the time that was left."""
    svc = ctx.service()
    svc.resume(ref, actor, comment)
    view = svc.get_case(ref)
    click.echo(f"{ref}: resumed; new deadline {_deadline_cell(view)}")


@case.command("history")
@click.argument("ref")
@click.option("--as", "actor", metavar="USER", help="Only if this user may see the case.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def case_history(ctx: _Context, ref: str, actor: str | None, as_json: bool) -> None:
    """Show the case's audit trail (personal data masked)."""
    records = ctx.service().history(ref, actor)
    if as_json:
        _json([r.to_json() for r in records])
        return
    for r in records:
        doc = r.to_json()
        what = r.action if not r.trigger else f"{r.trigger}: {r.from_state} → {r.to_state}"
        role = f" ({r.role})" if r.role else ""
        out.print(f"[bold]{r.seq:>3}[/]  {doc['at']}  {r.actor}{role}  {escape(what)}")
        if r.comment:
            out.print(f"       comment: {r.comment}", markup=False)
        for k, (a, b) in r.changes.items():
            out.print(f"       {k}: {_short(a)} → {_short(b)}", markup=False)


def _short(value: Any) -> str:
    if value is None:
        return "∅"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


# ------------------------------------------------------------------------- audit


@cli.group()
def audit() -> None:
    """Check the audit trail."""


@audit.command("verify")
@click.argument("ref", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def audit_verify(ctx: _Context, ref: str | None, as_json: bool) -> None:
    """Recompute every hash chain; exit 1 naming the first bad event of each broken case."""
    report = ctx.service().verify_audit(ref)
    if as_json:
        _json(report.to_json())
    elif report.ok:
        click.echo(
            f"audit trail intact: {report.events} events in {report.cases} case{'s' if report.cases != 1 else ''}"
        )
    else:
        for b in report.breaks:
            click.echo(f"BROKEN {b}", err=True)
        click.echo(f"{len(report.breaks)} of {report.cases} cases have a broken audit trail", err=True)
    if not report.ok:
        sys.exit(1)


@cli.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def check_command(ctx: _Context, as_json: bool) -> None:
    """Check what must hold for every case (state vs trail, gapless seq, timers, outbox, keys); exit 1 if not."""
    report = ctx.service().check()
    if as_json:
        _json(report.to_json())
    elif report.ok:
        click.echo(f"all invariants hold: {report.cases} cases, {report.events} audit events")
    else:
        for v in report.violations:
            click.echo(f"VIOLATED {v}", err=True)
        listed = sum(report.counts.values()) - len(report.violations)
        if listed:
            click.echo(f"… and {listed} more", err=True)
        summary = ", ".join(f"{n} {check}" for check, n in sorted(report.counts.items()))
        click.echo(f"invariants violated in {report.cases} cases: {summary}", err=True)
    if not report.ok:
        sys.exit(1)


# -------------------------------------------------------------------------- demo


@cli.command()
@click.option("--seed", type=int, help="Seed for the synthetic data (default: varies with what is stored).")
@pass_ctx
def demo(ctx: _Context, seed: int | None) -> None:
    """Run the demonstration: users, archives through every path, refusals, summary."""
    from casework.demo import run_demo

    upgrade(ctx.engine())
    ok = run_demo(ctx.service(), out, seed=seed)
    if not ok:
        sys.exit(1)


# ------------------------------------------------------------- notifications

from casework import notify_commands  # noqa: E402  (registers outbox, inbox, notice, objection)

notify_commands.register(cli)

from casework import time_commands  # noqa: E402  (registers calendar, timers, scheduler)

time_commands.register(cli)

from casework.inbox_commands import case_inbox  # noqa: E402  (case inbox: what waits for a user)

case.add_command(case_inbox)

from casework.bulk_commands import case_fire_many, case_import  # noqa: E402  (the bulk paths)

case.add_command(case_import)
case.add_command(case_fire_many)


# -------------------------------------------------------------------------- main


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"error: {message}", markup=False)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``casework`` command."""
    try:
        cli.main(args=argv, prog_name="casework", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", 1)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "casework"
        _fail(f"{exc.format_message()} (see '{command} --help')", exc.exit_code)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except DefinitionError as exc:
        for p in exc.problems:
            err.print(str(p), markup=False)
        sys.exit(exc.exit_code)
    except CaseworkError as exc:
        _fail(str(exc), exc.exit_code)
    except OperationalError as exc:
        _fail(f"database problem: {str(exc.orig).strip().splitlines()[0]}", 2)
    except BrokenPipeError:
        sys.exit(0)
