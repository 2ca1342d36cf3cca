"""``casework user``: people, their roles and the scopes they cover."""

from __future__ import annotations

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, err, out, plain_table

__all__ = ["user"]


@click.group()
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
@json_option()
@pass_app
def user_add(
    app: AppContext,
    username: str,
    name: str,
    roles: tuple[str, ...],
    scopes: tuple[str, ...],
    email: str | None,
    as_json: bool,
) -> None:
    """Add a user."""
    from engine import did_you_mean

    svc = app.service()
    info = svc.add_user(username, name, list(roles), list(scopes), email=email)
    if as_json:
        emit_json(info.to_json())
        return
    known = svc.known_roles()
    for r in info.roles:
        if known and r not in known:
            err.print(f"warning: no loaded workflow uses role {r!r}{did_you_mean(r, known)}", markup=False)
    click.echo(f"added {info.username} ({info.name}): roles {', '.join(info.roles)}; scopes {', '.join(info.scopes)}")


@user.command("list")
@json_option()
@pass_app
def user_list(app: AppContext, as_json: bool) -> None:
    """List users."""
    users = app.service().users()
    if as_json:
        emit_json([u.to_json() for u in users])
        return
    table = plain_table("username", "name", "roles", "scopes", "email")
    for u in users:
        table.add_row(u.username, u.name, ", ".join(u.roles), ", ".join(u.scopes), u.email or "")
    out.print(table)
