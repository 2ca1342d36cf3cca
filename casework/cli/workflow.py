"""``casework workflow``: validate, load and inspect workflow definitions."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, err, out, plain_table
from engine.limits import DEFAULT_MOVE_BATCH, MAX_BATCH

if TYPE_CHECKING:
    from engine import WorkflowDef
    from engine.models import MigrationReport

__all__ = ["mermaid", "workflow"]


@click.group()
def workflow() -> None:
    """Validate, load and inspect workflow definitions."""


@workflow.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def workflow_validate(files: tuple[str, ...]) -> None:
    """Check workflow files; print every problem as FILE:LINE:COL: message."""
    from engine import DefinitionError, load_definition_file

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
@click.option(
    "--accept-weaker",
    "accept_weaker",
    multiple=True,
    metavar="CONTROL[,CONTROL…]",
    help="Load a version that weakens these controls of the latest one, each named as the refusal names it "
    "(e.g. not_by:grant,pii:phone); recorded with the version.",
)
@pass_app
def workflow_load(app: AppContext, file: str, accept_weaker: tuple[str, ...]) -> None:
    """Store a workflow as an immutable version (same source again: no-op).

    A version that drops or relaxes a control of the latest one (a four-eyes
    rule, a required comment, masking, a condition) is refused until each is
    named with --accept-weaker. Who loaded it is recorded (see 'workflow history').
    """
    from engine import load_definition_file

    wf = load_definition_file(file)
    accepted = [part.strip() for value in accept_weaker for part in value.split(",") if part.strip()]
    info, created = app.service().load_workflow(wf, accept_weaker=accepted)
    if created:
        weakened = f"; accepted weaker: {', '.join(accepted)}" if accepted else ""
        click.echo(f"loaded {info.name} version {info.version} ({info.source_hash[:12]}){weakened}")
    else:
        click.echo(f"{info.name} version {info.version} already loaded with this content; nothing changed")


def _parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    """``OLD=NEW`` pairs as a dict; an old state given twice is refused."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise click.BadParameter(f"{pair!r}: write OLD=NEW, e.g. --map register=intake", param_hint="--map")
        if old in mapping and mapping[old] != new:
            raise click.BadParameter(
                f"{old} is mapped twice ({mapping[old]} and {new}); map each old state once", param_hint="--map"
            )
        mapping[old] = new
    return mapping


@workflow.command("migrate")
@click.argument("name")
@click.option("--to", "to_version", type=int, required=True, metavar="N", help="The version to move cases to.")
@click.option(
    "--map",
    "pairs",
    multiple=True,
    metavar="OLD=NEW",
    help="Move cases in the old state OLD to the new version's state NEW (repeatable; default: the same name).",
)
@click.option("--dry-run", is_flag=True, help="Only report what would move and what would stay, and why.")
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_BATCH),
    default=DEFAULT_MOVE_BATCH,
    show_default=True,
    help="Cases moved per transaction.",
)
@json_option()
@pass_app
def workflow_migrate(
    app: AppContext, name: str, to_version: int, pairs: tuple[str, ...], dry_run: bool, batch: int, as_json: bool
) -> None:
    """Move cases of workflow NAME on older versions to version N.

    Reports, per old version and state, how many cases move and which stay
    and why (a state the new version lacks and --map does not map, a field it
    requires that they lack, a stored value it refuses, publicity, a paused
    clock). A real run moves the movable cases, one audited 'migrated' event
    each with their deadline and timers counted again under the new rules from
    when they entered their state, and leaves the others on their version. It
    is refused, nothing moved, if a case would be stranded (a state the new
    version lacks, a final state, or one no step leads out of). Exit 1 if a
    dry run finds the move would be refused. Who ran it (OS user and host) is
    recorded in each event.
    """
    report = app.service().migrate(name, to_version, _parse_map(pairs), dry_run=dry_run, batch=batch)
    if as_json:
        emit_json(report.to_json())
    else:
        _print_migration(report)
    if report.strands:
        raise SystemExit(1)


