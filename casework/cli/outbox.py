"""``casework outbox``: what is waiting to be delivered, and delivering it."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table
from engine.limits import OUTBOX_STATUS

if TYPE_CHECKING:
    from notifications import Relay

__all__ = ["make_relay", "outbox"]


def make_relay(app: AppContext) -> Relay:
    """A relay over the configured channels (``casework.toml`` / ``$CASEWORK_*``)."""
    from notifications import Relay, default_channels, load_config

    svc = app.service()
    config = load_config()
    return Relay(svc.engine, svc, default_channels(config), config)


@click.group()
def outbox() -> None:
    """What is waiting to be delivered, and delivering it."""


@outbox.command("list")
@click.option("--status", type=click.Choice(OUTBOX_STATUS), help="Only rows with this status.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many rows.")
@json_option()
@pass_app
def outbox_list(app: AppContext, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox rows, newest first; dead rows show their last error."""
    from notifications import list_outbox

    rows = list_outbox(app.service().engine, status=status, limit=limit)
    if as_json:
        emit_json([r.to_json() for r in rows])
        return
    table = plain_table("id", "case", "channel", "to", "template", "status", "tries", "next try / sent", "last error")
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
@pass_app
def outbox_relay(app: AppContext, once: bool, limit: int | None, poll: float) -> None:
    """Deliver due outbox rows through their channels (in-app, email, webhook, console)."""
    relay = make_relay(app)
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
@pass_app
def outbox_retry(app: AppContext, outbox_id: int) -> None:
    """Put a dead or failed row back in the queue, with its attempts reset."""
    from notifications import retry

    svc = app.service()
    row = retry(svc.engine, outbox_id, svc.clock)
    click.echo(f"outbox {row.id} ({row.channel} to {row.recipient}) is pending again")
