"""``casework case inbox``: the cases waiting for a user, soonest deadline first, a page at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from casework.cli.context import AppContext, pass_app
from casework.cli.options import actor_option, json_option
from casework.cli.output import Applicants, emit_json, out, plain_table
from engine.limits import MAX_PER_PAGE

if TYPE_CHECKING:
    from engine import CaseView

__all__ = ["case_inbox"]


@click.command("inbox")
@actor_option("Whose inbox.")
@click.option("--page", type=int, default=1, show_default=True, help="Which page (1 is the first).")
@click.option("--per-page", type=int, default=50, show_default=True, help=f"Cases per page (1 to {MAX_PER_PAGE}).")
@click.option("--workflow", "workflow_name", help="Only cases of this workflow.")
@json_option()
@pass_app
def case_inbox(app: AppContext, actor: str, page: int, per_page: int, workflow_name: str | None, as_json: bool) -> None:
    """List the cases waiting for USER (a step one of their roles may take, in their scopes), by deadline."""
    svc = app.service()
    result = svc.waiting_for(actor, page=page, per_page=per_page, workflow=workflow_name)
    if as_json:  # full personal data: logged first (the table masks names)
        svc.log_access("inbox_cases", {"page": page, "refs": [v.ref for v in result.items]}, actor=actor)
        emit_json(result.to_json())
        return
    if not result.items:
        where = f"page {page}" if page > 1 else "the inbox"
        out.print(f"nothing waiting for {actor} ({where} is empty)", markup=False)
        return
    table = plain_table("ref", "state", "scope", "deadline", "time left", "applicant")
    applicant = Applicants(svc)
    for v in result.items:
        table.add_row(
            v.ref,
            f"{v.state} ({v.state_label})",
            v.scope or "",
            _deadline(v),
            v.time_left or "",
            applicant(v),
        )
    out.print(table)
    first = (page - 1) * per_page + 1
    tail = f"; more on --page {page + 1}" if result.has_more else ""
    out.print(f"page {page}: cases {first}–{first + len(result.items) - 1} waiting for {actor}{tail}", markup=False)


def _deadline(view: CaseView) -> str:
    if view.deadline is None:
        return ""
    at = str(view.to_json()["deadline"])[:16].replace("T", " ")
    return f"{at} (provisional)" if view.deadline_provisional else at