def _print_migration(report: MigrationReport) -> None:
    mapped = ", ".join(f"{k}={v}" for k, v in report.mapping.items())
    head = "dry run: " if report.dry_run else ""
    title = f"{head}{report.workflow} → version {report.to_version}" + (f" (map {mapped})" if mapped else "")
    table = plain_table("from", "state", "→ state", "cases", "move", "stay", "why they stay", "first refs", title=title)
    for g in report.groups:
        reasons = "\n".join(f"{b.reason}: {b.detail} ({b.cases})" for b in g.blocked)
        refs = "\n".join(", ".join(b.refs) for b in g.blocked)
        moving = g.movable if report.dry_run else g.moved
        table.add_row(
            f"v{g.from_version}",
            g.state,
            g.to_state or "—",
            str(g.cases),
            str(moving),
            str(g.cases - moving),
            reasons,
            refs,
        )
    out.print(table)
    if report.dry_run:
        verdict = f"{report.movable} of {report.cases} cases would move; nothing was changed (dry run)"
    else:
        verdict = f"moved {report.moved} of {report.cases} cases to version {report.to_version}"
        if report.moved < report.movable:
            verdict += f" ({report.movable - report.moved} changed meanwhile and stay)"
    out.print(verdict, markup=False)
    for why in report.strands:
        err.print(f"would strand cases: {why}", markup=False)
    if report.strands:
        err.print(
            "the move would be refused: map those states (--map OLD=NEW) to ones a step leads out of", markup=False
        )


@workflow.command("history")
@click.argument("name")
@json_option()
@pass_app
def workflow_history(app: AppContext, name: str, as_json: bool) -> None:
    """List every version of a workflow: when and by whom it was loaded, and the weakened controls accepted."""
    versions = app.service().workflow_history(name)
    if as_json:
        emit_json([v.to_json() for v in versions])
        return
    table = plain_table("version", "loaded", "loaded by", "hash", "cases", "weakened")
    for v in versions:
        table.add_row(
            str(v.version),
            str(v.to_json()["loaded_at"]),
            v.loaded_by or "",
            v.source_hash[:12],
            str(v.cases),
            ", ".join(v.weakened),
        )
    out.print(table)


@workflow.command("list")
@json_option()
@pass_app
def workflow_list(app: AppContext, as_json: bool) -> None:
    """List loaded workflow versions."""
    infos = app.service().workflows()
    if as_json:
        emit_json([i.to_json() for i in infos])
        return
    table = plain_table("workflow", "version", "title", "cases", "latest", "loaded", "hash")
    for i in infos:
        table.add_row(
            i.name,
            str(i.version),
            i.title,
            str(i.cases),
            "yes" if i.latest else "",
            str(i.to_json()["loaded_at"]),
            i.source_hash[:12],
        )
    out.print(table)


@workflow.command("show")
@click.argument("name")
@click.option("--version", "version", type=int, help="A specific version (default: the latest).")
@json_option()
@click.option("--diagram", is_flag=True, help="Print the state diagram as Mermaid text.")
@pass_app
def workflow_show(app: AppContext, name: str, version: int | None, as_json: bool, diagram: bool) -> None:
    """Show a workflow's fields, states and steps."""
    from rich.markup import escape

    from engine.compute import computed_from

    wf = app.service().workflow(name, version)
    if diagram:
        click.echo(mermaid(wf))
        return
    if as_json:
        emit_json(wf.describe())
        return
    out.print(
        f"[bold]{wf.name}[/] version {wf.version}: {escape(wf.title)}  "
        f"(timezone {escape(wf.timezone)}, refs {wf.ref_prefix}-)"
    )
    roles = plain_table("role", "label", title="roles")
    for r, label in wf.roles.items():
        roles.add_row(r, label)
    out.print(roles)
    fields = plain_table("field", "type", "label", "rules", title="fields")
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
                f"computed {computed_from(f)}" if f.compute else "",
            )
            if x
        ]
        fields.add_row(f.name, f.type, f.label, ", ".join(rules))
    out.print(fields)
    states = plain_table("state", "label", "kind", "deadline", title="states")
    for s in wf.states.values():
        kind = "initial" if s.initial else ("final" + (" (void)" if s.void else "")) if s.final else ""
        states.add_row(s.name, s.label, kind, str(s.deadline) if s.deadline else "")
    out.print(states)
    steps = plain_table("step", "label", "from → to", "by", "rules", title="steps")
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
