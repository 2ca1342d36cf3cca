"""``casework init`` (the schema) and ``casework demo`` (what ``make run`` runs)."""

from __future__ import annotations

import sys

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.output import out

__all__ = ["demo", "init"]


@click.command()
@pass_app
def init(app: AppContext) -> None:
    """Create or upgrade the database schema (idempotent)."""
    from db.migrate import upgrade

    before, after = upgrade(app.engine())
    if before == after:
        click.echo(f"schema up to date (revision {after}) at {app.safe_url()}")
    else:
        click.echo(f"schema upgraded {before or 'empty'} → {after} at {app.safe_url()}")


@click.command()
@click.option("--seed", type=int, help="Seed for the synthetic data (default: varies with what is stored).")
@pass_app
def demo(app: AppContext, seed: int | None) -> None:
    """Run the demonstration: users, archives through every path, refusals, summary."""
    from casework.demo import run_demo
    from db.migrate import upgrade

    upgrade(app.engine())
    if not run_demo(app.service(), out._get(), seed=seed):
        sys.exit(1)
