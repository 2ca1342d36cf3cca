"""CLI commands for telling people: outbox, inbox, public notices, objections.

Thin like the rest of the CLI: options in, one call to the engine or the
notifications layer, a table or JSON out.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from pathlib import Path
from typing import Any

import click

from casework.cli import PlainTable, _Context, _json, out, pass_ctx
from engine import OBJECTION_CHANNELS, InputError, NoticeView
from notifications import (
    Relay,
    default_channels,
    inbox,
    list_outbox,
    load_config,
    mark_read,
    retry,
)
from notifications.notices import notice_handler, notice_pdf, publish_list

__all__ = ["register"]

STATUSES = ("pending", "sending", "sent", "failed", "dead")


def _relay(ctx: _Context) -> Relay:
    svc = ctx.service()
    config = load_config()
    return Relay(svc.engine, svc, default_channels(config), config, notice_handler=notice_handler(svc))


# ------------------------------------------------------------------------ outbox


@click.group()
def outbox() -> None:
    """What is waiting to be delivered, and delivering it."""


@outbox.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only rows with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def outbox_list(ctx: _Context, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox rows, newest first; dead rows show their last error."""
    rows = list_outbox(ctx.service().engine, status=status, limit=limit)
    if as_json:
        _json([r.to_json() for r in rows])
        return
    table = PlainTable("id", "case", "channel", "to", "template", "status", "tries", "next try / sent", "last error")
    for r in rows:
        doc = r.to_json()
        when = doc["sent_at"] if r.status == "sent" else doc["next_attempt_at"]
        table.add_row(
            str(r.id), r.case_ref or "", r.channel, r.recipient, r.template, r.status, str(r.attempts),
            when or "", (r.last_error or "")[:80],
        )  # fmt: skip
    out.print(table)
    out.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}")


@outbox.command("relay")
@click.option("--once", is_flag=True, help="Deliver what is due now, then stop (default: keep running).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows per pass.")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True, help="Seconds between passes.")
@pass_ctx
def outbox_relay(ctx: _Context, once: bool, limit: int | None, poll: float) -> None:
    """Deliver due outbox rows through their channels (in-app, email, webhook, console)."""
    relay = _relay(ctx)
    if once:
        report = relay.run_once(limit)
        click.echo(
            f"delivered {report.sent}, will retry {report.failed}, dead {report.dead}"
            + (f", skipped {report.skipped}" if report.skipped else "")
        )
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"relaying every {poll:g} s; Ctrl-C or SIGTERM stops after the current pass")
    relay.run_forever(stop, poll_seconds=poll)
    click.echo("relay stopped")


@outbox.command("retry")
@click.argument("outbox_id", type=int, metavar="ID")
@pass_ctx
def outbox_retry(ctx: _Context, outbox_id: int) -> None:
    """Put a dead or failed row back in the queue, with its attempts reset."""
    svc = ctx.service()
    row = retry(svc.engine, outbox_id, svc.clock)
    click.echo(f"outbox {row.id} ({row.channel} to {row.recipient}) is pending again")


# ------------------------------------------------------------------------- inbox


