"""Public notices (公示): list, HTML view, PDF download, publish.

A notice is a public document: its personal data were masked when it was
rendered, and the stored HTML (the text its SHA-256 seals) is served exactly
as published, as its own document under a stricter Content-Security-Policy
of its own (its inline styles, no script, nothing fetched). Publishing goes
through :func:`notifications.notices.publish_list` with ``by`` — the same rendering
``casework notice publish`` uses — which lets only a role that takes cases
into publicity, covering the county, publish its list.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from casework.web.auth import Form, Viewer, service
from casework.web.render import page
from casework.web.wording import word
from engine import CaseworkError, Code, InputError, NotFound, WorkflowDef
from engine.logins import SessionView

__all__ = ["NOTICE_CSP", "router"]

router = APIRouter(include_in_schema=False)

#: a stored notice's own policy: its inline styles and data: images, nothing else (no script, no fetch,
#: no form), sandboxed, and framed by no one
NOTICE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)


def _publishable(request: Request, viewer: SessionView) -> list[tuple[WorkflowDef, list[str]]]:
    """(workflow, the scopes I may publish its list for) for each workflow whose lists I may publish."""
    from notifications.notices import publishers

    svc = service(request)
    found = []
    for name in [wf.name for wf in svc.latest_workflows()]:
        wf = svc.workflow(name)
        if not set(viewer.roles) & publishers(wf):
            continue
        scopes = list(viewer.scopes)
        field = wf.fields.get(wf.scope_field or "")
        if "*" in scopes:
            scopes = list(field.choices) if field is not None and field.choices else []
        found.append((wf, scopes))
    return found


def _list_page(request: Request, viewer: SessionView, *, status: int = 200, **context: Any) -> Response:
    svc = service(request)
    workflow = request.query_params.get("workflow") or context.pop("workflow", None) or None
    titles = {wf.name: wf.title for wf in svc.latest_workflows()}
    notices = svc.notices(workflow) if workflow is None or workflow in titles else []
    publishable = _publishable(request, viewer)
    base: dict[str, Any] = {
        "notices": notices,
        "titles": titles,
        "workflow": workflow or "",
        "publishable": publishable,
        # one select of counties for every workflow: the union, in the order first offered
        "publish_scopes": list(dict.fromkeys(s for _, scopes in publishable for s in scopes)),
        "refusal": None,
        "done": None,
        "chosen": {},
    }
    base.update(context)
    return page(request, "notices.html", base, status=status)


@router.get("/notices")
def notices(request: Request, viewer: Viewer) -> Response:
    """Every notice, newest first (``?workflow=`` for one workflow's), and the publish form for my counties."""
    published = request.query_params.get("published")
    done = None
    if published:
        # only a notice that exists is announced: the page never repeats text a link put in its address
        try:
            number = service(request).notice(published).number
        except CaseworkError:
            number = None
        done = f"已发布公示 {number}。名单中的案件已进入公示期。" if number else None
    elif request.query_params.get("none"):
        done = "没有等待公示的案件，未发布新的公示。"
    return _list_page(request, viewer, done=done)


@router.post("/notices/publish")
def publish(request: Request, viewer: Viewer, form: Form) -> Response:
    """Publish the 公示名单 of a county: every case of it awaiting publicity enters its period."""
    from notifications.notices import publish_list

    workflow = str(form.get("workflow") or "")
    scope = str(form.get("scope") or "")
    chosen = {"workflow": workflow, "scope": scope}
    try:
        view = publish_list(service(request), workflow, scope, by=viewer.username)
    except CaseworkError as exc:
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, InputError):
            status = 422
        elif exc.code in (Code.ROLE_NEEDED, Code.SCOPE_NOT_COVERED):
            status = 403
        else:
            status = 409
        return _list_page(request, viewer, refusal=word(exc), chosen=chosen, status=status)
    if view is None:
        return RedirectResponse("/notices?none=1", status_code=303)
    return RedirectResponse(f"/notices?published={view.number}", status_code=303)


@router.get("/notices/{number}.pdf")
def notice_pdf(request: Request, viewer: Viewer, number: str) -> Response:
    """The notice printed to A4 PDF (its stored HTML, as ``casework notice show --format pdf`` prints it)."""
    from notifications.notices import notice_pdf as to_pdf
    from notifications.pdf import PdfUnavailable

    view = service(request).notice(number)  # NotFound → 404
    try:
        data = to_pdf(view)
    except PdfUnavailable:
        message = (
            "本服务器暂时无法生成 PDF（缺少中文字体或排版组件），请联系系统管理员安装后再试。"
            "公示的网页版本仍可查看和打印。"
        )
        return page(request, "error.html", {"heading": "PDF 暂不可用", "message": message}, status=503)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{view.number}.pdf"'},
    )


@router.get("/notices/{number}")
def notice_html(request: Request, viewer: Viewer, number: str) -> Response:
    """The notice exactly as published (the stored HTML), as its own document with its own CSP."""
    view = service(request).notice(number)  # NotFound → 404
    return HTMLResponse(
        view.html,
        headers={
            "Content-Security-Policy": NOTICE_CSP,
            "X-Notice-SHA256": view.sha256,
        },
    )
