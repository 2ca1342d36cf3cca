"""``casework notice``: publish the 公示名单, list and show public notices."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table

if TYPE_CHECKING:
    from engine import NoticeView

__all__ = ["notice", "write_notice"]


@click.group()
def notice() -> None:
    """Public notices (公示): publish lists, list and show notices."""


@notice.command("publish")
@click.argument("workflow_name", metavar="WORKFLOW")
@click.option("--scope", required=True, help="The scope (county) whose list to publish, e.g. 芗城区.")
@click.option(
    "--date",
    "on",
    type=click.DateTime(["%Y-%m-%d"]),
    help="The notice's date, the day its publicity period starts (default: today; never in the past).",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Also write NUMBER.html and NUMBER.pdf here.")
@json_option("Print the published notice as JSON.")
@pass_app
def notice_publish(
    app: AppContext, workflow_name: str, scope: str, on: dt.datetime | None, out_dir: str | None, as_json: bool
) -> None:
    """Publish the 公示名单 of every case of SCOPE awaiting publication: their publicity starts (idempotent).

    The notice is rendered and stored now, from the data as it is now, and
    never rendered again. Each listed case can leave publicity (other than by
    an upheld objection or a withdrawal) only once the notice's period is over.
    """
    from notifications.notices import publish_list

    view = publish_list(app.service(), workflow_name, scope, on.date() if on else None)
    if as_json:
        emit_json(view.to_json() if view is not None else None)
    elif view is None:
        click.echo(f"nothing to publish: no {workflow_name} case of {scope} awaits publication")
    else:
        click.echo(
            f"published {view.number}: {len(view.cases)} case{'s' if len(view.cases) != 1 else ''}, "
            f"publicity {view.period_start} to {view.period_end}, objections until the end of {view.period_end} "
            f"(sha256 {view.sha256[:12]})"
        )
    if out_dir and view is not None:
        for path in write_notice(view, Path(out_dir)):
            if not as_json:
                click.echo(f"wrote {path}")


def write_notice(view: NoticeView, folder: Path) -> list[Path]:
    """Write a notice's HTML and PDF into ``folder``; return the paths."""
    from notifications.notices import notice_pdf

    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"{view.number}.html"
    html.write_text(view.html, encoding="utf-8")
    pdf = folder / f"{view.number}.pdf"
    pdf.write_bytes(notice_pdf(view))
    return [html, pdf]


@notice.command("list")
@click.option("--workflow", "workflow_name", help="Only this workflow.")
@json_option()
@pass_app
def notice_list(app: AppContext, workflow_name: str | None, as_json: bool) -> None:
    """List notices, newest first."""
    views = app.service().notices(workflow_name)
    if as_json:
        emit_json([v.to_json() for v in views])
        return
    table = plain_table("number", "kind", "scope", "cases", "period", "title", "sha256")
    for v in views:
        table.add_row(
            v.number, v.kind, v.scope or "", str(len(v.cases)), f"{v.period_start} – {v.period_end}", v.title,
            v.sha256[:12],
        )  # fmt: skip
    out.print(table)


@notice.command("show")
@click.argument("ident", metavar="NUMBER|ID")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "pdf", "json"]),
    default="html",
    show_default=True,
    help="The stored HTML, its A4 PDF print (needs -o), or JSON with the HTML.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@pass_app
def notice_show(app: AppContext, ident: str, fmt: str, output: str | None) -> None:
    """Print or save a notice as HTML, PDF or JSON."""
    from engine import InputError

    if fmt == "json":
        app.json = True
    if fmt == "pdf" and not output:
        raise InputError("a PDF is binary: give -o FILE.pdf", option="output")
    view = app.service().notice(ident)
    if fmt == "json":
        emit_json({**view.to_json(), "html": view.html})
        return
    if fmt == "pdf":
        from notifications.notices import notice_pdf

        data = notice_pdf(view)
        Path(str(output)).write_bytes(data)
        click.echo(f"wrote {output} ({len(data):,} bytes)")
        return
    if output:
        Path(output).write_text(view.html, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(view.html)
