"""``casework audit verify`` and ``casework check``: proving the stored cases are what their trails say."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json
from engine.limits import ACCESS_ACTIONS

__all__ = ["audit", "check_command"]


@click.group()
def audit() -> None:
    """Check the audit trail; read the access log."""


@audit.command("verify")
@click.argument("ref", required=False)
@click.option(
    "--checkpoint",
    "checkpoint",
    type=click.File("r", encoding="utf-8"),
    help="A file `audit checkpoint` wrote: prove no trail was rebuilt, cut back or removed since.",
)
@json_option()
@pass_app
def audit_verify(app: AppContext, ref: str | None, checkpoint: TextIO | None, as_json: bool) -> None:
    """Prove the stored cases against their trails; exit 1 naming each case and what differs.

    Recomputes every hash chain, checks each trail head's seal (with the audit
    key), replays every case and compares it with the stored row; without REF
    also re-hashes workflow versions and notices, looks for deleted cases and,
    on SQLite, runs PRAGMA integrity_check.
    """
    report = app.service().verify_audit(ref, checkpoint.read() if checkpoint is not None else None)
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        click.echo(
            f"audit trail intact: {report.events} events in {report.cases} case{'s' if report.cases != 1 else ''}"
            + _authenticated(report.authenticated)
        )
    else:
        for b in report.breaks:
            click.echo(f"BROKEN {b}", err=True)
        for v in report.violations:
            click.echo(f"DIFFERS {v}", err=True)
        summary = ", ".join(f"{n} {check}" for check, n in sorted(report.counts.items()))
        click.echo(
            f"{len(report.breaks)} of {report.cases} cases have a broken audit trail"
            + (f"; the trail contradicts the stored data: {summary}" if summary else ""),
            err=True,
        )
    if not report.ok:
        sys.exit(1)


@audit.command("checkpoint")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the checkpoint to this file (default: standard output).",
)
@pass_app
def audit_checkpoint(app: AppContext, output: str | None) -> None:
    """Write every case's trail head and every notice's hash, MAC'd with the audit key, as JSON.

    Keep the file outside the database (another machine, print, mail): a later
    `audit verify --checkpoint FILE` proves no trail was rebuilt, cut back or
    removed since, even by someone who could write the whole database.
    """
    text = json.dumps(app.service().checkpoint(), ensure_ascii=False, indent=1) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    Path(output).write_text(text, encoding="utf-8")
    click.echo(f"checkpoint written to {output}", err=True)


def _authenticated(done: bool) -> str:
    if done:
        return "; trail heads authenticated with the audit key"
    return " (trail heads not authenticated: no audit key set — see docs/operations.md)"


@click.command("check")
@json_option()
@pass_app
def check_command(app: AppContext, as_json: bool) -> None:
    """Check what must hold for every case and prove it against its trail; exit 1 naming each violation.

    The invariants (state vs trail, gapless seq, timers, outbox, keys) and
    everything `audit verify` proves (chains, seals, replay, workflow sources,
    notices, deleted cases, the SQLite file).
    """
    report = app.service().check()
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        click.echo(
            f"all invariants hold: {report.cases} cases, {report.events} audit events"
            + _authenticated(report.authenticated)
        )
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


@audit.command("access")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Only entries from this time on (Asia/Shanghai), e.g. 2026-12-01 or 2026-12-01T09:00.",
)
@click.option(
    "--action",
    type=click.Choice(ACCESS_ACTIONS),
    help="Only entries of this kind.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the newest this many.")
@json_option()
@pass_app
def audit_access(
    app: AppContext, since: dt.datetime | None, action: str | None, limit: int | None, as_json: bool
) -> None:
    """List the access log: full personal data shown, and users changed, through the console; oldest first.

    Each entry names the operating-system user and host of the process and the
    user named with --as, if any.
    """
    from zoneinfo import ZoneInfo

    from casework.cli.output import out, plain_table

    when = since.replace(tzinfo=ZoneInfo("Asia/Shanghai")) if since else None
    entries = app.service().access_log(since=when, action=action, limit=limit)
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    table = plain_table("at", "who", "as", "action", "what")
    for e in entries:
        table.add_row(str(e.to_json()["at"]), f"{e.os_user}@{e.host}", e.actor or "", e.action, _what(e.detail))
    out.print(table)
    out.print(f"{len(entries)} entr{'ies' if len(entries) != 1 else 'y'}")


def _what(detail: Mapping[str, Any]) -> str:
    """An entry's detail on one line: the cases read (the first few), the filters, the user changed and how."""
    parts: list[str] = []
    if "user" in detail:
        parts.append(str(detail["user"]))
    refs = list(detail.get("refs", ()))
    if refs or "refs" in detail:
        shown = ", ".join(refs[:3]) + (f", … ({len(refs)} cases)" if len(refs) > 3 else "")
        parts.append(shown or "no case")
    for key in ("filters", "changes"):
        if detail.get(key):
            parts.append(json.dumps(detail[key], ensure_ascii=False))
    if detail.get("reason"):
        parts.append(f"reason: {detail['reason']}")
    return "; ".join(parts)
