"""``casework inbox USER``: a user's in-app messages; ``casework inbox read USER ID`` marks one read."""

from __future__ import annotations

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, visible

__all__ = ["inbox_command"]


@click.command("inbox", context_settings={"ignore_unknown_options": False})
@click.argument("args", nargs=-1, required=True, metavar="USER | read USER ID")
@click.option("--unread", is_flag=True, help="Only unread messages.")
@json_option()
@pass_app
def inbox_command(app: AppContext, args: tuple[str, ...], unread: bool, as_json: bool) -> None:
    """Show USER's in-app messages, or mark one read: 'casework inbox read USER ID'."""
    from notifications import inbox, mark_read

    svc = app.service()
    if args[0] == "read":
        if len(args) != 3 or not args[2].isdigit():
            raise click.UsageError("usage: casework inbox read USER ID")
        message = mark_read(svc.engine, args[1], int(args[2]), svc.clock)
        if as_json:
            emit_json(message.to_json())
            return
        click.echo(f"message {message.id} marked read")
        return
    if len(args) != 1:
        raise click.UsageError("usage: casework inbox USER [--unread] [--json]")
    username = svc.user(args[0]).username  # an unknown user is an error, not an empty inbox
    messages = inbox(svc.engine, username, unread_only=unread)
    if as_json:
        emit_json([m.to_json() for m in messages])
        return
    for m in messages:
        flag = "  " if m.read_at else "● "
        out.print(f"{flag}#{m.id}  {m.to_json()['created_at']}  {visible(m.subject)}", markup=False)
    unread_count = sum(1 for m in messages if not m.read_at)
    out.print(f"{len(messages)} message{'s' if len(messages) != 1 else ''}, {unread_count} unread", markup=False)
