"""The ``casework`` command tree: the root group, and every command registered in one place.

Each command group lives in its own module and imports only click and the
light parts of the engine (errors, limits) at import time; everything heavy
(SQLAlchemy, the engine's service, rich, the PDF and spreadsheet libraries)
is imported inside the command that needs it.
"""

from __future__ import annotations

import click

from casework.cli.audit import audit, check_command
from casework.cli.bulk import case_fire_many, case_import
from casework.cli.calendar import calendar
from casework.cli.campaign import campaign
from casework.cli.cases import case
from casework.cli.context import AppContext
from casework.cli.messages import inbox_command
from casework.cli.notice import notice
from casework.cli.objection import objection
from casework.cli.outbox import outbox
from casework.cli.report import report
from casework.cli.scheduler import scheduler
from casework.cli.serve import serve
from casework.cli.setup import demo, init
from casework.cli.timers import timers
from casework.cli.tokens import token
from casework.cli.users import user
from casework.cli.workflow import workflow
from casework.cli.worklist import case_inbox

__all__ = ["cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    "url",
    metavar="URL",
    help="Database URL (default: $CASEWORK_DB, else sqlite:///casework.db in the current directory).",
)
@click.version_option(package_name="casework")
@click.pass_context
def cli(ctx: click.Context, url: str | None) -> None:
    """casework: approve cases in fixed steps, with an audit trail."""
    ctx.ensure_object(AppContext).given_url = url


for command in (init, workflow, user, case, audit, check_command, demo):
    cli.add_command(command)
for command in (outbox, inbox_command, notice, objection):
    cli.add_command(command)
for command in (calendar, timers, scheduler, campaign, token):
    cli.add_command(command)
for command in (case_import, case_fire_many, case_inbox):
    case.add_command(command)
cli.add_command(report)
cli.add_command(serve)
