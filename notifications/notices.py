"""Public notices (公示): rendering them from the workflow's templates.

The engine decides *what* a notice says about whom (masked by policy) and
when, numbers it, stores it with its SHA-256 and links it into each listed
case's audit trail with its period, all in the transaction that publishes it
(:mod:`engine.publicity`). This module supplies the rendering: the
workflow version's HTML template in the sandbox, the title from its
``<title>``, and the PDF: the same HTML printed by a real HTML/CSS renderer
(:mod:`notifications.pdf`), so what is hashed is what is printed.
"""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from typing import Any

from engine import Casework, NoticeView, Render, WorkflowDef
from engine.publicity import publishers

__all__ = ["notice_pdf", "publish_list", "publishers", "render_with"]

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def render_with(wf: WorkflowDef, template: str) -> Render:
    """A render function for the engine: context → (title, HTML) from ``template``."""

    def render(context: dict[str, Any]) -> tuple[str, str]:
        page = wf.templates.render(template, "html", context)
        found = _TITLE.search(page)
        title = " ".join(htmllib.unescape(found.group(1)).split()) if found else ""
        return title or f"{wf.title}公示 {context['notice']['number']}", page

    return render


def publish_list(
    svc: Casework, workflow: str, scope: str, on: dt.date | None = None, *, by: str | None = None
) -> NoticeView | None:
    """Publish the 公示名单 of ``scope``: every case awaiting publication, whose publicity it starts; None if none.

    Rendered here, inside the engine's publishing transaction, from the data
    as it is now; the stored page is never rendered again. ``by``: the person
    publishing (the web pages), whom the engine checks (:func:`engine.publicity.publishers`,
    their scopes) and names on each case's trail; the CLI's ``notice publish``
    is the operator's, on the server, and passes none.
    """
    wf = svc.workflow(workflow)
    template = wf.publicity.list_template if wf.publicity else None
    return svc.publish_list_notice(workflow, scope, render_with(wf, template or ""), on, by=by)


def notice_pdf(notice: NoticeView) -> bytes:
    """The notice as a print-ready PDF: its stored HTML (the hashed text) laid out by WeasyPrint.

    Raises:
        notifications.pdf.PdfUnavailable: this machine lacks a CJK font or Pango.
    """
    from notifications.pdf import html_to_pdf

    return html_to_pdf(notice.html, notice.title)
