"""``casework case inbox``: the cases waiting for a user, soonest deadline first, a page at a time.

Thin like the rest of the CLI: options in, one call to
:meth:`engine.Casework.waiting_for`, a table or JSON out. Registered on the
``case`` group by ``casework/cli.py``.
"""

from __future__ import annotations

import click

from casework.cli import PlainTable, _Context, _json, out, pass_ctx
from engine import CaseView, Casework, mask_value
from engine.queries import MAX_PER_PAGE

__all__ = ["case_inbox"]


@click.command("inbox")
@click.option("--as", "actor", required=True, metavar="USER", help="Whose inbox.")
@click.option("--page", type=int, default=1, show_default=True, help="Which page (1 is the first).")
@click.option("--per-page", type=int, default=50, show_default=True, help=f"Cases per page (1 to {MAX_PER_PAGE}).")
@click.option("--workflow", "workflow_name", help="Only cases of this workflow.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def case_inbox(ctx: _Context, actor: str, page: int, per_page: int, workflow_name: str | None, as_json: bool) -> None:
    """List the cases waiting for USER (a step one of their roles may take, in their scopes), by deadline."""
    svc = ctx.service()
    result = svc.waiting_for(actor, page=page, per_page=per_page, workflow=workflow_name)
    if as_json:
        _json(result.to_json())
        return
    if not result.items:
        where = f"page {page}" if page > 1 else "the inbox"
        out.print(f"nothing waiting for {actor} ({where} is empty)", markup=False)
        return
    table = PlainTable("ref", "state", "scope", "deadline", "time left", "applicant")
    name_fields: dict[tuple[str, int], str | None] = {}
    for v in result.items:
        table.add_row(
            v.ref,
            f"{v.state} ({v.state_label})",
            v.scope or "",
            _deadline(v),
            v.time_left or "",
            _applicant(svc, v, name_fields),
        )
    out.print(table)
    first = (page - 1) * per_page + 1
    tail = f"; more on --page {page + 1}" if result.has_more else ""
    out.print(f"page {page}: cases {first}–{first + len(result.items) - 1} waiting for {actor}{tail}", markup=False)


def _deadline(view: CaseView) -> str:
    if view.deadline is None:
        return ""
    at = view.to_json()["deadline"][:16].replace("T", " ")
    return f"{at} (provisional)" if view.deadline_provisional else at


def _applicant(svc: Casework, view: CaseView, name_fields: dict[tuple[str, int], str | None]) -> str:
    """The applicant's name, masked (陈*强): a list is a screen others may glance at."""
    key = (view.workflow, view.workflow_version)
    if key not in name_fields:
        pii = svc.workflow(*key).pii_fields
        name_fields[key] = next((f for f, kind in pii.items() if kind == "name"), None)
    name_field = name_fields[key]
    value = view.data.get(name_field) if name_field else None
    return "" if value is None else str(mask_value("name", value))