@click.command("inbox", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="USER | read USER ID")
@click.option("--unread", is_flag=True, help="Only unread messages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def inbox_command(ctx: _Context, args: tuple[str, ...], unread: bool, as_json: bool) -> None:
    """Show USER's in-app messages, or mark one read: 'casework inbox read USER ID'."""
    svc = ctx.service()
    if args[0] == "read":
        if len(args) != 3 or not args[2].isdigit():
            raise click.UsageError("usage: casework inbox read USER ID")
        message = mark_read(svc.engine, args[1], int(args[2]), svc.clock)
        click.echo(f"message {message.id} marked read")
        return
    if len(args) != 1:
        raise click.UsageError("usage: casework inbox USER [--unread] [--json]")
    username = svc.user(args[0]).username  # an unknown user is an error, not an empty inbox
    messages = inbox(svc.engine, username, unread_only=unread)
    if as_json:
        _json([m.to_json() for m in messages])
        return
    for m in messages:
        doc = m.to_json()
        flag = "  " if m.read_at else "● "
        out.print(f"{flag}#{m.id}  {doc['created_at']}  {m.subject}", markup=False)
    unread_count = sum(1 for m in messages if not m.read_at)
    out.print(f"{len(messages)} message{'s' if len(messages) != 1 else ''}, {unread_count} unread", markup=False)


# ------------------------------------------------------------------------ notice


@click.group()
def notice() -> None:
    """Public notices (公示): publish lists, list and show notices."""


@notice.command("publish")
@click.argument("workflow_name", metavar="WORKFLOW")
@click.option("--scope", required=True, help="The scope (county) whose list to publish, e.g. 芗城区.")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Publication date (default: today).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Also write NUMBER.html and NUMBER.pdf here.")
@pass_ctx
def notice_publish(ctx: _Context, workflow_name: str, scope: str, on: dt.datetime | None, out_dir: str | None) -> None:
    """Publish the 公示名单 of every case of SCOPE in publicity not yet on a list (idempotent)."""
    svc = ctx.service()
    view = publish_list(svc, workflow_name, scope, on.date() if on else None)
    if view is None:
        click.echo(f"nothing to publish: every {workflow_name} case of {scope} in publicity is already listed")
        return
    click.echo(
        f"published {view.number}: {len(view.cases)} case{'s' if len(view.cases) != 1 else ''}, "
        f"publicity {view.period_start} to {view.period_end} (sha256 {view.sha256[:12]})"
    )
    if out_dir:
        for path in write_notice(view, Path(out_dir)):
            click.echo(f"wrote {path}")


def write_notice(view: NoticeView, folder: Path) -> list[Path]:
    """Write a notice's HTML and PDF into ``folder``; return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html = folder / f"{view.number}.html"
    html.write_text(view.html, encoding="utf-8")
    pdf = folder / f"{view.number}.pdf"
    pdf.write_bytes(notice_pdf(view))
    return [html, pdf]


@notice.command("list")
@click.option("--workflow", "workflow_name", help="Only this workflow.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def notice_list(ctx: _Context, workflow_name: str | None, as_json: bool) -> None:
    """List notices, newest first."""
    views = ctx.service().notices(workflow_name)
    if as_json:
        _json([v.to_json() for v in views])
        return
    table = PlainTable("number", "kind", "scope", "cases", "period", "title", "sha256")
    for v in views:
        table.add_row(
            v.number, v.kind, v.scope or "", str(len(v.cases)), f"{v.period_start} – {v.period_end}", v.title,
            v.sha256[:12],
        )  # fmt: skip
    out.print(table)


@notice.command("show")
@click.argument("ident", metavar="NUMBER|ID")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf", "json"]), default="html", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@pass_ctx
def notice_show(ctx: _Context, ident: str, fmt: str, output: str | None) -> None:
    """Print or save a notice as HTML, PDF or JSON."""
    if fmt == "pdf" and not output:
        raise InputError("a PDF is binary: give -o FILE.pdf")
    view = ctx.service().notice(ident)
    if fmt == "json":
        _json({**view.to_json(), "html": view.html})
        return
    if fmt == "pdf":
        data = notice_pdf(view)
        Path(output).write_bytes(data)
        click.echo(f"wrote {output} ({len(data):,} bytes)")
        return
    if output:
        Path(output).write_text(view.html, encoding="utf-8")
        click.echo(f"wrote {output}")
    else:
        click.echo(view.html)


# --------------------------------------------------------------------- objection


@click.group()
def objection() -> None:
    """Objections (异议) raised during publicity."""


@objection.command("add")
@click.argument("ref")
@click.option("--as", "actor", required=True, metavar="USER", help="Who records it.")
@click.option("--text", required=True, help="What the objection says.")
@click.option("--channel", type=click.Choice(OBJECTION_CHANNELS), default=OBJECTION_CHANNELS[0], show_default=True)
@pass_ctx
def objection_add(ctx: _Context, ref: str, actor: str, text: str, channel: str) -> None:
    """Record an objection; while it is open, the end of publicity is held."""
    view = ctx.service().add_objection(ref, actor, text, channel)
    click.echo(f"{ref}: objection #{view.id} recorded ({channel}); the end of publicity is held until it is resolved")


@objection.command("resolve")
@click.argument("ref")
@click.argument("objection_id", type=int, metavar="ID")
@click.option("--as", "actor", required=True, metavar="USER", help="Who decides.")
@click.option("--outcome", type=click.Choice(["upheld", "dismissed"]), required=True)
@click.option("--comment", required=True, help="Why.")
@pass_ctx
def objection_resolve(ctx: _Context, ref: str, objection_id: int, actor: str, outcome: str, comment: str) -> None:
    """Close an objection: upheld sends the case back to review; dismissed releases the hold."""
    svc = ctx.service()
    view = svc.resolve_objection(ref, objection_id, actor, outcome, comment)
    state = svc.get_case(ref).state
    click.echo(f"{ref}: objection #{view.id} {outcome}; the case is now in {state}")


def register(cli: Any) -> None:
    """Add these commands to the ``casework`` group."""
    for command in (outbox, inbox_command, notice, objection):
        cli.add_command(command)
