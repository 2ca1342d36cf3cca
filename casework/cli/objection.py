"""``casework objection``: objections (异议) raised during publicity."""

from __future__ import annotations

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, json_option
from casework.cli.output import emit_json
from engine.limits import OBJECTION_CHANNELS, OUTCOMES

__all__ = ["objection"]


@click.group()
def objection() -> None:
    """Objections (异议) raised during publicity."""


@objection.command("add")
@click.argument("ref")
@actor_option("Who records it.")
@click.option("--text", required=True, help="What the objection says.")
@click.option(
    "--channel",
    type=click.Choice(OBJECTION_CHANNELS),
    default=OBJECTION_CHANNELS[0],
    show_default=True,
    help="How it reached the office: by phone, by letter or in person.",
)
@json_option("Print the objection as JSON.")
@pass_app
def objection_add(app: AppContext, ref: str, actor: str, text: str, channel: str, as_json: bool) -> None:
    """Record an objection (until the publicity period ends); while it is open, the end of publicity is held."""
    view = app.service().add_objection(ref, actor, text, channel)
    if as_json:
        emit_json(view.to_json())
        return
    click.echo(f"{ref}: objection #{view.id} recorded ({channel}); the end of publicity is held until it is resolved")


@objection.command("resolve")
@click.argument("ref")
@click.argument("objection_id", type=int, metavar="ID")
@actor_option("Who decides.")
@click.option(
    "--outcome",
    type=click.Choice(OUTCOMES),
    required=True,
    help="upheld: the case goes back to review (and, passed again, onto a new notice for a new full period); "
    "dismissed: the hold is released.",
)
@click.option("--comment", required=True, help="Why.")
@json_option("Print the objection as JSON.")
@pass_app
def objection_resolve(
    app: AppContext, ref: str, objection_id: int, actor: str, outcome: str, comment: str, as_json: bool
) -> None:
    """Close an objection: upheld sends the case back to review; dismissed releases the hold."""
    svc = app.service()
    view = svc.resolve_objection(ref, objection_id, actor, outcome, comment)
    if as_json:
        emit_json(view.to_json())
        return
    state = svc.get_case(ref).state
    click.echo(f"{ref}: objection #{view.id} {outcome}; the case is now in {state}")
