"""``casework audit verify`` and ``casework check``: proving the stored cases are what their trails say."""

from __future__ import annotations

import sys

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import json_option
from casework.cli.output import emit_json

__all__ = ["audit", "check_command"]


@click.group()
def audit() -> None:
    """Check the audit trail."""


@audit.command("verify")
@click.argument("ref", required=False)
@json_option()
@pass_app
def audit_verify(app: AppContext, ref: str | None, as_json: bool) -> None:
    """Recompute every hash chain; exit 1 naming the first bad event of each broken case."""
    report = app.service().verify_audit(ref)
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        click.echo(
            f"audit trail intact: {report.events} events in {report.cases} case{'s' if report.cases != 1 else ''}"
        )
    else:
        for b in report.breaks:
            click.echo(f"BROKEN {b}", err=True)
        click.echo(f"{len(report.breaks)} of {report.cases} cases have a broken audit trail", err=True)
    if not report.ok:
        sys.exit(1)


@click.command("check")
@json_option()
@pass_app
def check_command(app: AppContext, as_json: bool) -> None:
    """Check what must hold for every case (state vs trail, gapless seq, timers, outbox, keys); exit 1 if not."""
    report = app.service().check()
    if as_json:
        emit_json(report.to_json())
    elif report.ok:
        click.echo(f"all invariants hold: {report.cases} cases, {report.events} audit events")
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
