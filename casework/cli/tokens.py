"""``casework token``: the HTTP API's tokens — made once, listed without their secret, revoked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json, out, plain_table

if TYPE_CHECKING:
    from engine.tokens import TokenInfo

__all__ = ["token"]


@click.group()
def token() -> None:
    """Manage the HTTP API's tokens (each acts as its user, with at most their roles and scopes)."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, unique among the user's live tokens.")
@click.option(
    "--expires",
    "days",
    type=int,
    metavar="DAYS",
    help="It expires this many days from now (default: it lives until revoked).",
)
@click.option("--role", "roles", multiple=True, help="Limit it to this role of the user's (repeatable).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Limit it to this scope of the user's, e.g. 芗城区 (repeatable).",
)
@json_option()
@pass_app
def token_create(
    app: AppContext,
    username: str,
    name: str,
    days: int | None,
    roles: tuple[str, ...],
    scopes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Make an API token for USERNAME and print its secret: the only time it is shown.

    The database keeps only its SHA-256, so a lost token cannot be shown
    again: revoke it and make another. The secret is printed alone on
    stdout (the note about it goes to stderr), so a script can capture it.
    """
    secret, info = app.service().tokens.create(
        username, name, days=days, roles=list(roles) or None, scopes=list(scopes) or None
    )
    if as_json:
        emit_json({"token": secret, **info.to_json()})
        return
    click.echo(secret)
    # on stderr: `TOKEN=$(casework token create ...)` captures the secret alone
    click.echo(
        f"token {info.name!r} for {info.username}: {_limits(info)}; {_expiry(info)}. "
        "This is the only time it is shown: keep it in a secret store now "
        "(a lost token cannot be shown again; revoke it and make another).",
        err=True,
    )


@token.command("list")
@click.argument("username", required=False)
@json_option()
@pass_app
def token_list(app: AppContext, username: str | None, as_json: bool) -> None:
    """List the tokens (of USERNAME), oldest first: status live/expired/revoked, limits, last use; never a secret."""
    svc = app.service()
    if username is not None:
        svc.user(username)  # an unknown user is refused, not shown as having no token
    tokens = svc.tokens.list(username)
    if as_json:
        emit_json([t.to_json() for t in tokens])
        return
    table = plain_table("user", "name", "status", "roles", "scopes", "created", "expires", "last used")
    for t in tokens:
        shown = t.to_json()
        table.add_row(
            t.username,
            t.name,
            t.status,
            ", ".join(t.roles) if t.roles is not None else "(all the user's)",
            ", ".join(t.scopes) if t.scopes is not None else "(all the user's)",
            str(shown["created_at"]),
            str(shown["expires_at"] or "never"),
            str(shown["last_used_at"] or "never"),
        )
    out.print(table)


@token.command("revoke")
@click.argument("username")
@click.argument("name")
@json_option()
@pass_app
def token_revoke(app: AppContext, username: str, name: str, as_json: bool) -> None:
    """Revoke USERNAME's live token NAME: every later request with it is refused (401)."""
    info = app.service().tokens.revoke(username, name)
    if as_json:
        emit_json(info.to_json())
        return
    click.echo(f"revoked {info.username}'s token {info.name!r}: requests with it are refused from now on")


def _limits(info: TokenInfo) -> str:
    roles = ", ".join(info.roles) if info.roles is not None else f"all of {info.username}'s"
    scopes = ", ".join(info.scopes) if info.scopes is not None else f"all of {info.username}'s"
    return f"roles {roles}; scopes {scopes}"


def _expiry(info: TokenInfo) -> str:
    expires = info.to_json()["expires_at"]
    return f"expires {expires}" if expires else "it lives until revoked"
