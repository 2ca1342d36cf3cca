"""``casework user``: people, their roles and the scopes they cover."""

from __future__ import annotations

import sys

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table

__all__ = ["user"]


@click.group()
def user() -> None:
    """Manage users, their roles and scopes."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Full name, e.g. 林晓.")
@click.option(
    "--role", "roles", multiple=True, required=True, help="A role id a loaded workflow declares (repeatable)."
)
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
    """Add a user (roles and scopes must be ones a loaded workflow declares: load it first)."""
    info = app.service().add_user(username, name, list(roles), list(scopes), email=email)
    if as_json:
        emit_json(info.to_json())
        return
    click.echo(f"added {info.username} ({info.name}): roles {', '.join(info.roles)}; scopes {', '.join(info.scopes)}")


@user.command("edit")
@click.argument("username")
@click.option("--name", help="The full name.")
@click.option("--email", help='The email address ("" removes it).')
@click.option("--role", "roles", multiple=True, help="The roles, replacing the old ones (repeatable).")
@click.option("--scope", "scopes", multiple=True, help="The scopes, replacing the old ones (repeatable).")
@json_option()
@pass_app
def user_edit(
    app: AppContext,
    username: str,
    name: str | None,
    email: str | None,
    roles: tuple[str, ...],
    scopes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Correct a user's name, email, roles or scopes (checked as 'user add' checks them; logged)."""
    if name is None and email is None and not roles and not scopes:
        raise click.UsageError("nothing to change: give --name, --email, --role or --scope")
    info, changes = app.service().edit_user(
        username, name=name, email=email, roles=list(roles) or None, scopes=list(scopes) or None
    )
    if as_json:
        emit_json({**info.to_json(), "changes": changes})
    elif not changes:
        click.echo(f"{info.username}: no change (values already as given)")
    else:
        for field, (old, new) in changes.items():
            click.echo(f"{info.username}: {field} {_shown(old)} → {_shown(new)}")


@user.command("disable")
@click.argument("username")
@click.option("--reason", help="Why (kept in the access log).")
@json_option()
@pass_app
def user_disable(app: AppContext, username: str, reason: str | None, as_json: bool) -> None:
    """Disable a user: they can no longer act and are sent no messages (their past steps stay theirs)."""
    info, changed = app.service().disable_user(username, reason)
    if as_json:
        emit_json({**info.to_json(), "changed": changed})
    elif changed:
        click.echo(f"disabled {info.username} ({info.name})")
    else:
        click.echo(f"{info.username} was already disabled (since {info.to_json()['disabled_at']})")


@user.command("enable")
@click.argument("username")
@click.option("--reason", help="Why (kept in the access log).")
@json_option()
@pass_app
def user_enable(app: AppContext, username: str, reason: str | None, as_json: bool) -> None:
    """Enable a disabled user again."""
    info, changed = app.service().enable_user(username, reason)
    if as_json:
        emit_json({**info.to_json(), "changed": changed})
    elif changed:
        click.echo(f"enabled {info.username} ({info.name})")
    else:
        click.echo(f"{info.username} is not disabled")


def _shown(value: object) -> str:
    if value is None:
        return "(none)"
    return ", ".join(value) if isinstance(value, list) else str(value)


@user.command("list")
@json_option()
@pass_app
def user_list(app: AppContext, as_json: bool) -> None:
    """List users (a disabled one marked with the time it was disabled)."""
    users = app.service().users()
    if as_json:
        emit_json([u.to_json() for u in users])
        return
    table = plain_table("username", "name", "roles", "scopes", "email", "disabled")
    for u in users:
        disabled = str(u.to_json()["disabled_at"]) if u.disabled_at is not None else ""
        table.add_row(u.username, u.name, ", ".join(u.roles), ", ".join(u.scopes), u.email or "", disabled)
    out.print(table)


@user.command("passwd")
@click.argument("username")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the new password from the first line of standard input (for scripts) instead of a prompt.",
)
@pass_app
def user_passwd(app: AppContext, username: str, password_stdin: bool) -> None:
    """Set USERNAME's password for the web application (stored as an Argon2id hash); their sessions end.

    At least 10 characters, not containing the username. Without
    --password-stdin the password is asked twice, without echo.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("new password", hide_input=True, confirmation_prompt="again")
    app.service().logins.set_password(username, password)
    click.echo(f"password set for {username}; their earlier web sessions have ended")
